//! `sqs-barrier console`: a live web console of an endpoint's queues and
//! barriers, with their metrics at `/metrics`.
//!
//! One page (server-rendered HTML with a small script, no build step) polls
//! `/api/state` every second; the state comes from [`watch::Watch`], which
//! reads SQS every `--interval`. An abort is a `POST /api/abort` that must
//! carry a token the server put into the page it served (per page load, kept
//! for the newest pages) in the `X-Console-Token` header, with a JSON body:
//! a request from another site can neither read the page nor send that
//! header without a CORS preflight, which the console never grants. Bound to
//! loopback, it also refuses requests whose `Host` is not a loopback name
//! (DNS rebinding).

mod watch;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::json;
use sqs_barrier::{ClientOptions, Sqs};

use crate::exit;
use crate::http::{self, Req};

/// The page; `{{TOKEN}}` and `{{INTERVAL_MS}}` are filled in per request.
const PAGE: &str = include_str!("page.html");
/// Tokens of the newest pages served that an abort is accepted with.
const TOKENS_KEPT: usize = 256;

#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// The address to serve the console on.
    #[arg(long, default_value = "127.0.0.1:9325")]
    pub bind: SocketAddr,
    /// Allow an address other than loopback. The console has no login:
    /// anyone who can reach it sees the queues and barriers and can abort
    /// barriers (with the SQS permissions of this process).
    #[arg(long)]
    pub allow_remote: bool,
    /// Watch only queues (and barriers) whose name starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Seconds between reads of SQS (0.2 to 60). Each read lists the
    /// queues, gets each one's attributes and reads each barrier's state:
    /// against real SQS that is about (queues + barriers + 1) requests per
    /// read, billed.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub interval: f64,
}

struct Console {
    watch: Arc<watch::Watch>,
    tokens: Mutex<VecDeque<String>>,
    /// Bound to loopback without --allow-remote: the `Host` names accepted.
    hosts: Option<Vec<String>>,
}

/// Runs the console until SIGINT or SIGTERM; returns the exit code.
pub async fn run(a: ConsoleArgs, client: &ClientOptions) -> u8 {
    if !a.bind.ip().is_loopback() {
        if !a.allow_remote {
            eprintln!(
                "sqs-barrier: refusing to serve the console on {} (not loopback): it has no login and can abort barriers; pass --allow-remote to do it anyway",
                a.bind
            );
            return exit::USAGE;
        }
        eprintln!(
            "sqs-barrier: WARNING: serving the console on {}: anyone who can reach it sees every queue and can abort barriers",
            a.bind
        );
    }
    if !(0.2..=60.0).contains(&a.interval) {
        eprintln!("sqs-barrier: --interval must be between 0.2 and 60 seconds");
        return exit::USAGE;
    }
    let sqs = match Sqs::connect(client).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sqs-barrier: {e}");
            return exit::of(&e);
        }
    };
    let listener = match http::bind(a.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sqs-barrier: cannot listen on {}: {e}", a.bind);
            return exit::INFRA;
        }
    };
    let local = listener.local_addr().unwrap_or(a.bind);
    let watch = watch::Watch::new(
        sqs.clone(),
        a.prefix.clone(),
        Duration::from_secs_f64(a.interval),
    );
    let hosts = (!a.allow_remote).then(|| {
        let port = local.port();
        vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            local.to_string(),
        ]
    });
    let console = Arc::new(Console {
        watch: watch.clone(),
        tokens: Mutex::new(VecDeque::new()),
        hosts,
    });
    let watching = tokio::spawn(watch.run());
    let url = format!("http://{local}/");
    println!(
        "sqs-barrier console: {url} (SQS endpoint {}; metrics at {url}metrics; stop with Ctrl-C)",
        watch::display_endpoint(sqs.endpoint())
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    http::serve(
        listener,
        move |req| {
            let console = console.clone();
            async move { console.handle(req).await }
        },
        crate::commands::shutdown_signal(),
    )
    .await;
    watching.abort();
    eprintln!("sqs-barrier console: shutting down");
    exit::OK
}

impl Console {
    async fn handle(&self, req: Req) -> Response<Full<Bytes>> {
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
