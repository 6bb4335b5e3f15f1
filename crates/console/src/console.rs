//! The console: its options and the router of the page, `/queues.js`,
//! `/api/state`, `/api/token`, `/api/abort`, the queues API (`queues/`) and
//! `/metrics` (the checks of requests are in the gate, `guard.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Body;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use sqs_barrier::Sqs;
use tokio::net::TcpListener;

use crate::guard::{self, Guard};
use crate::http::{self, Req};
use crate::watch;

/// The page; `{{TOKEN}}` and `{{READ_ONLY}}` are filled in per request.
const PAGE: &str = include_str!("page.html");
/// The page's queue management script (`/queues.js`).
const QUEUES_JS: &str = include_str!("queues.js");
/// The console's icon (`/favicon.ico`).
const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#232f3e\"/><rect x=\"3\" y=\"3\" width=\"2\" height=\"10\" fill=\"#ff9900\"/><rect x=\"11\" y=\"3\" width=\"2\" height=\"10\" fill=\"#ff9900\"/><rect x=\"5\" y=\"7\" width=\"6\" height=\"2\" fill=\"#fff\"/></svg>";

/// What a console serves and watches.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsoleOptions {
    /// The address to serve the console on (its port may be 0: the
    /// console takes the address actually bound, see [`Console::new`]).
    pub bind: SocketAddr,
    /// Allow an address other than loopback. The console has no login:
    /// anyone who can reach it sees the queues and barriers and can abort
    /// barriers (with the SQS permissions of its client). It does not turn
    /// off the `Host` check (see [`ConsoleOptions::allowed_hosts`]).
    pub allow_remote: bool,
    /// The `Host` names the console answers for besides its own address
    /// (and, bound to loopback, `localhost`, `127.0.0.1` and `[::1]` with
    /// its port): each a host name or IP address (IPv6 in brackets),
    /// optionally with `:PORT` (without one, any port). A request for
    /// another name is refused (421), so a page of another site cannot
    /// reach the console by rebinding its own name to the console's
    /// address. An address other than loopback needs at least one.
    pub allowed_hosts: Vec<String>,
    /// Take no actions: the page shows none and every state-changing
    /// request is refused.
    pub read_only: bool,
    /// How long a page's token is accepted for, within
    /// [`ConsoleOptions::TOKEN_LIFETIMES`]; the page fetches a new one
    /// when its own has expired.
    pub token_lifetime: Duration,
    /// Watch only queues (and barriers) whose name starts with this.
    pub prefix: Option<String>,
    /// The time between reads of SQS, within [`ConsoleOptions::INTERVALS`].
    /// Each read lists the queues, gets each one's attributes and reads
    /// each barrier's state: against real SQS that is about (queues +
    /// barriers + 1) requests per read, billed.
    pub interval: Duration,
}

impl Default for ConsoleOptions {
    /// Loopback port 9325, no remote access, actions allowed, every
    /// queue, one read a second, tokens for an hour.
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 9325)),
            allow_remote: false,
            allowed_hosts: Vec::new(),
            read_only: false,
            prefix: None,
            interval: Duration::from_secs(1),
            token_lifetime: Duration::from_secs(3600),
        }
    }
}

impl ConsoleOptions {
    /// The intervals between reads of SQS accepted: 0.2 s to 60 s.
    pub const INTERVALS: RangeInclusive<Duration> =
        Duration::from_millis(200)..=Duration::from_secs(60);

    /// The lifetimes of a page token accepted: 1 s to 24 h.
    pub const TOKEN_LIFETIMES: RangeInclusive<Duration> =
        Duration::from_secs(1)..=Duration::from_secs(24 * 3600);

    /// Whether the console would be served on an address other than
    /// loopback (refused unless `allow_remote`).
    pub fn is_remote(&self) -> bool {
        !self.bind.ip().is_loopback()
    }

    /// Checks the options: a bind address that is not loopback needs
    /// `allow_remote` and at least one allowed host; every allowed host
    /// must be a host name or address with an optional port; the interval
    /// and the token lifetime must be within their ranges.
    pub fn check(&self) -> Result<(), OptionsError> {
        if self.is_remote() && !self.allow_remote {
            return Err(OptionsError::NotLoopback(self.bind));
        }
        guard::check_allowed_hosts(&self.allowed_hosts).map_err(OptionsError::AllowedHost)?;
        if self.is_remote() && self.allowed_hosts.is_empty() {
            return Err(OptionsError::NoAllowedHost(self.bind));
        }
        if !Self::INTERVALS.contains(&self.interval) {
            return Err(OptionsError::Interval(self.interval));
        }
        if !Self::TOKEN_LIFETIMES.contains(&self.token_lifetime) {
            return Err(OptionsError::TokenLifetime(self.token_lifetime));
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
    /// The bind address is not loopback and no `Host` name was allowed.
    #[error(
        "serving the console on {0} (not loopback) needs at least one allowed host: the name (or address) browsers will use to reach it, so that requests for any other name (DNS rebinding) are refused"
    )]
    NoAllowedHost(SocketAddr),
    /// An allowed host is not a host name or address.
    #[error("allowed host {0}")]
    AllowedHost(String),
    /// The interval between reads is out of range.
    #[error("the interval between reads must be between 0.2 and 60 seconds, not {0:?}")]
    Interval(Duration),
    /// The lifetime of page tokens is out of range.
    #[error("the lifetime of page tokens must be between 1 second and 24 hours, not {0:?}")]
    TokenLifetime(Duration),
}

