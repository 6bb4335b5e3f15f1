//! The console's router called directly with `http::Request` values, and
//! the server and the coordinator's metrics over TCP with hyper's client, on
//! the embedded endpoint with a real coordinator and a member waiting.
//! (`crates/cli/tests/console.rs` runs the binary; the page itself is tested
//! in a browser by tests/python/test_console.py.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sqs_barrier::admin::{self, SetupOptions};
use sqs_barrier::core::coordinator::Event;
use sqs_barrier::{Arrival, Barrier, CoordinatorOptions, Error, RequestCounter, Sqs};
use sqs_barrier_console::{Console, ConsoleOptions, OptionsError, serve_coordinator};
use sqs_barrier_local::Server;
use tokio::sync::oneshot;

/// The address the console is told it is served on (the router tests use
/// no listener).
const LOCAL: &str = "127.0.0.1:9325";

/// The embedded endpoint, a barrier of 2 with its coordinator, and member
/// "0" waiting at phase 0 (member "1" missing).
struct Fixture {
    sqs: Sqs,
    name: String,
    arrival: Option<Arrival>,
    stop: Option<oneshot::Sender<()>>,
    endpoint: Option<Server>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn fixture() -> Fixture {
    let endpoint = Server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("start the embedded endpoint");
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let name = format!("cons{:08x}", rand::random::<u32>());
    admin::setup(&sqs, &name, &SetupOptions::new(2))
        .await
        .expect("setup");
    let (stop, stopped) = oneshot::channel::<()>();
    {
        let (sqs, name) = (sqs.clone(), name.clone());
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            let _ = sqs_barrier::run_coordinator(
                &sqs,
                &name,
                CoordinatorOptions::default(),
                None,
                shutdown,
            )
            .await;
        });
    }
    let member = Barrier::connect(&sqs, &name, "0").await.expect("connect");
    let arrival = member
        .arrive(Some(Duration::from_secs(60)))
        .await
        .expect("arrive");
    Fixture {
        sqs,
        name,
        arrival: Some(arrival),
        stop: Some(stop),
        endpoint: Some(endpoint),
    }
}

fn options(prefix: &str) -> ConsoleOptions {
    ConsoleOptions {
        prefix: Some(prefix.to_owned()),
        interval: Duration::from_millis(200),
        ..ConsoleOptions::default()
    }
}

/// A console of the fixture's barrier with its poller running.
fn console(f: &Fixture) -> Console {
    let console = Console::new(f.sqs.clone(), options(&f.name), LOCAL.parse().unwrap())
        .expect("valid options");
    tokio::spawn(console.poll());
    console
}

fn request(method: Method, path: &str) -> hyper::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", LOCAL)
}

