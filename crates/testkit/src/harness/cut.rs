//! Partitions: a coordinator cut off its state queue while everything
//! else it does works.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::quota::{connect, strip_hop_by_hop};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The access key id that [`partition_rule`] cuts off the state queues: a
/// coordinator whose [`StateCut`] is on signs with it.
pub const PARTITIONED_KEY: &str = "partitioned";

/// The chaos rule of partitions: every request to a `*-state` queue signed
/// with [`PARTITIONED_KEY`] fails (500 or 503, before it takes effect; the
/// SDK's retries fail the same way). Written before the spec's other rules.
pub fn partition_rule() -> String {
    format!("any[queue=-state;key={PARTITIONED_KEY}].error=1")
}

/// Partitions of a soak: now and then the active coordinator (whichever it
/// is then) is cut off its state queue, its state reads and writes fail,
/// and everything else it does works; then it heals.
#[derive(Clone, Copy, Debug)]
pub struct Partitions {
    /// Range of ms from the start, or from a partition's end, to the next
    /// partition.
    pub every: (u64, u64),
    /// Range of ms a partition lasts.
    pub length: (u64, u64),
}

/// One coordinator's own way to the endpoint: a loopback HTTP proxy that
/// forwards every request unchanged, except that while its cut is on it
/// puts [`PARTITIONED_KEY`] in place of the access key id of the SigV4
/// `Authorization` header (the endpoint checks no signature). With
/// [`partition_rule`] the endpoint then fails that coordinator's
/// state-queue requests and nobody else's, whoever it is by then: a test
/// picks the active one at run time, which a rule's fixed key and time
/// window cannot. Runs on the caller's runtime; stops when dropped.
#[derive(Debug)]
pub struct StateCut {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// The upstream connection of one client connection: opened on the first
/// request and again whenever the upstream has closed it.
type Upstream = Arc<tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>>;

impl StateCut {
    /// Starts a proxy on a free loopback port in front of `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let cut = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(serve_cut(listener, upstream, cut.clone()));
        Ok(Self { addr, cut, task })
    }

    /// One for each of a supervisor's two coordinators, in front of the
    /// endpoint at `url` (`http://IP:PORT`).
    pub(super) fn pair(url: &str) -> Vec<Arc<StateCut>> {
        let upstream: SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| {
                panic!("partitions need an endpoint at http://IP:PORT, not {url}: {e}")
            });
        (0..2)
            .map(|_| Arc::new(StateCut::start(upstream).expect("start a state cut")))
            .collect()
    }

    /// Its URL, for the coordinator's client.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts (`true`) or heals.
    pub fn set(&self, on: bool) {
        self.cut.store(on, Ordering::SeqCst);
    }

    /// Whether it is cut now.
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

impl Drop for StateCut {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_cut(listener: TcpListener, upstream: SocketAddr, cut: Arc<AtomicBool>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let cut = cut.clone();
        tokio::spawn(async move {
            let held: Upstream = Arc::default();
            let service = hyper::service::service_fn(move |request| {
                let (cut, held) = (cut.clone(), held.clone());
                async move {
                    let on = cut.load(Ordering::SeqCst);
                    Ok::<_, std::convert::Infallible>(
                        forward_cut(upstream, &held, request, on).await,
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward_cut(
    addr: SocketAddr,
    held: &Upstream,
    request: Request<Incoming>,
    cut: bool,
) -> Response<Full<Bytes>> {
    let (mut parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return bad_gateway(&format!("reading the request: {e}")),
    };
    if cut
        && let Some(value) = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| with_access_key(v, PARTITIONED_KEY))
    {
        parts.headers.insert(AUTHORIZATION, value);
    }
    strip_hop_by_hop(&mut parts.headers);
    let request = Request::from_parts(parts, Full::new(body));
    let mut held = held.lock().await;
    let reusable = match held.as_mut() {
        Some(sender) => !sender.is_closed() && sender.ready().await.is_ok(),
        None => false,
    };
    if !reusable {
        match connect(addr).await {
            Ok(sender) => *held = Some(sender),
            Err(e) => return bad_gateway(&e),
        }
    }
    let sender = held.as_mut().expect("connected above");
    let response = match sender.send_request(request).await {
        Ok(r) => r,
        Err(e) => {
            *held = None;
            return bad_gateway(&format!("forwarding: {e}"));
        }
    };
    let (mut parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return bad_gateway(&format!("reading the answer: {e}")),
    };
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Full::new(body))
}

/// `authorization` (`AWS4-HMAC-SHA256 Credential=AKID/DATE/…, …`) with
/// `key` in place of its access key id.
fn with_access_key(authorization: &str, key: &str) -> Option<HeaderValue> {
    let start = authorization.find("Credential=")? + "Credential=".len();
    let end = start + authorization[start..].find('/')?;
    HeaderValue::from_str(&format!(
        "{}{key}{}",
        &authorization[..start],
        &authorization[end..]
    ))
    .ok()
}

fn bad_gateway(reason: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("state cut: {reason}\n"))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
