//! The action gate: every request that changes something goes through
//! [`Guard::authorize`], and every request at all through
//! [`Guard::check_host`].
//!
//! How to call it (the signature stays as it is):
//!
//! ```text
//! pub(crate) fn authorize(&self, req: &Req) -> Result<Actor, Response<Full<Bytes>>>
//!
//! // in a handler of a state-changing request (the console holds the guard
//! // as `console.guard`):
//! let actor = match self.guard.authorize(&req) {
//!     Ok(actor) => actor,
//!     Err(refused) => return refused, // already logged, reason in plain words
//! };
//! // ... act, then log it at info level with who and what:
//! tracing::info!(who = %actor.who, from = %actor.from(), action = "purge", queue, "console action");
//! ```
//!
//! `authorize` refuses (a JSON `{"ok": false, "error": "...", "code": "..."}`
//! answer, logged at info level) when the console is read-only, when the
//! `Host` is not one the console answers for (DNS rebinding), when the
//! request comes from another site (`Origin` or `Sec-Fetch-Site`), when its
//! body is not declared `application/json`, and when it lacks a valid page
//! token (`X-Console-Token`). `code` is `read-only`, `host`, `cross-origin`,
//! `content-type` or `token`: on `token` the page fetches a fresh token
//! (`GET /api/token`) and retries once.
//!
//! The page tokens are not stored: a token is an expiry, a random nonce and
//! an HMAC-SHA256 of both under a key drawn at random when the process
//! starts, so any number of pages can be served without pushing out the
//! token of an open one, and a token stops working when it expires or the
//! console restarts.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, KeyInit as _, Mac as _};
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::json;
use sha2::Sha256;

use crate::console::ConsoleOptions;
use crate::http::{self, Req};

type HmacSha256 = Hmac<Sha256>;

/// Who acts, for the log and for what is sent on their behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Actor {
    /// The label actions are sent with: `console@HOST` (the host's name) (the console has
    /// no login, so every browser acts as the console).
    pub who: String,
    /// The peer address of the connection, when known.
    pub peer: Option<SocketAddr>,
}

impl Actor {
    /// The peer address for the log (`unknown` when the request did not
    /// come over a connection).
    pub fn from(&self) -> String {
        self.peer
            .map_or_else(|| "unknown".to_owned(), |p| p.to_string())
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.who, self.from())
    }
}

/// One accepted `Host` value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostRule {
    /// The name or address, lower case (IPv6 in brackets).
    name: String,
    /// The port it must carry, or `None`: any port, or none.
    port: Option<u16>,
}

impl HostRule {
    fn matches(&self, host: &str) -> bool {
        let (name, port) = split_host(host);
        name.eq_ignore_ascii_case(&self.name)
            && match self.port {
                None => true,
                // Browsers leave HTTP's default port out of `Host`.
                Some(80) => matches!(port, Some(80) | None),
                Some(p) => port == Some(p),
            }
    }
}

/// Splits a `Host` value into its name and port (`[::1]:80` into `[::1]`
/// and 80); an unparsable port counts as none.
fn split_host(host: &str) -> (&str, Option<u16>) {
    let colon = if host.starts_with('[') {
        host.find(']')
            .and_then(|end| host[end..].find(':').map(|c| c + end))
    } else {
        host.rfind(':')
    };
    match colon {
        Some(i) => (&host[..i], host[i + 1..].parse().ok()),
        None => (host, None),
    }
}

/// Checks one `--allowed-host` value: a host name or an IP address (IPv6
/// in brackets), optionally followed by `:PORT`; nothing else (no scheme,
/// path, wildcard or space). Returns the rule it stands for.
fn parse_allowed_host(value: &str) -> Result<HostRule, String> {
    let (name, port) = split_host(value);
    let port_text = value.get(name.len() + 1..);
    if port_text.is_some() && port.is_none() {
        return Err(format!("{value:?}: the part after ':' is not a port"));
    }
    let name = name.to_ascii_lowercase();
    let ok = if let Some(inner) = name.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    if !ok {
        return Err(format!(
            "{value:?} is not a host name or IP address (optionally with :PORT)"
        ));
    }
    Ok(HostRule { name, port })
}

/// Checks the `--allowed-host` values, for [`ConsoleOptions::check`].
pub(crate) fn check_allowed_hosts(values: &[String]) -> Result<(), String> {
    values
        .iter()
        .try_for_each(|v| parse_allowed_host(v).map(drop))
}

/// The gate of the console: the `Host` check, the page tokens, and the
/// checks of every state-changing request.
pub(crate) struct Guard {
    hosts: Vec<HostRule>,
    read_only: bool,
    key: [u8; 32],
    started: Instant,
    lifetime: Duration,
    who: String,
}

