//! The HTTP front: a hyper 1 HTTP/1.1 server that turns AWS JSON 1.0 requests into
//! [`ops`](crate::ops) calls and their results (or errors) into responses.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::chaos::{Chaos, ChaosCounts, ChaosSpec, Counted, Scope};
use crate::error::{ErrorCode, SqsError};
use crate::latency::LatencySpec;
use crate::model::MAX_IN_FLIGHT;
use crate::ops;
use crate::service::{Limits, RequestContext, Service, random_uuid};
use crate::throttle::{DEFAULT_TAGGING_TPS, is_tagging_action};

/// Largest request body read: a 1 MiB batch plus JSON overhead. Larger requests are
/// refused before they are buffered.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024 + 128 * 1024;

/// How long [`Server::shutdown`] lets in-flight requests finish before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Default of [`Options::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default of [`Options::header_read_timeout`]: hyper's own default once it has a
/// timer, and well above what any client needs to send a request head.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// At most one "connection cap reached" warning per this interval, so a client
/// that keeps the endpoint at its cap does not flood the log.
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Settings of a [`Server`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// Account id in queue URLs and ARNs; default `000000000000`.
    pub account_id: Option<String>,
    /// Region in ARNs; default `us-east-1`.
    pub region: Option<String>,
    /// Faults to inject (see [`crate::chaos`]); `None`: behave.
    pub chaos: Option<ChaosSpec>,
    /// Seed of the fault decisions; default random (see [`Server::chaos_seed`]).
    pub chaos_seed: Option<u64>,
    /// Most messages in flight per queue, standard and FIFO; default SQS's
    /// [`MAX_IN_FLIGHT`] (120,000).
    pub max_in_flight: Option<usize>,
    /// Delay added to every response (see [`crate::latency`]); default none.
    pub latency: Option<LatencySpec>,
    /// Most connections served at once; default [`DEFAULT_MAX_CONNECTIONS`]. At the
    /// cap the endpoint stops accepting: further connections wait in the listen
    /// backlog until one closes.
    pub max_connections: Option<usize>,
    /// How long a client may take to send a request head (and how long an idle
    /// keep-alive connection stays open); default [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Option<Duration>,
    /// Tagging actions (TagQueue, UntagQueue, ListQueueTags, all together) allowed
    /// per second for the whole server, as SQS's per-account quota, with a burst of
    /// as many; default [`DEFAULT_TAGGING_TPS`] (5). Over it a request is answered
    /// `RequestThrottled` (HTTP 400, "Rate exceeded") and has no effect. `Some(0)`
    /// turns the quota off. See [`crate::throttle`].
    pub tagging_tps: Option<u32>,
}

impl Options {
    /// Injects the faults of `spec`, decided by a generator seeded with `seed`
    /// (random if `None`).
    pub fn with_chaos(mut self, spec: ChaosSpec, seed: Option<u64>) -> Self {
        self.chaos = Some(spec);
        self.chaos_seed = seed;
        self
    }

    /// Lets at most `limit` messages be in flight per queue (standard and FIFO), so
    /// that tests can reach the quota with few messages.
    pub fn with_max_in_flight(mut self, limit: usize) -> Self {
        self.max_in_flight = Some(limit);
        self
    }

    /// Delays every response by a delay drawn from `latency`.
    pub fn with_latency(mut self, latency: LatencySpec) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Serves at most `limit` connections at once (at least 1).
    pub fn with_max_connections(mut self, limit: usize) -> Self {
        self.max_connections = Some(limit);
        self
    }

    /// Closes a connection that has not sent a complete request head within
    /// `timeout` (an idle keep-alive connection too).
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = Some(timeout);
        self
    }

    /// Allows `tps` tagging actions per second (a burst of `tps`) for the whole
    /// server; 0 turns the tagging quota off (see [`Options::tagging_tps`]).
    pub fn with_tagging_tps(mut self, tps: u32) -> Self {
        self.tagging_tps = Some(tps);
        self
    }
}

/// How connections are served: the parts of [`Options`] the accept loop needs.
#[derive(Clone, Copy, Debug)]
struct ConnectionLimits {
    max_connections: usize,
    header_read_timeout: Duration,
}

/// A running endpoint. Dropping it also stops it (without waiting).
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    /// `true` asks the accept loop, every connection and every long poll to stop.
    shutdown: watch::Sender<bool>,
    /// The accept loop; it returns once all connections are done.
    task: JoinHandle<()>,
    /// The fault injector, if faults are injected.
    chaos: Option<Arc<Chaos>>,
}

