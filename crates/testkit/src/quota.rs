//! SQS's tagging quota in front of an endpoint that has none (moto): a
//! loopback HTTP proxy that forwards every request and answers the tagging
//! actions over the quota itself, exactly as the embedded endpoint does.
//!
//! SQS allows a number of tagging actions (TagQueue, UntagQueue and
//! ListQueueTags, together) per second per account; the embedded endpoint
//! applies it with `sqs_barrier_local::throttle` (see docs/ENDPOINT.md,
//! "Quotas"). moto applies none, so code that stays within the quota on the
//! embedded endpoint could break it on moto unnoticed. [`QuotaProxy`] closes
//! that gap: it recognises the tagging actions by their `X-Amz-Target`
//! header (`AmazonSQS.TagQueue`, `AmazonSQS.UntagQueue`,
//! `AmazonSQS.ListQueueTags`), counts them in one token bucket (the
//! endpoint's own type), and answers one over the quota with HTTP 400
//! `RequestThrottled` "Rate exceeded" and `x-amzn-query-error:
//! RequestThrottled;Sender`, without forwarding it. Everything else, and
//! every admitted tagging action, goes to the upstream unchanged (the `Host`
//! header too, so the queue URLs moto returns name the proxy).
//!
//! The proxy runs on a thread of its own with its own tokio runtime, so it
//! serves whatever the caller's runtime does (a test that blocks its thread
//! on a child process, a runtime that ends first). Each client connection
//! gets one upstream connection, opened again when the upstream closed it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sqs_barrier_local::throttle::{TaggingQuota, is_tagging_action};
use sqs_barrier_local::{DEFAULT_TAGGING_TPS, SqsError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct QuotaProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    tagging_tps: u32,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What every connection shares: where to forward, and the quota.
struct Shared {
    upstream: SocketAddr,
    /// One quota for all connections: it is per account.
    quota: TaggingQuota,
}

impl QuotaProxy {
    /// Starts a proxy on a free loopback port in front of the plain-HTTP
    /// endpoint at `upstream`, allowing SQS's default of
    /// [`DEFAULT_TAGGING_TPS`] tagging actions per second.
    pub fn start(upstream: SocketAddr) -> std::io::Result<QuotaProxy> {
        Self::start_with(upstream, DEFAULT_TAGGING_TPS)
    }

    /// Like [`QuotaProxy::start`], allowing `tagging_tps` tagging actions per
    /// second with a burst of as many; 0 forwards everything.
    pub fn start_with(upstream: SocketAddr, tagging_tps: u32) -> std::io::Result<QuotaProxy> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared {
            upstream,
            quota: TaggingQuota::per_second(tagging_tps),
        });
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("quota-proxy-{}", addr.port()))
            .spawn(move || runtime.block_on(serve(listener, shared, stopped)))?;
        Ok(QuotaProxy {
            addr,
            upstream,
            tagging_tps,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address clients use.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL for clients, like `http://127.0.0.1:PORT`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The endpoint the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Tagging actions allowed per second (0: no quota).
    pub fn tagging_tps(&self) -> u32 {
        self.tagging_tps
    }

    /// Serves until the process ends (for the proxy's own binary).
    pub fn run_forever(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for QuotaProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Ending `block_on` drops the runtime, which cancels every connection.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(serve_connection(stream, shared.clone()));
            }
            _ = &mut stopped => return,
        }
    }
}

/// The upstream connection of one client connection: opened on the first
/// request and again whenever the upstream has closed it.
type Upstream = Arc<tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>>;

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let upstream: Upstream = Arc::default();
    let service = service_fn(move |request| {
        let (shared, upstream) = (shared.clone(), upstream.clone());
        async move { Ok::<_, std::convert::Infallible>(handle(&shared, &upstream, request).await) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(
    shared: &Shared,
    upstream: &Upstream,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let tagging = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_tagging_action);
    let (mut parts, body) = request.into_parts();
    // Read the whole body first, also of a refused request, so the client's
    // connection stays usable.
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => return bad_gateway(&format!("reading the request: {error}")),
    };
    if tagging && !shared.quota.admit() {
        return throttled();
    }
    strip_hop_by_hop(&mut parts.headers);
    let request = Request::from_parts(parts, Full::new(body));
    match forward(shared.upstream, upstream, request).await {
        Ok(response) => response,
        Err(error) => bad_gateway(&error),
    }
}

async fn forward(
    addr: SocketAddr,
    upstream: &Upstream,
    request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, String> {
    let mut held = upstream.lock().await;
    let reusable = match held.as_mut() {
        Some(sender) => !sender.is_closed() && sender.ready().await.is_ok(),
        None => false,
    };
    if !reusable {
        *held = Some(connect(addr).await?);
    }
    let sender = held.as_mut().expect("just connected");
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(error) => {
            *held = None;
            return Err(format!("forwarding to {addr}: {error}"));
        }
    };
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the answer of {addr}: {e}"))?
        .to_bytes();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// An HTTP/1 connection to `addr`, its driver spawned.
pub(crate) async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with {addr}: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Drops the headers that describe one hop, not the message; hyper sets
/// `Content-Length` again for the buffered body.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ] {
        headers.remove(HeaderName::from_static(name));
    }
}

/// SQS's answer to a request over a rate quota, as the embedded endpoint
/// renders it.
fn throttled() -> Response<Full<Bytes>> {
    let error = SqsError::rate_exceeded();
    let mut response = Response::new(Full::new(Bytes::from(error.json_body())));
    *response.status_mut() =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Ok(value) = HeaderValue::from_str(&error.query_error_header()) {
        headers.insert("x-amzn-query-error", value);
    }
    response
}

fn bad_gateway(reason: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("quota proxy: {reason}\n"))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}
