//! The console: its options, the security checks, and the router of the
//! page, `/api/state`, `/api/abort` and `/metrics`.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Body;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use sqs_barrier::Sqs;
use tokio::net::TcpListener;

use crate::http::{self, Req};
use crate::watch;

/// The page; `{{TOKEN}}` and `{{INTERVAL_MS}}` are filled in per request.
const PAGE: &str = include_str!("page.html");
/// Tokens of the newest pages served that an abort is accepted with.
const TOKENS_KEPT: usize = 256;

/// What a console serves and watches.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsoleOptions {
    /// The address to serve the console on (its port may be 0: the
    /// console takes the address actually bound, see [`Console::new`]).
    pub bind: SocketAddr,
    /// Allow an address other than loopback. The console has no login:
    /// anyone who can reach it sees the queues and barriers and can abort
    /// barriers (with the SQS permissions of its client). Without it, a
    /// console also refuses requests whose `Host` is not a loopback name.
    pub allow_remote: bool,
    /// Watch only queues (and barriers) whose name starts with this.
    pub prefix: Option<String>,
    /// The time between reads of SQS, within [`ConsoleOptions::INTERVALS`].
    /// Each read lists the queues, gets each one's attributes and reads
    /// each barrier's state: against real SQS that is about (queues +
    /// barriers + 1) requests per read, billed.
    pub interval: Duration,
}

impl Default for ConsoleOptions {
    /// Loopback port 9325, no remote access, every queue, one read a
    /// second.
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 9325)),
            allow_remote: false,
            prefix: None,
            interval: Duration::from_secs(1),
        }
    }
}

impl ConsoleOptions {
    /// The intervals between reads of SQS accepted: 0.2 s to 60 s.
    pub const INTERVALS: RangeInclusive<Duration> =
        Duration::from_millis(200)..=Duration::from_secs(60);

    /// Whether the console would be served on an address other than
    /// loopback (refused unless `allow_remote`).
    pub fn is_remote(&self) -> bool {
        !self.bind.ip().is_loopback()
    }

    /// Checks the options: a bind address that is not loopback needs
    /// `allow_remote`; the interval must be within [`Self::INTERVALS`].
    pub fn check(&self) -> Result<(), OptionsError> {
        if self.is_remote() && !self.allow_remote {
            return Err(OptionsError::NotLoopback(self.bind));
        }
        if !Self::INTERVALS.contains(&self.interval) {
            return Err(OptionsError::Interval(self.interval));
        }
        Ok(())
    }
}

/// Options a console refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The bind address is not loopback and remote access was not allowed.
    #[error(
        "refusing to serve the console on {0} (not loopback): it has no login and can abort barriers; allow remote access to do it anyway"
    )]
    NotLoopback(SocketAddr),
    /// The interval between reads is out of range.
    #[error("the interval between reads must be between 0.2 and 60 seconds, not {0:?}")]
    Interval(Duration),
}

/// A live web console of an endpoint's queues and barriers: the poller of
/// SQS ([`Console::poll`]) and the router of its requests
/// ([`Console::handle`]); [`Console::serve`] runs both.
pub struct Console {
    watch: Arc<watch::Watch>,
    tokens: Mutex<VecDeque<String>>,
    /// Bound to loopback without `allow_remote`: the `Host` names accepted.
    hosts: Option<Vec<String>>,
}

impl Console {
    /// A console of the queues of `sqs`'s endpoint, to be served on
    /// `local`: the address its listener is bound to (the `Host` names it
    /// accepts without `allow_remote` are those of this address's port).
    /// Fails if [`ConsoleOptions::check`] does.
    pub fn new(sqs: Sqs, options: ConsoleOptions, local: SocketAddr) -> Result<Self, OptionsError> {
        options.check()?;
        let hosts = (!options.allow_remote).then(|| {
            let port = local.port();
            vec![
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
                local.to_string(),
            ]
        });
        Ok(Self {
            watch: watch::Watch::new(sqs, options.prefix, options.interval),
            tokens: Mutex::new(VecDeque::new()),
            hosts,
        })
    }

    /// The SQS endpoint watched, for display: without a user name or
    /// password.
    pub fn endpoint(&self) -> String {
        watch::display_endpoint(self.watch.sqs().endpoint())
    }