/// A live web console of an endpoint's queues and barriers: the poller of
/// SQS ([`Console::poll`]) and the router of its requests
/// ([`Console::handle`]); [`Console::serve`] runs both.
pub struct Console {
    watch: Arc<watch::Watch>,
    /// The gate every request goes through (its `Host`), and every
    /// state-changing one (`guard.authorize(&req)`).
    pub(crate) guard: Guard,
}

impl Console {
    /// A console of the queues of `sqs`'s endpoint, to be served on
    /// `local`: the address its listener is bound to (the `Host` names it
    /// answers for are this address, the loopback names with its port if
    /// it is loopback, and [`ConsoleOptions::allowed_hosts`]). Fails if
    /// [`ConsoleOptions::check`] does.
    pub fn new(sqs: Sqs, options: ConsoleOptions, local: SocketAddr) -> Result<Self, OptionsError> {
        options.check()?;
        let guard = Guard::new(&options, local);
        Ok(Self {
            watch: watch::Watch::new(sqs, options.prefix, options.interval),
            guard,
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
    /// new token), `GET /queues.js` (its queue management script), `GET
    /// /api/state`, `GET /api/token` (a new token), `POST /api/abort`, the
    /// queues API under `/api/queues`, `GET /metrics`, `GET /favicon.ico`;
    /// `HEAD` of
    /// each `GET` (the same head, no body). A body larger than 64 KiB is
    /// refused (413), a request for another host than the console's (421).
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
        if let Err(refused) = self.guard.check_host(&req) {
            return refused;
        }
        if req.method == hyper::Method::HEAD {
            let mut r = self.get(&req).await;
            *r.body_mut() = Full::new(Bytes::new());
            return r;
        }
        match (req.method.as_str(), req.path.as_str()) {
            (_, p) if crate::queues::handles(p) => {
                crate::queues::route(self.watch.sqs(), &self.guard, self.watch.prefix(), &req).await
            }
            ("GET", _) => self.get(&req).await,
            ("POST", "/api/abort") => self.abort(&req).await,
            (_, "/" | "/api/state" | "/api/token" | "/metrics" | "/favicon.ico" | "/api/abort") => {
                let mut r = http::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                let allow = if req.path == "/api/abort" {
                    "POST"
                } else {
                    "GET, HEAD"
                };
                r.headers_mut()
                    .insert("allow", hyper::header::HeaderValue::from_static(allow));
                r
            }
            _ => http::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// The answer to a `GET` (or, without its body, a `HEAD`) of `req.path`.
    async fn get(&self, req: &Req) -> Response<Full<Bytes>> {
        match req.path.as_str() {
            "/" => self.page(),
            "/api/state" => http::json(StatusCode::OK, &self.watch.snapshot()),
            "/api/token" => self.new_token(req),
            "/metrics" => self.watch.metrics_response(),
            "/queues.js" => http::response(StatusCode::OK, "text/javascript", QUEUES_JS),
            "/favicon.ico" => {
                let mut r = http::response(StatusCode::OK, "image/svg+xml", ICON);
                r.headers_mut().insert(
                    hyper::header::CACHE_CONTROL,
                    hyper::header::HeaderValue::from_static("max-age=86400"),
                );
                r
            }
            "/api/abort" => {
                let mut r = http::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                r.headers_mut()
                    .insert("allow", hyper::header::HeaderValue::from_static("POST"));
                r
            }
            _ => http::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    fn page(&self) -> Response<Full<Bytes>> {
        let body = PAGE.replace("{{TOKEN}}", &self.guard.token()).replace(
            "{{READ_ONLY}}",
            if self.guard.read_only() { "1" } else { "0" },
        );
        let mut r = http::response(StatusCode::OK, "text/html; charset=utf-8", body);
        r.headers_mut().insert(
            "content-security-policy",
            hyper::header::HeaderValue::from_static(
                "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        );
        r
    }

    /// A fresh page token for a page whose own has expired. Another site
    /// cannot read the answer (no CORS), and a request that says it comes
    /// from another site is refused.
    fn new_token(&self, req: &Req) -> Response<Full<Bytes>> {
        if let Err(refused) = self.guard.check_page_request(req) {
            return refused;
        }
        http::json(
            StatusCode::OK,
            &json!({
                "token": self.guard.token(),
                "lifetime_s": self.guard.token_lifetime().as_secs(),
            }),
        )
    }

    fn refuse(status: StatusCode, why: &str) -> Response<Full<Bytes>> {
        http::json(status, &json!({"ok": false, "error": why}))
    }

    async fn abort(&self, req: &Req) -> Response<Full<Bytes>> {
        let actor = match self.guard.authorize(req) {
            Ok(actor) => actor,
            Err(refused) => return refused,
        };
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
        let by = &actor.who;
        match sqs_barrier::abort_barrier(self.watch.sqs(), barrier, by, reason).await {
            Ok(()) => {
                tracing::info!(who = %by, from = %actor.from(), action = "abort", barrier, reason, "console action: abort sent");
                http::json(StatusCode::OK, &json!({"ok": true, "by": by}))
            }
            Err(e) => {
                tracing::info!(who = %by, from = %actor.from(), action = "abort", barrier, reason, error = %e, "console action failed: abort not sent");
                Self::refuse(
                    StatusCode::BAD_GATEWAY,
                    &format!("the abort was not sent: {e}"),
                )
            }
        }
    }
}