impl Server {
    /// Binds `addr` (use `127.0.0.1:0` for a free port) and serves on the current
    /// tokio runtime.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Server> {
        Self::bind_with(addr, Options::default()).await
    }

    /// Like [`Server::bind`], with [`Options`].
    pub async fn bind_with(addr: SocketAddr, options: Options) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown, stopping) = watch::channel(false);
        let tagging_tps = options.tagging_tps.unwrap_or(DEFAULT_TAGGING_TPS);
        let chaos = options.chaos.map(|spec| {
            let seed = options.chaos_seed.unwrap_or_else(rand::random);
            tracing::info!(%spec, seed, "SQS endpoint injecting faults");
            Arc::new(Chaos::new(spec, seed))
        });
        let account_id = options
            .account_id
            .unwrap_or_else(|| "000000000000".to_owned());
        let region = options.region.unwrap_or_else(|| "us-east-1".to_owned());
        let service_limits = Limits {
            max_in_flight: options.max_in_flight.unwrap_or(MAX_IN_FLIGHT),
            latency: options.latency,
            tagging_tps,
        };
        let service = Arc::new_cyclic(|this| {
            Service::new(
                account_id,
                region,
                local_addr,
                stopping.clone(),
                chaos.clone(),
                service_limits,
                this.clone(),
            )
        });
        if let Some(latency) = options.latency {
            tracing::info!(%latency, "SQS endpoint adding latency to every response");
        }
        if tagging_tps != DEFAULT_TAGGING_TPS {
            tracing::info!(tagging_tps, "SQS endpoint tagging quota (0: off)");
        }
        let limits = ConnectionLimits {
            max_connections: options
                .max_connections
                .unwrap_or(DEFAULT_MAX_CONNECTIONS)
                .max(1),
            header_read_timeout: options
                .header_read_timeout
                .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT),
        };
        let task = tokio::spawn(accept_loop(listener, service, stopping, limits));
        tracing::debug!(%local_addr, "SQS endpoint listening");
        Ok(Server {
            local_addr,
            shutdown,
            task,
            chaos,
        })
    }

    /// How many faults of each kind were injected so far (`None` without
    /// fault injection).
    pub fn chaos_counts(&self) -> Option<ChaosCounts> {
        self.chaos.as_ref().map(|c| c.counts())
    }

    /// The seed of the fault decisions (`None` without fault injection):
    /// pass it as [`Options::chaos_seed`] to decide the same faults again.
    pub fn chaos_seed(&self) -> Option<u64> {
        self.chaos.as_ref().map(|c| c.seed())
    }

    /// The faults injected (`None` without fault injection).
    pub fn chaos_spec(&self) -> Option<&ChaosSpec> {
        self.chaos.as_ref().map(|c| c.spec())
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting, ends waiting long polls at once (they answer with no messages),
    /// lets other in-flight requests finish (aborting them after 2 s) and returns.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Err(error) = (&mut self.task).await {
            tracing::warn!(%error, "SQS endpoint accept loop failed");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    service: Arc<Service>,
    stopping: watch::Receiver<bool>,
    limits: ConnectionLimits,
) {
    let mut connections = JoinSet::new();
    // A separate receiver to await, so `stopping` can be cloned into connections.
    let mut stop_signal = stopping.clone();
    // One permit per connection served; a connection task holds its permit until it
    // ends. At the cap the loop does not call `accept`, so further connections wait
    // in the kernel's listen backlog (bounded, unlike tasks or file descriptors).
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut last_cap_warning: Option<Instant> = None;
    'serve: loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if last_cap_warning.is_none_or(|at| at.elapsed() >= CAP_WARNING_INTERVAL) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "SQS endpoint at its connection cap ({} open): new connections wait until one closes",
                        limits.max_connections
                    );
                    last_cap_warning = Some(Instant::now());
                }
                loop {
                    tokio::select! {
                        permit = slots.clone().acquire_owned() => match permit {
                            Ok(permit) => break permit,
                            // The semaphore is never closed.
                            Err(_) => break 'serve,
                        },
                        Some(_) = connections.join_next(), if !connections.is_empty() => {}
                        _ = stopped(&mut stop_signal) => break 'serve,
                    }
                }
            }
        };
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        connections.spawn(serve_connection(
                            stream,
                            service.clone(),
                            stopping.clone(),
                            limits.header_read_timeout,
                            permit,
                        ));
                        break;
                    }
                    Err(error) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                // Reap finished connections so the set does not grow without bound.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                // Also fires (with an error) when the `Server` is dropped.
                _ = stopped(&mut stop_signal) => break 'serve,
            }
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

async fn serve_connection(
    stream: TcpStream,
    service: Arc<Service>,
    mut stopping: watch::Receiver<bool>,
    header_read_timeout: Duration,
    // Held until the connection ends: it is this connection's place under the cap.
    _slot: OwnedSemaphorePermit,
) {
    // Small request/response pairs: don't let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let handler = service_fn(move |request| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(handle(&service, request).await) }
    });
    // Without a timer hyper waits for a request head for ever, so a client that
    // sends half a head (or nothing) would hold its connection and a slot.
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), handler);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            return;
        }
        _ = stopped(&mut stopping) => {}
    }
    // Finish the request in progress (long polls end on the same signal), then close.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// Resolves once the server is stopping (or the `Server` was dropped). Returns `()`
