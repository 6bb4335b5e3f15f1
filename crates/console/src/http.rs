//! A small HTTP/1.1 server (hyper) for the web console and `/metrics`:
//! one task per connection, bodies up to 64 KiB, stops on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// The largest request body read.
const MAX_BODY: usize = 64 * 1024;

/// A request as the handlers see it: head and the whole body.
pub(crate) struct Req {
    pub method: hyper::Method,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    /// The address of the peer of the connection (`None` for a request
    /// handed to the router directly).
    pub peer: Option<std::net::SocketAddr>,
}

impl Req {
    /// Reads `req`'s whole body: refused (413) beyond 64 KiB.
    pub async fn read<B>(req: Request<B>) -> Result<Req, Response<Full<Bytes>>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Err(text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large\n",
                ));
            }
        };
        Ok(Req {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            headers: parts.headers,
            body,
            peer: None,
        })
    }

    /// A header's value as text, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response with `status`, `content_type` and `body`, never cached.
pub fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("text/plain")),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    response(status, "text/plain; charset=utf-8", body.into())
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    response(status, "application/json", value.to_string())
}

/// Serves `handler` on `listener` until `shutdown` resolves.
pub async fn serve<H, F>(listener: TcpListener, handler: H, shutdown: impl Future<Output = ()>)
where
    H: Fn(Req) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let handler = Arc::new(handler);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.as_mut() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(match Req::read(req).await {
                        Ok(mut req) => {
                            req.peer = Some(peer);
                            handler(req).await
                        }
                        Err(refused) => refused,
                    })
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