/// Why a request was refused: its status, a code for the page, and the
/// reason in plain words.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    why: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, why: impl Into<String>) -> Self {
        Self {
            status,
            code,
            why: why.into(),
        }
    }

    fn response(self, req: &Req) -> Response<Full<Bytes>> {
        tracing::info!(
            method = %req.method,
            path = %req.path,
            from = %req.peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
            code = self.code,
            reason = %self.why,
            "console request refused"
        );
        http::json(
            self.status,
            &json!({"ok": false, "error": self.why, "code": self.code}),
        )
    }
}

impl Guard {
    /// The gate of a console with `options` (already checked) whose
    /// listener is bound to `local`.
    pub fn new(options: &ConsoleOptions, local: SocketAddr) -> Self {
        let port = local.port();
        let mut hosts = Vec::new();
        if local.ip().is_loopback() {
            for name in ["localhost", "127.0.0.1", "[::1]"] {
                hosts.push(HostRule {
                    name: name.to_owned(),
                    port: Some(port),
                });
            }
        }
        if !local.ip().is_unspecified() {
            let name = match local.ip() {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            };
            hosts.push(HostRule {
                name,
                port: Some(port),
            });
        }
        hosts.extend(
            options
                .allowed_hosts
                .iter()
                .filter_map(|h| parse_allowed_host(h).ok()),
        );
        Self {
            hosts,
            read_only: options.read_only,
            key: rand::random(),
            started: Instant::now(),
            lifetime: options.token_lifetime,
            who: format!("console@{}", host_name()),
        }
    }