/// so no `watch` guard is held across an await point (it is not `Send`).
pub(crate) async fn stopped(signal: &mut watch::Receiver<bool>) {
    let _ = signal.wait_for(|stop| *stop).await;
}

/// Serves one request; never fails: errors become AWS-shaped error responses.
async fn handle(service: &Service, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let response = match handle_inner(service, request).await {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(error) => error_response(&error),
    };
    if let Some(latency) = &service.latency {
        // The modelled round trip: after the operation (a long poll has waited its
        // time already), in this request's own future, so other requests go on.
        tokio::time::sleep(latency.sample()).await;
    }
    response
}

async fn handle_inner(service: &Service, request: Request<Incoming>) -> Result<Vec<u8>, SqsError> {
    if request.method() != Method::POST {
        return Err(SqsError::new(
            ErrorCode::UnsupportedOperation,
            "Only POST requests with the AWS JSON 1.0 protocol are supported.",
        ));
    }
    let headers = request.headers();
    let content_type_ok = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with(JSON_CONTENT_TYPE));
    if !content_type_ok {
        return Err(SqsError::new(
            ErrorCode::SerializationException,
            format!(
                "Content-Type must be {JSON_CONTENT_TYPE} (the query protocol is not supported)."
            ),
        ));
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            SqsError::new(
                ErrorCode::UnsupportedOperation,
                "Missing X-Amz-Target header.",
            )
        })?
        .to_owned();
    let declared_length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        SqsError::new(
            ErrorCode::RequestEntityTooLarge,
            format!("Request body larger than {MAX_REQUEST_BYTES} bytes."),
        )
    };
    if declared_length.is_some_and(|len| len > MAX_REQUEST_BYTES as u64) {
        return Err(too_large());
    }
    // Queue URLs echo the host the client used, so they work behind port mappings.
    let base_url = match headers.get(HOST).and_then(|v| v.to_str().ok()) {
        Some(host) if !host.is_empty() => format!("http://{host}"),
        _ => format!("http://{}", service.local_addr),
    };
    // For fault injection's `key=` filters; the request (and its headers) goes
    // with the body.
    let authorization = service
        .chaos
        .as_ref()
        .filter(|chaos| chaos.spec().filters_keys())
        .and_then(|_| headers.get(AUTHORIZATION)?.to_str().ok())
        .map(str::to_owned);
    let body = Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|_| too_large())?
        .to_bytes();
    // SQS's per-account quota on tagging actions, counted by operation before the
    // body is decoded: a refused request has no effect (and draws no faults).
    if is_tagging_action(&target) && !service.admit_tagging() {
        return Err(SqsError::rate_exceeded());
    }
    let decoded = ops::decode_request(&target, &body)?;
    tracing::trace!(%target, "request");
    let Some(chaos) = service.chaos.as_deref() else {
        return ops::execute(service, &RequestContext::plain(base_url), decoded).await;
    };
    // Fault injection: decide, delay, fail before, apply, fail after.
    let facts = chaos.facts(authorization.as_deref(), &body);
    let decision = chaos.decide(Scope::of(&decoded), &facts);
    if let Some(ms) = decision.slow_ms {
        chaos.count(Counted::Slow);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(alt) = decision.throttle {
        chaos.count(Counted::Throttle);
        return Err(if alt {
            SqsError::new(ErrorCode::ThrottlingException, "Rate exceeded (injected).")
        } else {
            SqsError::new(
                ErrorCode::RequestThrottled,
                "Request is throttled (injected).",
            )
        });
    }
    let server_error = |unavailable: bool| {
        if unavailable {
            SqsError::new(
                ErrorCode::ServiceUnavailable,
                "The service is unavailable (injected).",
            )
        } else {
            SqsError::new(ErrorCode::InternalError, "Internal error (injected).")
        }
    };
    if let Some(alt) = decision.error {
        chaos.count(Counted::Error);
        return Err(server_error(alt));
    }
    let ctx = RequestContext {
        base_url,
        chaos: Some((chaos, decision)),
    };
    let result = ops::execute(service, &ctx, decoded).await;
    match decision.error_after {
        // Only an operation that succeeded had an effect to hide.
        Some(alt) if result.is_ok() => {
            chaos.count(Counted::ErrorAfter);
            Err(server_error(alt))
        }
        _ => result,
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(&random_uuid()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

fn error_response(error: &SqsError) -> Response<Full<Bytes>> {
    let status =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, error.json_body().into_bytes());
    if let Ok(value) = HeaderValue::from_str(&error.query_error_header()) {
        response.headers_mut().insert("x-amzn-query-error", value);
    }
    response
}
