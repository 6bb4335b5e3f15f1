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
    _endpoint: Server,
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
        _endpoint: endpoint,
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
    assert_eq!(a.len(), 32, "{a}");
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
    assert_ne!(a, b);

    // Other methods and paths.
    let r = console
        .handle(
            request(Method::POST, "/")
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        console.handle(get("/nowhere")).await.status(),
        StatusCode::NOT_FOUND
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

    // Nothing of that broke the barrier; the real thing does.
    let v = state(&console).await;
    assert!(v["barriers"][0]["broken"].is_null(), "{v}");
    let arrival = f.arrival.take().unwrap();
    let r = console
        .handle(abort(
            Some(&token),
            &[json, ("origin", &format!("http://{LOCAL}"))],
            &abort_body,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = serde_json::from_str(&body(r).await).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["by"].as_str().unwrap().starts_with("console@"), "{v}");
    match tokio::time::timeout(Duration::from_secs(30), arrival).await {
        Ok(Err(Error::Broken { .. })) => {}
        other => panic!("the member was not told of the abort: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_refused_unless_remote_access_is_allowed() {
    let endpoint = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let rebound = || {
        Request::get("/api/state")
            .header("host", "evil.example:9325")
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    let console = Console::new(sqs.clone(), options("none"), LOCAL.parse().unwrap()).unwrap();
    for host in [
        "127.0.0.1:9325",
        "localhost:9325",
        "[::1]:9325",
        "LOCALHOST:9325",
    ] {
        let r = console
            .handle(
                Request::get("/api/state")
                    .header("host", host)
                    .body(Full::<Bytes>::default())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{host}");
    }
    let r = console.handle(rebound()).await;
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    let r = console
        .handle(
            Request::get("/api/state")
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "no Host");

    let remote = ConsoleOptions {
        allow_remote: true,
        ..options("none")
    };
    let console = Console::new(sqs, remote, LOCAL.parse().unwrap()).unwrap();
    assert_eq!(console.handle(rebound()).await.status(), StatusCode::OK);
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
    let allowed = ConsoleOptions {
        allow_remote: true,
        ..remote
    };
    assert_eq!(allowed.check(), Ok(()));
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
    assert!(!text.contains("# EOF"), "{text}");
    let (status, _, text) = fetch(addr, get_from(addr, "/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("see /metrics"), "{text}");
    assert_eq!(
        fetch(addr, get_from(addr, "/api/state")).await.0,
        StatusCode::NOT_FOUND
    );
}