    /// Reads SQS every interval, forever: what `/api/state` and
    /// `/metrics` show. [`Console::serve`] runs it; a caller of
    /// [`Console::handle`] spawns it.
    pub fn poll(&self) -> impl Future<Output = ()> + Send + 'static {
        self.watch.clone().run()
    }

    /// Serves the console on `listener` until `shutdown` resolves, reading
    /// SQS meanwhile: one task per connection, request bodies up to 64 KiB.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let watching = tokio::spawn(self.poll());
        let console = Arc::new(self);
        http::serve(
            listener,
            move |req| {
                let console = console.clone();
                async move { console.route(req).await }
            },
            shutdown,
        )
        .await;
        watching.abort();
    }

    /// Answers one request as the server does: `GET /` (the page, with a
    /// new token), `GET /api/state`, `POST /api/abort`, `GET /metrics`. A
    /// body larger than 64 KiB is refused (413).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match Req::read(req).await {
            Ok(req) => self.route(req).await,
            Err(refused) => refused,
        }
    }

    async fn route(&self, req: Req) -> Response<Full<Bytes>> {
        if let Some(hosts) = &self.hosts {
            let host = req.header("host").unwrap_or_default();
            if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                return http::text(
                    StatusCode::MISDIRECTED_REQUEST,
                    "this console answers only requests for its loopback address\n",
                );
            }
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/") => self.page(),
            ("GET", "/api/state") => http::json(StatusCode::OK, &self.watch.snapshot()),
            ("GET", "/metrics") => self.watch.metrics_response(),
            ("GET", "/favicon.ico") => http::text(StatusCode::NOT_FOUND, ""),
            ("POST", "/api/abort") => self.abort(&req).await,
            (_, "/" | "/api/state" | "/metrics" | "/api/abort") => {
                http::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => http::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    fn page(&self) -> Response<Full<Bytes>> {
        let token = format!("{:032x}", rand::random::<u128>());
        {
            let mut tokens = self.tokens.lock().expect("lock");
            tokens.push_back(token.clone());
            while tokens.len() > TOKENS_KEPT {
                tokens.pop_front();
            }
        }
        let body = PAGE.replace("{{TOKEN}}", &token);
        let mut r = http::response(StatusCode::OK, "text/html; charset=utf-8", body);
        r.headers_mut().insert(
            "content-security-policy",
            hyper::header::HeaderValue::from_static(
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        );
        r
    }

    fn refuse(status: StatusCode, why: &str) -> Response<Full<Bytes>> {
        http::json(status, &json!({"ok": false, "error": why}))
    }

    async fn abort(&self, req: &Req) -> Response<Full<Bytes>> {
        let token = req.header("x-console-token").unwrap_or_default();
        let known = !token.is_empty()
            && self
                .tokens
                .lock()
                .expect("lock")
                .iter()
                .any(|t| same_token(t, token));
        if !known {
            return Self::refuse(
                StatusCode::FORBIDDEN,
                "missing or unknown page token: reload the console and try again",
            );
        }
        if let (Some(origin), Some(host)) = (req.header("origin"), req.header("host"))
            && origin != format!("http://{host}")
        {
            return Self::refuse(StatusCode::FORBIDDEN, "cross-origin request refused");
        }
        if !req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return Self::refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send JSON");
        }
        let body: serde_json::Value = match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => return Self::refuse(StatusCode::BAD_REQUEST, "malformed JSON"),
        };
        let barrier = body["barrier"].as_str().unwrap_or_default();
        let reason = body["reason"].as_str().unwrap_or_default().trim();
        if barrier.is_empty() || reason.is_empty() {
            return Self::refuse(
                StatusCode::BAD_REQUEST,
                "a barrier and a reason are required",
            );
        }
        if !self.watch.watches(barrier) {
            return Self::refuse(
                StatusCode::NOT_FOUND,
                "this console does not watch that barrier",
            );
        }
        let by = format!(
            "console@{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into())
        );
        match sqs_barrier::abort_barrier(self.watch.sqs(), barrier, &by, reason).await {
            Ok(()) => {
                tracing::warn!(barrier, %by, reason, "abort sent from the console");
                http::json(StatusCode::OK, &json!({"ok": true, "by": by}))
            }
            Err(e) => Self::refuse(StatusCode::BAD_GATEWAY, &e.to_string()),
        }
    }
}

/// Compares two tokens in time that depends on their length only, not on
/// where they differ: the answer's timing tells nothing of a token.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::same_token;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("0123abcd", "0123abcd"));
        assert!(!same_token("0123abcd", "0123abce"));
        assert!(!same_token("0123abcd", "0123abc"));
        assert!(!same_token("", "x"));
    }
}
