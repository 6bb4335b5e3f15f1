//! The console's queues API, called through the console's router with
//! `http::Request` values, on the embedded endpoint and on moto: every
//! action done through the API is checked with the SDK directly.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::error::ProvideErrorMetadata as _;
use aws_sdk_sqs::types::QueueAttributeName as A;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};
use sqs_barrier::{CoordinatorOptions, Sqs, admin};
use sqs_barrier_console::{Console, ConsoleOptions};
use sqs_barrier_testkit::{Target, TestEndpoint, start};

sqs_barrier_testkit::both_endpoints!(
    create_standard_and_fifo_with_dead_letter_queue_and_tags,
    edit_each_attribute,
    tags_add_and_remove,
    send_poll_and_delete_selected,
    a_queues_counts_are_read_at_once,
    purge_and_delete_need_confirmation,
    a_barriers_queues_are_refused_without_barrier_ack,
    paging_and_sorting_over_25_queues,
    redrive_start_list_cancel,
    the_gate_refuses_token_less_and_cross_origin_requests,
    a_console_with_a_prefix_acts_on_its_queues_only,
);

/// The address the console is told it is served on.
const LOCAL: &str = "127.0.0.1:9325";

struct Fixture {
    endpoint: TestEndpoint,
    sqs: Sqs,
    /// The SDK, straight to the endpoint: what the checks use.
    client: aws_sdk_sqs::Client,
    console: Console,
    token: String,
    /// A prefix of this test's queue names.
    p: String,
}

async fn fixture(target: Target) -> Fixture {
    fixture_with(target, ConsoleOptions::default()).await
}

async fn fixture_with(target: Target, options: ConsoleOptions) -> Fixture {
    let endpoint = start(target).await;
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let client = endpoint.client();
    let console = Console::new(sqs.clone(), options, LOCAL.parse().unwrap()).expect("options");
    let r = console.handle(get_req("/api/token")).await;
    let token = read(r).await.1["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    Fixture {
        endpoint,
        sqs,
        client,
        console,
        token,
        p: format!("q{:06x}", rand::random::<u32>() & 0xff_ffff),
    }
}

fn get_req(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", LOCAL)
        .body(Full::default())
        .unwrap()
}

