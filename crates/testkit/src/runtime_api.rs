//! An emulator of the AWS Lambda Runtime API: the HTTP interface that a
//! custom runtime's `bootstrap` polls for invocations. A function binary
//! started with `AWS_LAMBDA_RUNTIME_API` set to [`RuntimeApi::address`]
//! runs as it would in Lambda, and [`RuntimeApi::invoke`] hands it events:
//!
//! * `GET /2018-06-01/runtime/invocation/next` waits for an event and
//!   returns it, with the `Lambda-Runtime-Aws-Request-Id`,
//!   `Lambda-Runtime-Deadline-Ms`, `Lambda-Runtime-Invoked-Function-Arn`
//!   and `Lambda-Runtime-Trace-Id` headers;
//! * `POST .../invocation/{id}/response` and `.../invocation/{id}/error`
//!   complete that invocation;
//! * `POST /2018-06-01/runtime/init/error` reports a failed start.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify, oneshot};
use tokio::task::JoinHandle;

const PREFIX: &str = "/2018-06-01/runtime/";

/// The function's ARN the emulator reports.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:sqs-barrier";

/// A running emulator; it stops when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    inner: Arc<Inner>,
    server: JoinHandle<()>,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<(String, String, Duration)>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Result<String, String>>>>,
    init_error: Mutex<Option<String>>,
    next_id: AtomicU64,
}

impl RuntimeApi {
    /// Starts the emulator on a free loopback port.
    ///
    /// # Panics
    /// If it cannot bind.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the runtime API emulator");
        let addr = listener.local_addr().expect("bound address");
        let inner = Arc::new(Inner::default());
        let state = inner.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| route(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            inner,
            server,
        }
    }

    /// What `AWS_LAMBDA_RUNTIME_API` must be set to: `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Invokes the function with `payload` (JSON) and waits for its
    /// response: `Ok` with the response body, `Err` with the error it
    /// reported, or a timeout (`timeout`, as Lambda's function timeout).
    pub async fn invoke(&self, payload: &str, timeout: Duration) -> Result<String, String> {
        if let Some(e) = self.inner.init_error.lock().await.clone() {
            return Err(format!("the function failed to start: {e}"));
        }
        let id = format!(
            "req-{:08}",
            self.inner.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, rx) = oneshot::channel();
        self.inner.waiting.lock().await.insert(id.clone(), tx);
        self.inner
            .queue
            .lock()
            .await
            .push_back((id.clone(), payload.to_owned(), timeout));
        self.inner.queued.notify_one();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the emulator dropped the invocation".into()),
            Err(_) => {
                self.inner.waiting.lock().await.remove(&id);
                Err(format!("timed out after {timeout:?}"))
            }
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: &str) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a valid response")
}

async fn route(inner: Arc<Inner>, req: Request<Incoming>) -> Result<Reply, hyper::Error> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            r#"{"errorMessage":"no such path"}"#,
        ));
    };
    if method == hyper::Method::GET && rest == "invocation/next" {
        let (id, payload, timeout) = loop {
            let notified = inner.queued.notified();
            if let Some(next) = inner.queue.lock().await.pop_front() {
                break next;
            }
            notified.await;
        };
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + timeout;
        let response = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", &id)
            .header(
                "lambda-runtime-deadline-ms",
                deadline.as_millis().to_string(),
            )
            .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
            .header("lambda-runtime-trace-id", format!("Root=1-{id}"))
            .body(Full::new(Bytes::from(payload)))
            .expect("a valid response");
        return Ok(response);
    }
    let body = req.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if method == hyper::Method::POST && rest == "init/error" {
        *inner.init_error.lock().await = Some(body);
        return Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#));
    }
    if method == hyper::Method::POST
        && let Some(tail) = rest.strip_prefix("invocation/")
        && let Some((id, what)) = tail.split_once('/')
        && (what == "response" || what == "error")
    {
        let Some(tx) = inner.waiting.lock().await.remove(id) else {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                r#"{"errorMessage":"unknown or finished invocation"}"#,
            ));
        };
        let _ = tx.send(if what == "response" {
            Ok(body)
        } else {
            Err(body)
        });
        return Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#));
    }
    Ok(reply(
        StatusCode::NOT_FOUND,
        r#"{"errorMessage":"no such route"}"#,
    ))
}