    /// Whether the console takes no actions (`--read-only`).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// How long a page token is accepted for.
    pub fn token_lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Refuses (421) a request whose `Host` is not one this console
    /// answers for: a loopback name and the port for a loopback bind, the
    /// bound address, and every `--allowed-host`. Every request goes
    /// through this, whatever `--allow-remote` says: a page of another
    /// site that rebinds its name to this address sends its own name.
    // The refusal goes straight back to the router, once per request:
    // boxing it would only make every caller unbox it.
    #[allow(clippy::result_large_err)]
    pub fn check_host(&self, req: &Req) -> Result<(), Response<Full<Bytes>>> {
        let host = req.header("host").unwrap_or_default();
        if self.hosts.iter().any(|rule| rule.matches(host)) {
            return Ok(());
        }
        tracing::info!(
            host,
            path = %req.path,
            "console request refused: a Host it does not answer for"
        );
        Err(http::text(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this console does not answer for the host name {host:?}: open it by its own address, or start it with --allowed-host for this name\n"
            ),
        ))
    }

    /// Refuses (403, logged) a request sent by a page of another site: for
    /// what the page itself asks that changes nothing but must not reach
    /// other pages (a fresh token).
    #[allow(clippy::result_large_err)]
    pub fn check_page_request(&self, req: &Req) -> Result<(), Response<Full<Bytes>>> {
        Self::check_same_origin(req).map_err(|r| r.response(req))
    }

    /// Refuses a request sent by a page of another site: its `Origin` is
    /// not this console's, or its `Sec-Fetch-Site` is not `same-origin`
    /// (`none`, a request the user made directly, is let through).
    fn check_same_origin(req: &Req) -> Result<(), Refusal> {
        let cross = || {
            Refusal::new(
                StatusCode::FORBIDDEN,
                "cross-origin",
                "cross-origin request refused: only the console's own page can do this",
            )
        };
        if let Some(site) = req.header("sec-fetch-site")
            && !matches!(site, "same-origin" | "none")
        {
            return Err(cross());
        }
        if let Some(origin) = req.header("origin") {
            let host = req.header("host").unwrap_or_default();
            let same = ["http://", "https://"].iter().any(|scheme| {
                origin
                    .strip_prefix(scheme)
                    .is_some_and(|o| o.eq_ignore_ascii_case(host))
            });
            if !same {
                return Err(cross());
            }
        }
        Ok(())
    }

    /// Checks a state-changing request: not read-only, its `Host`, its
    /// origin, a JSON body, and a valid page token, in that order. Returns
    /// who acts, or the refusal to answer with (already logged).
    #[allow(clippy::result_large_err)] // as `check_host`
    pub(crate) fn authorize(&self, req: &Req) -> Result<Actor, Response<Full<Bytes>>> {
        self.check_host(req)?;
        self.check(req).map_err(|r| r.response(req))?;
        Ok(Actor {
            who: self.who.clone(),
            peer: req.peer,
        })
    }

    fn check(&self, req: &Req) -> Result<(), Refusal> {
        if self.read_only {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "read-only",
                "this console is read-only (started with --read-only): it takes no actions",
            ));
        }
        Self::check_same_origin(req)?;
        let json = req.header("content-type").is_some_and(|c| {
            c.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
        if !json {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content-type",
                "send JSON (Content-Type: application/json)",
            ));
        }
        match req.header("x-console-token") {
            None | Some("") => Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "token",
                "missing page token: reload the console and try again",
            )),
            Some(token) => self.verify(token).map_err(|why| {
                Refusal::new(
                    StatusCode::FORBIDDEN,
                    "token",
                    format!("{why}: reload the console and try again"),
                )
            }),
        }
    }

    /// A new page token: `EXPIRY.NONCE.MAC` (seconds since the console
    /// started at which it expires, 16 random hex digits, and the
    /// HMAC-SHA256 of both in hex).
    pub fn token(&self) -> String {
        let expiry = (self.started.elapsed() + self.lifetime).as_secs() + 1;
        let body = format!("{expiry}.{:016x}", rand::random::<u64>());
        let mac = hex(&self.mac(&body).finalize().into_bytes());
        format!("{body}.{mac}")
    }

    fn mac(&self, body: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length");
        mac.update(body.as_bytes());
        mac
    }

    /// Checks a page token: its MAC (in constant time), then its expiry.
    fn verify(&self, token: &str) -> Result<(), &'static str> {
        const FORGED: &str = "invalid page token";
        let (body, mac) = token.rsplit_once('.').ok_or(FORGED)?;
        let mac = unhex(mac).ok_or(FORGED)?;
        self.mac(body).verify_slice(&mac).map_err(|_| FORGED)?;
        let expiry: u64 = body
            .split_once('.')
            .and_then(|(e, _)| e.parse().ok())
            .ok_or(FORGED)?;
        if self.started.elapsed().as_secs() >= expiry {
            return Err("the page token has expired");
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// This host's name (see [`sqs_barrier::admin::hostname`]).
pub(crate) fn host_name() -> String {
    sqs_barrier::admin::hostname()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(lifetime: Duration) -> Guard {
        let options = ConsoleOptions {
            token_lifetime: lifetime,
            ..ConsoleOptions::default()
        };
        Guard::new(&options, "127.0.0.1:9325".parse().unwrap())
    }

    #[test]
    fn tokens_verify_until_they_expire() {
        let g = guard(Duration::from_secs(3600));
        let t = g.token();
        assert_eq!(g.verify(&t), Ok(()));
        assert_ne!(t, g.token());
        // Another process's key, a changed expiry, a changed MAC.
        assert_eq!(
            guard(Duration::from_secs(3600)).verify(&t),
            Err("invalid page token")
        );
        let (expiry, rest) = t.split_once('.').unwrap();
        let later = format!("{}.{rest}", expiry.parse::<u64>().unwrap() + 100);
        assert_eq!(g.verify(&later), Err("invalid page token"));
        let mut flipped = t.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert!(g.verify(std::str::from_utf8(&flipped).unwrap()).is_err());
        for junk in ["", ".", "1.2.3", "x.y.zz", "1.2.", &"0".repeat(32)] {
            assert!(g.verify(junk).is_err(), "{junk:?}");
        }
        let expired = guard(Duration::ZERO);
        let t = expired.token();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(expired.verify(&t), Err("the page token has expired"));
    }

    #[test]
    fn hosts_split_and_allowed_hosts_parse() {
        assert_eq!(split_host("a.example:80"), ("a.example", Some(80)));
        assert_eq!(split_host("a.example"), ("a.example", None));
        assert_eq!(split_host("[::1]:9325"), ("[::1]", Some(9325)));
        assert_eq!(split_host("[::1]"), ("[::1]", None));
        for ok in [
            "console.example.com",
            "Console.Example.com:8443",
            "10.0.0.5",
            "10.0.0.5:9325",
            "[fd00::1]:9325",
            "ops-host",
        ] {
            assert!(parse_allowed_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "http://a.example",
            "a.example/x",
            "*.example.com",
            "a example",
            "a.example:port",
            "a..example",
            "[zz]",
        ] {
            assert!(parse_allowed_host(bad).is_err(), "{bad}");
        }
        let rule = parse_allowed_host("Console.Example.com").unwrap();
        assert!(rule.matches("console.example.COM:443"));
        assert!(rule.matches("console.example.com"));
        assert!(!rule.matches("console.example.com.evil.example"));
        let rule = parse_allowed_host("console.example.com:8443").unwrap();
        assert!(rule.matches("console.example.com:8443"));
        assert!(!rule.matches("console.example.com:9325"));
        // Port 80: browsers send the name alone.
        let rule = parse_allowed_host("console.example.com:80").unwrap();
        assert!(rule.matches("console.example.com"));
        assert!(rule.matches("console.example.com:80"));
        assert!(!rule.matches("console.example.com:8080"));
    }

    #[test]
    fn the_host_name_is_the_systems() {
        let name = host_name();
        assert!(!name.is_empty());
        assert!(!name.contains('\n'));
    }
}