fn get(path: &str) -> Request<Full<Bytes>> {
    request(Method::GET, path)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn body(r: Response<Full<Bytes>>) -> String {
    let bytes = r.into_body().collect().await.expect("a body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

fn header<'a>(r: &'a Response<Full<Bytes>>, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn state(console: &Console) -> Value {
    let r = console.handle(get("/api/state")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "application/json");
    serde_json::from_str(&body(r).await).expect("JSON")
}

/// Polls `/api/state` until `probe` finds something in it.
async fn eventually<T>(console: &Console, mut probe: impl FnMut(&Value) -> Option<T>) -> T {
    let limit = Duration::from_secs(20);
    let end = Instant::now() + limit;
    loop {
        let v = state(console).await;
        if let Some(found) = probe(&v) {
            return found;
        }
        assert!(Instant::now() < end, "not so within {limit:?}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the console shows member "0" arrived and "1" missing.
async fn member_missing(console: &Console) -> Value {
    eventually(console, |v| {
        let b = v["barriers"].get(0)?;
        (b["missing"].get(0)?["member"] == "1").then(|| v.clone())
    })
    .await
}

/// Loads the page and returns the token in it.
async fn page_token(console: &Console) -> String {
    let r = console.handle(get("/")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = body(r).await;
    let (_, rest) = html
        .split_once(r#"<meta name="console-token" content=""#)
        .expect("a token in the page");
    rest.split('"').next().expect("the token").to_owned()
}

fn abort(token: Option<&str>, headers: &[(&str, &str)], body: &str) -> Request<Full<Bytes>> {
    let mut b = request(Method::POST, "/api/abort");
    if let Some(t) = token {
        b = b.header("x-console-token", t);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_carries_a_new_token_each_load() {
    let endpoint = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let console = Console::new(sqs, options("none"), LOCAL.parse().unwrap()).unwrap();
    assert_eq!(console.endpoint(), endpoint.endpoint_url());

    let r = console.handle(get("/")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert_eq!(header(&r, "x-frame-options"), "DENY");
    assert!(header(&r, "content-security-policy").contains("frame-ancestors 'none'"));
    assert!(!body(r).await.contains("{{TOKEN}}"));

    let (a, b) = (page_token(&console).await, page_token(&console).await);
    // EXPIRY.NONCE.MAC: an expiry, a nonce and an HMAC-SHA256 of both.
    let parts: Vec<&str> = a.split('.').collect();
    assert_eq!(parts.len(), 3, "{a}");
    assert!(parts[0].parse::<u64>().is_ok(), "{a}");
    assert_eq!(parts[2].len(), 64, "{a}");
    assert!(parts[2].chars().all(|c| c.is_ascii_hexdigit()), "{a}");
    assert_ne!(a, b);
    assert!(
        body(console.handle(get("/")).await)
            .await
            .contains(r#"<meta name="console-read-only" content="0">"#)
    );

    // HEAD answers as GET, without a body; the icon is served.
    let head = |path: &str| {
        request(Method::HEAD, path)
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    for path in ["/", "/api/state", "/metrics", "/favicon.ico"] {
        let got = console.handle(get(path)).await;
        let r = console.handle(head(path)).await;
        assert_eq!(r.status(), StatusCode::OK, "HEAD {path}");
        assert_eq!(
            header(&r, "content-type"),
            header(&got, "content-type"),
            "HEAD {path}"
        );
        assert_eq!(body(r).await, "", "HEAD {path}");
    }
    let r = console.handle(get("/favicon.ico")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "image/svg+xml");
    assert!(body(r).await.starts_with("<svg"));

    // Other methods and paths.
    let r = console
        .handle(
            request(Method::POST, "/")
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&r, "allow"), "GET, HEAD");
    assert_eq!(
        console.handle(get("/nowhere")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        console.handle(get("/api/abort")).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_names_the_arrived_and_the_missing() {
    let f = fixture().await;
    let console = console(&f);
    let v = member_missing(&console).await;
    let b = &v["barriers"][0];
    assert_eq!(b["name"], f.name.as_str());
    assert_eq!(b["parties"], 2);
    assert_eq!(b["arrived"][0]["member"], "0");
    assert_eq!(b["open"]["generation"], 0);
    assert_eq!(b["coordinator"]["alive"], true);
    assert_eq!(v["prefix"], f.name.as_str());
    assert_eq!(v["queues"].as_array().map(Vec::len), Some(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_needs_the_token_the_same_origin_and_json() {
    let mut f = fixture().await;
    let console = console(&f);
    member_missing(&console).await;
    let token = page_token(&console).await;
    let json = ("content-type", "application/json");
    let abort_body = format!(r#"{{"barrier":"{}","reason":"testing"}}"#, f.name);
    let refused = |status: StatusCode, error: &'static str| {
        move |r: Response<Full<Bytes>>| async move {
            assert_eq!(r.status(), status);
            let v: Value = serde_json::from_str(&body(r).await).unwrap();
            assert_eq!(v["ok"], false);
            assert!(v["error"].as_str().unwrap().contains(error), "{v}");
        }
    };

    // No token, or one the console never gave.
    refused(StatusCode::FORBIDDEN, "page token")(
        console.handle(abort(None, &[json], &abort_body)).await,
    )
    .await;
    refused(StatusCode::FORBIDDEN, "page token")(
        console
            .handle(abort(Some(&"0".repeat(32)), &[json], &abort_body))
            .await,
    )
    .await;
    // From another site.
    refused(StatusCode::FORBIDDEN, "cross-origin")(
        console
            .handle(abort(
                Some(&token),
                &[json, ("origin", "http://evil.example")],
                &abort_body,
            ))
            .await,
    )
    .await;
    for site in ["cross-site", "same-site"] {
        refused(StatusCode::FORBIDDEN, "cross-origin")(
            console
                .handle(abort(
                    Some(&token),
                    &[json, ("sec-fetch-site", site)],
                    &abort_body,
                ))
                .await,
        )
        .await;
    }
    // A forged token: another MAC, another expiry with the same MAC.
    let (rest, mac) = token.rsplit_once('.').unwrap();
    let forged = format!("{rest}.{}", "0".repeat(mac.len()));
    let (expiry, tail) = token.split_once('.').unwrap();
    let extended = format!("{}.{tail}", expiry.parse::<u64>().unwrap() + 86_400);
    for bad in [forged.as_str(), extended.as_str(), "garbage"] {
        refused(StatusCode::FORBIDDEN, "invalid page token")(
            console.handle(abort(Some(bad), &[json], &abort_body)).await,
        )
        .await;
    }
    // Not JSON (a form a page of another site could send), or malformed.
    refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, "JSON")(
        console
            .handle(abort(
                Some(&token),
                &[("content-type", "application/x-www-form-urlencoded")],
                &abort_body,
            ))
            .await,
    )
    .await;
    refused(StatusCode::BAD_REQUEST, "malformed")(
        console.handle(abort(Some(&token), &[json], "{")).await,
    )
    .await;
    // A barrier the console does not watch, and no reason.
    refused(StatusCode::NOT_FOUND, "does not watch")(
        console
            .handle(abort(
                Some(&token),
                &[json],
                r#"{"barrier":"other","reason":"x"}"#,
            ))
            .await,
    )
    .await;
    refused(StatusCode::BAD_REQUEST, "reason")(
        console
            .handle(abort(
                Some(&token),
                &[json],
                &format!(r#"{{"barrier":"{}","reason":" "}}"#, f.name),
            ))
            .await,
    )
    .await;
    // Too large a body.
    let r = console
        .handle(abort(Some(&token), &[json], &" ".repeat(65 * 1024)))
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Any number of pages loaded (by any page the browser opens, with
    // no-cors GETs) leaves the open page's token valid.
    for _ in 0..1000 {
        assert_eq!(console.handle(get("/")).await.status(), StatusCode::OK);
    }

    // Nothing of that broke the barrier; the real thing does.
    let v = state(&console).await;
    assert!(v["barriers"][0]["broken"].is_null(), "{v}");
    let arrival = f.arrival.take().unwrap();
    let r = console
        .handle(abort(
            Some(&token),
            &[
                json,
                ("origin", &format!("http://{LOCAL}")),
                ("sec-fetch-site", "same-origin"),
            ],
            &abort_body,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = serde_json::from_str(&body(r).await).unwrap();
    assert_eq!(v["ok"], true);
    // Who aborts: this host's name from the system, not "localhost" from
    // an environment variable that shells do not export.
    let by = v["by"].as_str().unwrap();
    let host = by.strip_prefix("console@").expect("console@HOST");
    assert!(!host.is_empty() && host.trim() == host, "{v}");
    if let Ok(kernel) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        assert_eq!(host, kernel.trim());
    }
    match tokio::time::timeout(Duration::from_secs(30), arrival).await {
        Ok(Err(Error::Broken { .. })) => {}
        other => panic!("the member was not told of the abort: {other:?}"),
    }
}

async fn status(console: &Console, host: &str) -> StatusCode {
    console.handle(get_for(host, "/api/state")).await.status()
}

fn get_for(host: &str, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", host)
        .body(Full::<Bytes>::default())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_check_stays_on_whatever_remote_access_says() {
    let endpoint = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let loopback = [
        "127.0.0.1:9325",
        "localhost:9325",
        "[::1]:9325",
        "LOCALHOST:9325",
    ];
    // Bound to loopback, with or without --allow-remote: loopback names
    // only, and a rebound name is refused either way.
    for allow_remote in [false, true] {
        let o = ConsoleOptions {
            allow_remote,
            ..options("none")
        };
        let console = Console::new(sqs.clone(), o, LOCAL.parse().unwrap()).unwrap();
        for host in loopback {
            assert_eq!(status(&console, host).await, StatusCode::OK, "{host}");
        }
        for host in ["evil.example:9325", "evil.example", "127.0.0.1:80", ""] {
            let r = console.handle(get_for(host, "/api/state")).await;
            assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "{host:?}");
            assert!(body(r).await.contains("--allowed-host"));
        }
        let no_host = Request::get("/api/state")
            .body(Full::<Bytes>::default())
            .unwrap();
        assert_eq!(
            console.handle(no_host).await.status(),
            StatusCode::MISDIRECTED_REQUEST,
            "no Host"
        );
        // The page (and so its token) is not served to a rebound name.
        assert_eq!(
            status(&console, "evil.example:9325").await,
            StatusCode::MISDIRECTED_REQUEST
        );
    }
    // A loopback console behind a proxy can answer for a name as well.
    let o = ConsoleOptions {
        allowed_hosts: vec!["console.example.com".into()],
        ..options("none")
    };
    let console = Console::new(sqs.clone(), o, LOCAL.parse().unwrap()).unwrap();
    assert_eq!(
        status(&console, "console.example.com").await,
        StatusCode::OK
    );
    assert_eq!(status(&console, "localhost:9325").await, StatusCode::OK);

    // Not loopback: its own address and the --allowed-host names only.
    let o = ConsoleOptions {
        bind: "10.0.0.5:9325".parse().unwrap(),
        allow_remote: true,
        allowed_hosts: vec!["console.example.com".into(), "ops:8443".into()],
        ..options("none")
    };
    let console = Console::new(sqs.clone(), o, "10.0.0.5:9325".parse().unwrap()).unwrap();
    for host in [
        "10.0.0.5:9325",
        "console.example.com",
        "Console.Example.COM:9325",
        "ops:8443",
    ] {
        assert_eq!(status(&console, host).await, StatusCode::OK, "{host}");
    }
    for host in [
        "evil.example:9325",
        "ops:9325",
        "localhost:9325",
        "127.0.0.1:9325",
        "console.example.com.evil.example",
    ] {
        assert_eq!(
            status(&console, host).await,
            StatusCode::MISDIRECTED_REQUEST,
            "{host}"
        );
    }
    // Every address (0.0.0.0): only the names allowed.
    let o = ConsoleOptions {
        bind: "0.0.0.0:9325".parse().unwrap(),
        allow_remote: true,
        allowed_hosts: vec!["10.0.0.5".into()],
        ..options("none")
    };
    let console = Console::new(sqs, o, "0.0.0.0:9325".parse().unwrap()).unwrap();
    assert_eq!(status(&console, "10.0.0.5:9325").await, StatusCode::OK);
    assert_eq!(
        status(&console, "0.0.0.0:9325").await,
        StatusCode::MISDIRECTED_REQUEST
    );
    assert_eq!(
        status(&console, "evil.example:9325").await,
        StatusCode::MISDIRECTED_REQUEST
    );
}

/// A gate test's abort of a barrier nobody watches: past the gate, the
/// console answers 404.
fn abort_other(token: &str) -> Request<Full<Bytes>> {
    abort(
        Some(token),
        &[("content-type", "application/json")],
        r#"{"barrier":"other","reason":"x"}"#,
    )
}

async fn refusal(r: Response<Full<Bytes>>) -> (StatusCode, Value) {
    let status = r.status();
    (status, serde_json::from_str(&body(r).await).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_and_a_fresh_one_fetched() {
    let endpoint = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let o = ConsoleOptions {
        token_lifetime: Duration::from_secs(1),
        ..options("none")
    };
    let console = Console::new(sqs, o, LOCAL.parse().unwrap()).unwrap();
    let token = page_token(&console).await;
    let (status, _) = refusal(console.handle(abort_other(&token)).await).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a valid token passes the gate"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, v) = refusal(console.handle(abort_other(&token)).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v["code"], "token");
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
    // What the page does then: a fresh token, and the request again.
    let r = console.handle(get("/api/token")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "no-store");
    let v: Value = serde_json::from_str(&body(r).await).unwrap();
    assert_eq!(v["lifetime_s"], 1);
    let fresh = v["token"].as_str().unwrap();
    let (status, _) = refusal(console.handle(abort_other(fresh)).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Not handed to a request that says it comes from another site.
    let r = console
        .handle(
            request(Method::GET, "/api/token")
                .header("sec-fetch-site", "cross-site")
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Another console (another key) does not take this one's tokens.
    let other = Console::new(
        Sqs::local(&endpoint.endpoint_url()),
        options("none"),
        LOCAL.parse().unwrap(),
    )
    .unwrap();
    let (status, v) = refusal(other.handle(abort_other(fresh)).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        v["error"].as_str().unwrap().contains("invalid page token"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_console_refuses_every_action() {
    let mut f = fixture().await;
    let o = ConsoleOptions {
        read_only: true,
        ..options(&f.name)
    };
    let console = Console::new(f.sqs.clone(), o, LOCAL.parse().unwrap()).unwrap();
    tokio::spawn(console.poll());
    member_missing(&console).await;
    let html = body(console.handle(get("/")).await).await;
    assert!(html.contains(r#"<meta name="console-read-only" content="1">"#));
    let token = page_token(&console).await;
    let (status, v) = refusal(
        console
            .handle(abort(
                Some(&token),
                &[("content-type", "application/json")],
                &format!(r#"{{"barrier":"{}","reason":"testing"}}"#, f.name),
            ))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v["code"], "read-only");
    assert!(v["error"].as_str().unwrap().contains("read-only"), "{v}");
    // The barrier is untouched: the member still waits.
    let mut arrival = f.arrival.take().unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), &mut arrival)
            .await
            .is_err()
    );
    let v = state(&console).await;
    assert!(v["barriers"][0]["broken"].is_null(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_is_unknown_while_sqs_cannot_be_read() {
    let mut f = fixture().await;
    let console = console(&f);
    member_missing(&console).await;
    eventually(&console, |v| {
        (v["barriers"][0]["coordinator"]["liveness"] == "alive").then_some(())
    })
    .await;
    let metrics = body(console.handle(get("/metrics")).await).await;
    assert!(
        metrics.contains("sqs_barrier_coordinator_alive{"),
        "{metrics}"
    );

    // SQS goes away.
    f.endpoint.take().unwrap().shutdown().await;
    let v = eventually(&console, |v| {
        let b = &v["barriers"][0];
        (b["coordinator"]["liveness"] == "unknown" && b["last_read_age_secs"].as_f64()? > 1.0)
            .then(|| v.clone())
    })
    .await;
    let b = &v["barriers"][0];
    assert!(v["error"].is_string(), "{v}");
    assert!(b["coordinator"]["alive"].is_null(), "{v}");
    assert_eq!(b["readable"], false);
    // What was read last is still shown, and the age of that read grows.
    assert_eq!(b["missing"][0]["member"], "1");
    let before = b["last_read_age_secs"].as_f64().unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let v = state(&console).await;
    let after = v["barriers"][0]["last_read_age_secs"].as_f64().unwrap();
    assert!(after > before, "{before} then {after}");
    assert_eq!(v["barriers"][0]["coordinator"]["liveness"], "unknown");
    // No "alive" (nor "dead") is claimed in the metrics meanwhile.
    let metrics = body(console.handle(get("/metrics")).await).await;
    assert!(
        !metrics.contains(&format!(
            "sqs_barrier_coordinator_alive{{barrier=\"{}\"}}",
            f.name
        )),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_queues_named_like_a_barriers_are_not_a_barrier() {
    let endpoint = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let prefix = format!("plain{:08x}", rand::random::<u32>());
    // Two queues named like a barrier's, and a whole set of six without a
    // barrier's configuration.
    let mut queues = vec![format!("{prefix}a-checkin"), format!("{prefix}a-release-0")];
    for suffix in ["checkin", "release-0", "release-1", "dlq", "state"] {
        queues.push(format!("{prefix}b-{suffix}"));
    }
    for q in &queues {
        sqs.client()
            .create_queue()
            .queue_name(q)
            .send()
            .await
            .unwrap();
    }
    sqs.client()
        .create_queue()
        .queue_name(format!("{prefix}b-lease.fifo"))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap();
    let console = Console::new(sqs.clone(), options(&prefix), LOCAL.parse().unwrap()).unwrap();
    tokio::spawn(console.poll());
    // Decided (both opened and found plain), over several reads.
    let v = eventually(&console, |v| {
        (v["queues"].as_array()?.len() == 8 && v["undecided"].as_array()?.is_empty())
            .then(|| v.clone())
    })
    .await;
    assert_eq!(v["barriers"], serde_json::json!([]), "{v}");
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let v = state(&console).await;
        assert_eq!(v["barriers"], serde_json::json!([]), "{v}");
        assert_eq!(v["queues"].as_array().map(Vec::len), Some(8));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_are_checked() {
    let endpoint = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let any: SocketAddr = "0.0.0.0:9325".parse().unwrap();
    let remote = ConsoleOptions {
        bind: any,
        ..ConsoleOptions::default()
    };
    assert!(remote.is_remote());
    assert_eq!(remote.check(), Err(OptionsError::NotLoopback(any)));
    assert!(matches!(
        Console::new(sqs.clone(), remote.clone(), any),
        Err(OptionsError::NotLoopback(_))
    ));
    // --allow-remote alone: no Host name allowed.
    let no_host = ConsoleOptions {
        allow_remote: true,
        ..remote.clone()
    };
    assert_eq!(no_host.check(), Err(OptionsError::NoAllowedHost(any)));
    assert!(
        no_host
            .check()
            .unwrap_err()
            .to_string()
            .contains("allowed host")
    );
    let allowed = ConsoleOptions {
        allow_remote: true,
        allowed_hosts: vec!["console.example.com".into(), "[fd00::5]:9325".into()],
        ..remote
    };
    assert_eq!(allowed.check(), Ok(()));
    for bad in [
        "http://console.example.com",
        "*.example.com",
        "a/b",
        "",
        "a:b",
    ] {
        let o = ConsoleOptions {
            allowed_hosts: vec![bad.into()],
            ..allowed.clone()
        };
        assert!(
            matches!(o.check(), Err(OptionsError::AllowedHost(_))),
            "{bad:?}"
        );
    }
    for lifetime in [Duration::ZERO, Duration::from_secs(86_401)] {
        let o = ConsoleOptions {
            token_lifetime: lifetime,
            ..ConsoleOptions::default()
        };
        assert_eq!(o.check(), Err(OptionsError::TokenLifetime(lifetime)));
    }
    for interval in [
        Duration::ZERO,
        Duration::from_millis(199),
        Duration::from_secs(61),
    ] {
        let o = ConsoleOptions {
            interval,
            ..ConsoleOptions::default()
        };
        assert_eq!(o.check(), Err(OptionsError::Interval(interval)));
    }
    for interval in [Duration::from_millis(200), Duration::from_secs(60)] {
        let o = ConsoleOptions {
            interval,
            ..ConsoleOptions::default()
        };
        assert_eq!(o.check(), Ok(()));
    }
    assert!(ConsoleOptions::default().check().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_the_prometheus_text_format() {
    let f = fixture().await;
    let console = console(&f);
    member_missing(&console).await;
    let r = console.handle(get("/metrics")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        header(&r, "content-type").starts_with("text/plain; version=0.0.4"),
        "{}",
        header(&r, "content-type")
    );
    let text = body(r).await;
    let barrier = format!("barrier=\"{}\"", f.name);
    for line in [
        format!("sqs_barrier_parties{{{barrier}}} 2"),
        format!("sqs_barrier_arrived{{{barrier}}} 1"),
        format!("sqs_barrier_coordinator_alive{{{barrier}}} 1"),
        format!("sqs_barrier_broken{{{barrier}}} 0"),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in {text}");
    }
    assert!(text.contains("# TYPE sqs_barrier_parties gauge"), "{text}");
    assert!(text.contains("sqs_barrier_sqs_requests_total{operation=\"ListQueues\"}"));
    let r = console
        .handle(
            request(Method::POST, "/metrics")
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// One request over TCP with hyper's client.
async fn fetch(addr: SocketAddr, req: Request<Full<Bytes>>) -> (StatusCode, String, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let r = sender.send_request(req).await.expect("a response");
    let status = r.status();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = r.into_body().collect().await.expect("a body").to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).expect("UTF-8"),
    )
}

fn get_from(addr: SocketAddr, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", addr.to_string())
        .body(Full::default())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_over_tcp_until_shutdown() {
    let f = fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let console = Console::new(f.sqs.clone(), options(&f.name), addr).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(console.serve(listener, async {
        let _ = stopped.await;
    }));

    // `serve` runs the poller: the state fills in.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, content_type, text) = fetch(addr, get_from(addr, "/api/state")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["barriers"][0]["missing"][0]["member"] == "1" {
            break;
        }
        assert!(Instant::now() < end, "no barrier in {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, content_type, html) = fetch(addr, get_from(addr, "/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(html.contains(r#"<meta name="console-token""#));
    let (status, _, text) = fetch(addr, get_from(addr, "/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains(&format!("barrier=\"{}\"", f.name)), "{text}");
    // A request for another host name (DNS rebinding).
    let rebound = Request::get("/")
        .header("host", format!("evil.example:{}", addr.port()))
        .body(Full::default())
        .unwrap();
    assert_eq!(
        fetch(addr, rebound).await.0,
        StatusCode::MISDIRECTED_REQUEST
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returns on shutdown")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinators_metrics() {
    let counter = RequestCounter::default();
    let (gauges, events, addr) =
        serve_coordinator("127.0.0.1:0".parse().unwrap(), "etl", counter.clone())
            .await
            .expect("serve");
    gauges
        .active
        .store(true, std::sync::atomic::Ordering::Relaxed);
    events
        .send(Event::Arrived {
            generation: 0,
            member: "a".into(),
            count: 1,
            of: 2,
        })
        .unwrap();
    events
        .send(Event::Rejected {
            reason: "check-in from \"x\", who is not a member".into(),
        })
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (status, content_type, text) = fetch(addr, get_from(addr, "/metrics")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        if text.contains("sqs_barrier_rejected_messages_total") {
            break text;
        }
        assert!(Instant::now() < end, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for line in [
        "sqs_barrier_arrivals_total{barrier=\"etl\"} 1",
        "sqs_barrier_coordinator_active{barrier=\"etl\"} 1",
        "sqs_barrier_held_checkins{barrier=\"etl\"} 0",
        "sqs_barrier_rejected_messages_total{barrier=\"etl\",reason=\"not_a_member\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in {text}");
    }
    // 0 or 1: it rests 2 s after the last check-in.
    assert!(
        text.contains("sqs_barrier_coordinator_resting{barrier=\"etl\"} "),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    let (status, _, text) = fetch(addr, get_from(addr, "/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("see /metrics"), "{text}");
    assert_eq!(
        fetch(addr, get_from(addr, "/api/state")).await.0,
        StatusCode::NOT_FOUND
    );
}