async fn read(r: hyper::Response<Full<Bytes>>) -> (StatusCode, Value) {
    let status = r.status();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

impl Fixture {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        read(self.console.handle(get_req(path)).await).await
    }

    /// A request as the console's page sends it: token, same origin, JSON.
    async fn send(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", LOCAL)
            .header("origin", format!("http://{LOCAL}"))
            .header("content-type", "application/json")
            .header("x-console-token", &self.token)
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        read(self.console.handle(req).await).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, body).await
    }

    /// POSTs and expects success.
    async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.post(path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
        assert_eq!(v["ok"], true, "{v}");
        v
    }

    async fn url(&self, name: &str) -> String {
        self.client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
            .queue_url
            .unwrap()
    }

    async fn exists(&self, name: &str) -> bool {
        self.client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .is_ok()
    }

    async fn attrs(&self, name: &str) -> HashMap<A, String> {
        self.client
            .get_queue_attributes()
            .queue_url(self.url(name).await)
            .attribute_names(A::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default()
    }

    /// The queue's tags, waiting out SQS's tagging quota (5 a second).
    async fn tags(&self, name: &str) -> HashMap<String, String> {
        let url = self.url(name).await;
        for _ in 0..20 {
            match self.client.list_queue_tags().queue_url(&url).send().await {
                Ok(o) => return o.tags.unwrap_or_default(),
                Err(e) if e.code() == Some("RequestThrottled") => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => panic!("{name}: {e:?}"),
            }
        }
        panic!("{name}: ListQueueTags throttled for 6 s");
    }

    async fn arn(&self, name: &str) -> String {
        self.attrs(name).await[&A::QueueArn].clone()
    }

    async fn create(&self, name: &str) -> String {
        self.client
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }

    async fn count(&self, name: &str, a: A) -> u64 {
        self.attrs(name).await[&a].parse().unwrap()
    }
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

async fn create_standard_and_fifo_with_dead_letter_queue_and_tags(target: Target) {
    let f = fixture(target).await;
    let p = &f.p;
    f.ok("/api/queues", json!({"name": format!("{p}-dead")}))
        .await;
    let v = f
        .ok(
            "/api/queues",
            json!({
                "name": format!("{p}-work"),
                "attributes": {"VisibilityTimeout": 45, "DelaySeconds": "2"},
                "dead_letter_queue": {"queue": format!("{p}-dead"), "max_receive_count": 3},
                "tags": {"team": "data", "env": "test"},
            }),
        )
        .await;
    assert!(
        v["url"].as_str().unwrap().ends_with(&format!("{p}-work")),
        "{v}"
    );
    let a = f.attrs(&format!("{p}-work")).await;
    assert_eq!(a[&A::VisibilityTimeout], "45");
    assert_eq!(a[&A::DelaySeconds], "2");
    let policy: Value = serde_json::from_str(&a[&A::RedrivePolicy]).unwrap();
    assert_eq!(
        policy["deadLetterTargetArn"],
        f.arn(&format!("{p}-dead")).await.as_str()
    );
    assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), "3");
    let tags = f.tags(&format!("{p}-work")).await;
    assert_eq!(tags.get("team").map(String::as_str), Some("data"));
    assert_eq!(tags.get("env").map(String::as_str), Some("test"));

    // FIFO, with a FIFO dead-letter queue and content-based deduplication.
    f.ok("/api/queues", json!({"name": format!("{p}-fdead.fifo")}))
        .await;
    f.ok(
        "/api/queues",
        json!({
            "name": format!("{p}-f.fifo"),
            "attributes": {"ContentBasedDeduplication": true},
            "dead_letter_queue": {"queue": format!("{p}-fdead.fifo"), "max_receive_count": 5},
        }),
    )
    .await;
    let a = f.attrs(&format!("{p}-f.fifo")).await;
    assert_eq!(a[&A::FifoQueue], "true");
    assert_eq!(a[&A::ContentBasedDeduplication], "true");
    assert!(a[&A::RedrivePolicy].contains(&format!("{p}-fdead.fifo")));

    // Refusals, before SQS is asked.
    for (body, words) in [
        (
            json!({"name": format!("{p}-x.fifo"), "dead_letter_queue": {"queue": format!("{p}-dead"), "max_receive_count": 1}}),
            "must be a FIFO queue",
        ),
        (
            json!({"name": format!("{p}-x"), "attributes": {"ContentBasedDeduplication": true}}),
            "FIFO queues only",
        ),
        (
            json!({"name": format!("{p}-x"), "attributes": {"VisibilityTimeout": 43201}}),
            "from 0 to 43200",
        ),
        (json!({"name": "has space"}), "not a queue name"),
        (
            json!({"name": format!("{p}-x"), "dead_letter_queue": {"queue": format!("{p}-dead"), "max_receive_count": 0}}),
            "maxReceiveCount",
        ),
    ] {
        let (status, v) = f.post("/api/queues", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(error_of(&v).contains(words), "{v}");
    }
    assert!(!f.exists(&format!("{p}-x")).await);
    assert!(!f.exists(&format!("{p}-x.fifo")).await);
    // A name taken.
    let (status, v) = f
        .post("/api/queues", json!({"name": format!("{p}-work")}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(error_of(&v).contains("already exists"), "{v}");

    // The details.
    let (status, d) = f.get(&format!("/api/queues/{p}-work")).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["type"], "Standard");
    assert_eq!(d["attributes"]["VisibilityTimeout"], "45");
    assert_eq!(
        d["redrive_policy"]["deadLetterTargetArn"],
        f.arn(&format!("{p}-dead")).await.as_str()
    );
    assert_eq!(d["tags"]["team"], "data");
    assert!(d["barrier"].is_null(), "{d}");
    assert_eq!(d["lambda_triggers"]["known"], false);
    assert!(
        d["lambda_triggers"]["note"]
            .as_str()
            .unwrap()
            .contains("Lambda API")
    );
    let (_, d) = f.get(&format!("/api/queues/{p}-dead")).await;
    if let Some(sources) = d["dead_letter_sources"].as_array() {
        assert_eq!(sources, &vec![json!(format!("{p}-work"))], "{d}");
    }
    let (status, v) = f.get(&format!("/api/queues/{p}-none")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(error_of(&v).contains("no queue"), "{v}");
    assert!(v["sqs_code"].as_str().is_some(), "{v}");
}

async fn edit_each_attribute(target: Target) {
    let f = fixture(target).await;
    let p = &f.p;
    let (q, dlq, fq) = (
        format!("{p}-e"),
        format!("{p}-edead"),
        format!("{p}-e.fifo"),
    );
    for n in [&q, &dlq] {
        f.create(n).await;
    }
    let path = format!("/api/queues/{q}/attributes");
    for (name, value, expect) in [
        ("VisibilityTimeout", json!(60), "60"),
        ("MessageRetentionPeriod", json!(3600), "3600"),
        ("MaximumMessageSize", json!(2048), "2048"),
        ("DelaySeconds", json!(5), "5"),
        ("ReceiveMessageWaitTimeSeconds", json!(10), "10"),
        ("SqsManagedSseEnabled", json!(true), "true"),
    ] {
        let v = f.ok(&path, json!({"attributes": {name: value}})).await;
        assert_eq!(v["changed"], json!([name]));
        assert_eq!(f.attrs(&q).await[&A::from(name)], expect, "{name}");
    }
    f.ok(
        &path,
        json!({"attributes": {"RedrivePolicy": {"deadLetterTargetArn": dlq, "maxReceiveCount": 4}}}),
    )
    .await;
    let policy: Value = serde_json::from_str(&f.attrs(&q).await[&A::RedrivePolicy]).unwrap();
    assert_eq!(policy["deadLetterTargetArn"], f.arn(&dlq).await.as_str());
    f.ok(
        &format!("/api/queues/{dlq}/attributes"),
        json!({"attributes": {"RedriveAllowPolicy": {"redrivePermission": "byQueue", "sourceQueueArns": [q]}}}),
    )
    .await;
    // (moto keeps no RedriveAllowPolicy.)
    match f.attrs(&dlq).await.get(&A::RedriveAllowPolicy) {
        Some(allow) => {
            let allow: Value = serde_json::from_str(allow).unwrap();
            assert_eq!(allow["redrivePermission"], "byQueue");
            assert_eq!(allow["sourceQueueArns"][0], f.arn(&q).await.as_str());
        }
        None => assert_eq!(target, Target::Moto),
    }
    // SSE-KMS in place of SSE-SQS.
    f.ok(
        &path,
        json!({"attributes": {"SqsManagedSseEnabled": false, "KmsMasterKeyId": "alias/aws/sqs", "KmsDataKeyReusePeriodSeconds": 600}}),
    )
    .await;
    let a = f.attrs(&q).await;
    assert_eq!(a[&A::KmsMasterKeyId], "alias/aws/sqs");
    assert_eq!(a[&A::KmsDataKeyReusePeriodSeconds], "600");

    // FIFO: content-based deduplication.
    f.ok("/api/queues", json!({"name": fq})).await;
    f.ok(
        &format!("/api/queues/{fq}/attributes"),
        json!({"attributes": {"ContentBasedDeduplication": true}}),
    )
    .await;
    assert_eq!(f.attrs(&fq).await[&A::ContentBasedDeduplication], "true");

    // Out of range, or not for this queue: refused before SQS, nothing changed.
    for (attrs, words) in [
        (json!({"VisibilityTimeout": 43201}), "from 0 to 43200"),
        (json!({"MessageRetentionPeriod": 59}), "from 60 to 1209600"),
        (json!({"MaximumMessageSize": 1023}), "from 1024 to 1048576"),
        (json!({"DelaySeconds": 901}), "from 0 to 900"),
        (json!({"ReceiveMessageWaitTimeSeconds": 21}), "from 0 to 20"),
        (json!({"VisibilityTimeout": "soon"}), "whole number"),
        (
            json!({"ContentBasedDeduplication": true}),
            "FIFO queues only",
        ),
        (
            json!({"SqsManagedSseEnabled": true, "KmsMasterKeyId": "alias/x"}),
            "not both",
        ),
        (
            json!({"RedrivePolicy": {"deadLetterTargetArn": dlq, "maxReceiveCount": 1001}}),
            "maxReceiveCount",
        ),
        (
            json!({"RedriveAllowPolicy": {"redrivePermission": "some"}}),
            "allowAll, denyAll or byQueue",
        ),
        (json!({"QueueArn": "x"}), "computed by SQS"),
        (json!({"FifoQueue": true}), "cannot change"),
        (json!({"Colour": "red"}), "not an attribute"),
    ] {
        let (status, v) = f.post(&path, json!({"attributes": attrs})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{attrs}: {v}");
        assert!(error_of(&v).contains(words), "{attrs}: {v}");
        assert!(v["sqs_code"].is_null(), "{v}");
    }
    assert_eq!(f.attrs(&q).await[&A::VisibilityTimeout], "60");
    // A dead-letter queue that does not exist: SQS's word, in plain words.
    let (status, v) = f
        .post(
            &path,
            json!({"attributes": {"RedrivePolicy": {"deadLetterTargetArn": format!("{p}-nothere"), "maxReceiveCount": 1}}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(error_of(&v).contains("no queue"), "{v}");
    // Removing the redrive policy.
    f.ok(&path, json!({"attributes": {"RedrivePolicy": null}}))
        .await;
    assert!(
        f.attrs(&q)
            .await
            .get(&A::RedrivePolicy)
            .is_none_or(|v| v.is_empty()),
        "{:?}",
        f.attrs(&q).await
    );
}

async fn tags_add_and_remove(target: Target) {
    let f = fixture(target).await;
    let q = format!("{}-t", f.p);
    f.create(&q).await;
    let v = f
        .ok(
            &format!("/api/queues/{q}/tags"),
            json!({"tags": {"a": "1", "b": "2"}}),
        )
        .await;
    assert_eq!(v["added"], json!(["a", "b"]));
    assert_eq!(f.tags(&q).await.len(), 2);
    let (status, v) = f.get(&format!("/api/queues/{q}/tags")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["tags"]["b"], "2");
    f.ok(
        &format!("/api/queues/{q}/tags/remove"),
        json!({"keys": ["a"]}),
    )
    .await;
    let tags = f.tags(&q).await;
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert_eq!(tags.get("b").map(String::as_str), Some("2"));
    let (status, v) = f
        .post(
            &format!("/api/queues/{q}/tags"),
            json!({"tags": {"aws:x": "1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, _) = f
        .post(&format!("/api/queues/{q}/tags/remove"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn send_poll_and_delete_selected(target: Target) {
    let f = fixture(target).await;
    let q = format!("{}-m", f.p);
    f.create(&q).await;
    let v = f
        .ok(
            &format!("/api/queues/{q}/messages"),
            json!({
                "body": "hello",
                "attributes": {
                    "colour": {"type": "String", "value": "blue"},
                    "size": {"type": "Number", "value": "42"},
                    "raw": {"type": "Binary", "value": "AAEC"},
                },
            }),
        )
        .await;
    assert!(v["message_id"].as_str().is_some(), "{v}");
    let v = f
        .ok(
            &format!("/api/queues/{q}/messages/poll"),
            json!({"duration_secs": 2, "max_count": 5}),
        )
        .await;
    let m = &v["messages"][0];
    assert_eq!(v["count"], 1, "{v}");
    assert_eq!(m["body"], "hello");
    assert_eq!(
        m["message_attributes"]["colour"],
        json!({"type": "String", "value": "blue"})
    );
    assert_eq!(
        m["message_attributes"]["size"],
        json!({"type": "Number", "value": "42"})
    );
    assert_eq!(
        m["message_attributes"]["raw"],
        json!({"type": "Binary", "value": "AAEC"})
    );
    assert_eq!(m["receive_count"], 1);
    assert!(m["sent_ms"].as_u64().unwrap() > 1_600_000_000_000, "{m}");
    assert!(m["receipt_handle"].as_str().is_some());
    assert!(m["attributes"]["SentTimestamp"].is_string(), "{m}");
    assert_eq!(v["visibility_timeout_secs"], 30);
    assert!(
        v["in_flight_note"].as_str().unwrap().contains("in flight"),
        "{v}"
    );
    // In flight, as the note says.
    assert_eq!(
        f.count(&q, A::ApproximateNumberOfMessagesNotVisible).await,
        1
    );
    assert_eq!(f.count(&q, A::ApproximateNumberOfMessages).await, 0);

    // Delete two of three selected.
    for b in ["one", "two", "three"] {
        f.ok(&format!("/api/queues/{q}/messages"), json!({"body": b}))
            .await;
    }
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    while got.len() < 3 && Instant::now() < end {
        let v = f
            .ok(
                &format!("/api/queues/{q}/messages/poll"),
                json!({"duration_secs": 1, "max_count": 3}),
            )
            .await;
        got.extend(v["messages"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(got.len(), 3, "{got:?}");
    let selected: Vec<&Value> = got
        .iter()
        .filter(|m| m["body"] != "two")
        .map(|m| &m["receipt_handle"])
        .collect();
    let v = f
        .ok(
            &format!("/api/queues/{q}/messages/delete"),
            json!({"receipt_handles": selected}),
        )
        .await;
    assert_eq!(v["deleted"], 2, "{v}");
    assert_eq!(v["failed"], json!([]));
    // The first message and "two" are left, in flight.
    assert_eq!(
        f.count(&q, A::ApproximateNumberOfMessagesNotVisible).await,
        2
    );

    // FIFO: group and deduplication ids.
    let fq = format!("{}-m.fifo", f.p);
    f.ok("/api/queues", json!({"name": fq})).await;
    let (status, v) = f
        .post(&format!("/api/queues/{fq}/messages"), json!({"body": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(error_of(&v).contains("group_id"), "{v}");
    let v = f
        .ok(
            &format!("/api/queues/{fq}/messages"),
            json!({"body": "x", "group_id": "g1", "deduplication_id": "d1"}),
        )
        .await;
    assert!(v["sequence_number"].as_str().is_some(), "{v}");
    let v = f
        .ok(
            &format!("/api/queues/{fq}/messages/poll"),
            json!({"duration_secs": 1, "max_count": 1}),
        )
        .await;
    assert_eq!(v["messages"][0]["group_id"], "g1", "{v}");
    assert_eq!(v["messages"][0]["deduplication_id"], "d1", "{v}");
    // A standard queue's message with a delay; refusals.
    f.ok(
        &format!("/api/queues/{q}/messages"),
        json!({"body": "later", "delay_seconds": 30}),
    )
    .await;
    assert_eq!(f.count(&q, A::ApproximateNumberOfMessagesDelayed).await, 1);
    for body in [
        json!({"body": ""}),
        json!({"body": "x", "delay_seconds": 901}),
        json!({"body": "x", "attributes": {"n": {"type": "Number", "value": "many"}}}),
        json!({"body": "x", "group_id": "g"}),
    ] {
        let (status, v) = f.post(&format!("/api/queues/{q}/messages"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    }
}

/// The counts the page reads after an action: the three columns of the
/// table, read now, with the console's clock; the table's pages carry
/// that clock too.
async fn a_queues_counts_are_read_at_once(target: Target) {
    let f = fixture(target).await;
    let q = format!("{}-c", f.p);
    f.create(&q).await;
    let before = sqs_barrier::clock::wall_ms();
    let (status, v) = f.get(&format!("/api/queues/{q}/counts")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["name"], &v["visible"], &v["in_flight"], &v["delayed"]),
        (&json!(q), &json!(0), &json!(0), &json!(0)),
        "{v}"
    );
    let read = v["read_ms"].as_u64().expect("read_ms");
    assert!(
        read >= before && read <= sqs_barrier::clock::wall_ms(),
        "{v}"
    );
    for body in [
        json!({"body": "now"}),
        json!({"body": "taken"}),
        json!({"body": "later", "delay_seconds": 60}),
    ] {
        f.ok(&format!("/api/queues/{q}/messages"), body).await;
    }
    f.ok(
        &format!("/api/queues/{q}/messages/poll"),
        json!({"duration_secs": 1, "max_count": 1}),
    )
    .await;
    let (_, v) = f.get(&format!("/api/queues/{q}/counts")).await;
    assert_eq!(
        (&v["visible"], &v["in_flight"], &v["delayed"]),
        (&json!(1), &json!(1), &json!(1)),
        "{v}"
    );
    assert!(v["read_ms"].as_u64().unwrap() >= read, "{v}");
    let (_, t) = f.post("/api/queues/search", json!({"prefix": q})).await;
    assert_eq!(t["queues"][0]["delayed"], 1, "{t}");
    assert!(t["read_ms"].as_u64().unwrap() >= read, "{t}");
    // A missing queue, another method.
    let (status, v) = f.get(&format!("/api/queues/{q}-none/counts")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, v) = f.post(&format!("/api/queues/{q}/counts"), json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{v}");
}

async fn purge_and_delete_need_confirmation(target: Target) {
    let f = fixture(target).await;
    let q = format!("{}-p", f.p);
    let url = f.create(&q).await;
    f.client
        .send_message()
        .queue_url(&url)
        .message_body("keep me")
        .send()
        .await
        .unwrap();
    for body in [json!({}), json!({"confirm": "other"})] {
        let (status, v) = f.post(&format!("/api/queues/{q}/purge"), body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{v}");
        assert!(error_of(&v).contains("confirm"), "{v}");
    }
    assert_eq!(f.count(&q, A::ApproximateNumberOfMessages).await, 1);
    f.ok(&format!("/api/queues/{q}/purge"), json!({"confirm": q}))
        .await;
    let end = Instant::now() + Duration::from_secs(10);
    while f.count(&q, A::ApproximateNumberOfMessages).await > 0 {
        assert!(Instant::now() < end, "not purged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A second purge within 60 s, in plain words.
    let (status, v) = f
        .post(&format!("/api/queues/{q}/purge"), json!({"confirm": q}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(
        error_of(&v).contains("a purge ran less than 60 s ago"),
        "{v}"
    );
    assert!(
        v["sqs_code"]
            .as_str()
            .unwrap()
            .contains("PurgeQueueInProgress"),
        "{v}"
    );

    for body in [json!({}), json!({"confirm": format!("{q}x")})] {
        let (status, v) = f
            .send(Method::DELETE, &format!("/api/queues/{q}"), body)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{v}");
    }
    assert!(f.exists(&q).await);
    let (status, v) = f
        .send(
            Method::DELETE,
            &format!("/api/queues/{q}"),
            json!({"confirm": q}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let end = Instant::now() + Duration::from_secs(10);
    while f.exists(&q).await {
        assert!(Instant::now() < end, "not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, v) = f
        .send(
            Method::DELETE,
            &format!("/api/queues/{q}"),
            json!({"confirm": q}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    if f.endpoint.target() == Target::Embedded {
        // The name is refused for 60 s, as SQS does.
        let (status, v) = f.post("/api/queues", json!({"name": q})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{v}");
        assert!(error_of(&v).contains("deleted less than 60 s ago"), "{v}");
    }
}

async fn a_barriers_queues_are_refused_without_barrier_ack(target: Target) {
    let f = fixture(target).await;
    let name = f.p.clone();
    admin::setup(&f.sqs, &name, &admin::SetupOptions::new(2))
        .await
        .expect("setup");
    let checkin = format!("{name}-checkin");
    let (status, d) = f.get(&format!("/api/queues/{checkin}")).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["barrier"]["name"], name.as_str(), "{d}");
    assert_eq!(d["barrier"]["role"], "check-in");
    assert!(
        d["barrier"]["purge_effect"]
            .as_str()
            .unwrap()
            .contains("arrivals")
    );
    assert!(
        d["barrier"]["teardown"]
            .as_str()
            .unwrap()
            .contains(&format!("sqs-barrier teardown {name}"))
    );
    let (_, d) = f.get(&format!("/api/queues/{name}-lease.fifo")).await;
    assert_eq!(d["barrier"]["role"], "lease", "{d}");
    // The table marks them.
    let (_, t) = f.post("/api/queues/search", json!({"prefix": name})).await;
    let rows = t["queues"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{t}");
    assert!(
        rows.iter().all(|r| r["barrier"]["name"] == name.as_str()),
        "{t}"
    );

    // Purge and delete: refused without barrier_ack, with the teardown.
    let (status, v) = f
        .post(
            &format!("/api/queues/{checkin}/purge"),
            json!({"confirm": checkin}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(error_of(&v).contains("barrier_ack"), "{v}");
    assert!(error_of(&v).contains("loses the arrivals"), "{v}");
    assert_eq!(
        v["details"]["teardown"],
        format!("sqs-barrier teardown {name}")
    );
    let state = format!("{name}-state");
    let (status, v) = f
        .send(
            Method::DELETE,
            &format!("/api/queues/{state}"),
            json!({"confirm": state}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(error_of(&v).contains("breaks barrier"), "{v}");
    assert!(f.exists(&state).await);

    // A coordinator: the details say a process coordinates the barrier.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let coordinator = {
        let (sqs, name) = (f.sqs.clone(), name.clone());
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            sqs_barrier::run_coordinator(&sqs, &name, CoordinatorOptions::default(), None, shutdown)
                .await
        })
    };
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, d) = f.get(&format!("/api/queues/{checkin}")).await;
        if d["barrier"]["coordinator"]["kind"] == "process" {
            assert!(
                d["barrier"]["coordinator"]["id"]
                    .as_str()
                    .unwrap()
                    .contains('@')
            );
            break;
        }
        assert!(Instant::now() < end, "no coordinator seen: {d}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), coordinator).await;

    // Acknowledged: done.
    f.ok(
        &format!("/api/queues/{checkin}/purge"),
        json!({"confirm": checkin, "barrier_ack": true}),
    )
    .await;
}

async fn paging_and_sorting_over_25_queues(target: Target) {
    let f = fixture(target).await;
    let p = &f.p;
    let mut names = Vec::new();
    for i in 0..25 {
        let name = format!("{p}-{i:02}");
        let url = f.create(&name).await;
        // Queue i holds i % 4 messages.
        for _ in 0..i % 4 {
            f.client
                .send_message()
                .queue_url(&url)
                .message_body("m")
                .send()
                .await
                .unwrap();
        }
        names.push(name);
    }
    // By name, 10 a page: three pages.
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let (status, v) = f
            .post(
                "/api/queues/search",
                json!({"prefix": p, "page_size": 10, "cursor": cursor}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["total"], 25);
        pages += 1;
        seen.extend(
            v["queues"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_owned()),
        );
        cursor = v["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
        assert!(pages < 5, "{v}");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, names);
    // Descending by name.
    let (_, v) = f
        .post(
            "/api/queues/search",
            json!({"prefix": p, "order": "desc", "page_size": 3}),
        )
        .await;
    let first: Vec<&str> = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        first,
        vec![names[24].as_str(), names[23].as_str(), names[22].as_str()]
    );
    // By visible messages, most first, paged: every queue once, counts non-increasing.
    let mut rows = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let (status, v) = f
            .post(
                "/api/queues/search",
                json!({"prefix": p, "sort": "visible", "order": "desc", "page_size": 7, "cursor": cursor}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        rows.extend(v["queues"].as_array().unwrap().iter().cloned());
        cursor = v["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(rows.len(), 25);
    let counts: Vec<u64> = rows
        .iter()
        .map(|r| r["visible"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    assert_eq!(counts[0], 3);
    let mut all: Vec<String> = rows
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    all.sort();
    assert_eq!(all, names);
    // Other columns sort too.
    for sort in ["type", "created", "in_flight", "delayed"] {
        let (status, v) = f
            .post(
                "/api/queues/search",
                json!({"prefix": p, "sort": sort, "page_size": 30}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["queues"].as_array().unwrap().len(), 25, "{sort}");
        assert_eq!(v["queues"][0]["type"], "Standard");
    }
    // A prefix search.
    let (_, v) = f
        .post("/api/queues/search", json!({"prefix": format!("{p}-1")}))
        .await;
    assert_eq!(v["total"], 10, "{v}");
    // GET: the first page by name; a cursor of another sort is refused.
    let (status, v) = f.get("/api/queues").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["page_size"], 25);
    let (status, v) = f
        .post(
            "/api/queues/search",
            json!({"prefix": p, "sort": "visible", "cursor": format!("name|asc||{p}-03")}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, _) = f
        .post("/api/queues/search", json!({"sort": "colour"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn redrive_start_list_cancel(target: Target) {
    let f = fixture(target).await;
    let (work, dead) = (format!("{}-r", f.p), format!("{}-rdead", f.p));
    f.create(&dead).await;
    f.ok(
        "/api/queues",
        json!({"name": work, "dead_letter_queue": {"queue": dead, "max_receive_count": 1}}),
    )
    .await;
    let dead_url = f.url(&dead).await;
    for i in 0..4 {
        f.client
            .send_message()
            .queue_url(&dead_url)
            .message_body(format!("dead {i}"))
            .send()
            .await
            .unwrap();
    }
    let path = format!("/api/queues/{dead}/redrive");
    if target == Target::Moto {
        let (status, v) = f.post(&path, json!({"destination": work, "rate": 1})).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{v}");
        assert!(
            error_of(&v).contains("does not implement dead-letter redrive"),
            "{v}"
        );
        let (status, v) = f.get(&path).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{v}");
        assert!(error_of(&v).contains("ListMessageMoveTasks"), "{v}");
        return;
    }
    // Slowly (1 a second), then cancelled.
    let v = f.ok(&path, json!({"destination": work, "rate": 1})).await;
    let handle = v["task_handle"].as_str().unwrap().to_owned();
    let (status, v) = f.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["tasks"][0]["status"], "RUNNING", "{v}");
    assert_eq!(v["tasks"][0]["to_move"], 4, "{v}");
    let v = f
        .ok(&format!("{path}/cancel"), json!({"task_handle": handle}))
        .await;
    assert!(v["moved"].as_i64().unwrap() < 4, "{v}");
    let (status, v) = f.post(&path, json!({"rate": 501})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    // Then all of it, as fast as it goes.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, v) = f.post(&path, json!({"destination": work})).await;
        if status == StatusCode::OK {
            break;
        }
        // The cancelled task may still be cancelling.
        assert!(Instant::now() < end, "{v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = f.get(&path).await;
        if v["tasks"][0]["status"] == "COMPLETED" {
            break;
        }
        assert!(Instant::now() < end, "{v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(f.count(&work, A::ApproximateNumberOfMessages).await, 4);
    assert_eq!(f.count(&dead, A::ApproximateNumberOfMessages).await, 0);
    // Not a dead-letter queue: SQS's refusal in plain words.
    let (status, v) = f
        .post(&format!("/api/queues/{work}/redrive"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["sqs_code"].as_str().is_some(), "{v}");
}

async fn the_gate_refuses_token_less_and_cross_origin_requests(target: Target) {
    let f = fixture(target).await;
    let q = format!("{}-g", f.p);
    let body = json!({"name": q}).to_string();
    let attempt = |headers: Vec<(&'static str, String)>| {
        let mut b = Request::post("/api/queues").header("host", LOCAL);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b.body(Full::new(Bytes::from(body.clone()))).unwrap()
    };
    let json_type = ("content-type", "application/json".to_owned());
    let token = ("x-console-token", f.token.clone());
    for (headers, code) in [
        (vec![json_type.clone()], "token"),
        (
            vec![
                json_type.clone(),
                token.clone(),
                ("origin", "http://evil.example".into()),
            ],
            "cross-origin",
        ),
        (
            vec![
                json_type.clone(),
                token.clone(),
                ("sec-fetch-site", "cross-site".into()),
            ],
            "cross-origin",
        ),
        (
            vec![("content-type", "text/plain".into()), token.clone()],
            "content-type",
        ),
    ] {
        let (status, v) = read(f.console.handle(attempt(headers)).await).await;
        assert!(status.is_client_error(), "{status} {v}");
        assert_eq!(v["code"], code, "{v}");
    }
    assert!(!f.exists(&q).await);
    // Every action goes through the gate, purge and delete included.
    let existing = format!("{}-g2", f.p);
    f.create(&existing).await;
    for (method, path) in [
        (Method::POST, format!("/api/queues/{existing}/purge")),
        (Method::DELETE, format!("/api/queues/{existing}")),
        (Method::POST, format!("/api/queues/{existing}/messages")),
        (
            Method::POST,
            format!("/api/queues/{existing}/messages/poll"),
        ),
        (Method::POST, format!("/api/queues/{existing}/attributes")),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(&path)
            .header("host", LOCAL)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                json!({"confirm": existing, "body": "x"}).to_string(),
            )))
            .unwrap();
        let (status, v) = read(f.console.handle(req).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {v}");
    }
    assert!(f.exists(&existing).await);
    // A read-only console reads, and refuses every action.
    let ro = fixture_with(
        target,
        ConsoleOptions {
            read_only: true,
            ..ConsoleOptions::default()
        },
    )
    .await;
    let (status, _) = ro.get("/api/queues").await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = ro.post("/api/queues", json!({"name": q})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["code"], "read-only");
    // Methods and paths.
    let (status, _) = f.send(Method::PUT, "/api/queues", json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = f.get(&format!("/api/queues/{existing}/nowhere/else")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `console --prefix P` lists, reads, creates and acts on the queues whose
/// names start with P, and no other: a typed path to another queue is
/// answered as for a queue that does not exist.
async fn a_console_with_a_prefix_acts_on_its_queues_only(target: Target) {
    let mut f = fixture(target).await;
    let (mine, other) = (format!("{}-mine", f.p), format!("x{}-other", f.p));
    for q in [&mine, &other] {
        f.client.create_queue().queue_name(q).send().await.unwrap();
    }
    // A console with the prefix, on the same endpoint.
    f.console = Console::new(
        f.sqs.clone(),
        ConsoleOptions {
            prefix: Some(f.p.clone()),
            ..ConsoleOptions::default()
        },
        LOCAL.parse().unwrap(),
    )
    .expect("options");
    let r = f.console.handle(get_req("/api/token")).await;
    f.token = read(r).await.1["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let (status, v) = f.get("/api/queues").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [mine.as_str()], "{v}");
    let (status, v) = f.post("/api/queues/search", json!({"prefix": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, v) = f.get(&format!("/api/queues/{other}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(error_of(&v).contains("--prefix"), "{v}");
    let (status, v) = f
        .post(
            &format!("/api/queues/{other}/purge"),
            json!({"confirm": other}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, v) = f
        .post("/api/queues", json!({"name": format!("y{}", f.p)}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, v) = f.get(&format!("/api/queues/{mine}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
}
