//! The built `sqs-barrier-lambda` binary, run as Lambda runs it: two
//! function instances (processes) poll a Lambda Runtime API (the test kit's
//! emulator) for invocations; an emulated event source mapping hands them
//! the SQS event JSON AWS sends for the barrier's check-in queue and
//! deletes what their partial-batch responses do not name; a schedule
//! invokes them with `{"barrier": NAME}` every second. Real participants
//! pass several phases, on the embedded endpoint and on moto.
//!
//! `SQS_BARRIER_LAMBDA_BIN=PATH` runs another build of the function instead
//! of the one Cargo built for the test, e.g. the `bootstrap` of a zip made
//! by `scripts/package-lambda --arch x86_64`.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqs_barrier::lambda::emulator::{self as esm, EsmConfig, EventSourceMapping};
use sqs_barrier::{Barrier, Sqs, admin};
use sqs_barrier_testkit::runtime_api::RuntimeApi;
use sqs_barrier_testkit::{REGION, Target, start};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_sqs-barrier-lambda");

/// The function's binary: `SQS_BARRIER_LAMBDA_BIN`, else Cargo's build.
fn bin() -> String {
    std::env::var("SQS_BARRIER_LAMBDA_BIN").unwrap_or_else(|_| BIN.to_owned())
}

/// The check-in queue's visibility timeout here (setup makes it 30 s).
const VISIBILITY: u64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_coordinates_phases_on_embedded() {
    phases(Target::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_coordinates_phases_on_moto() {
    phases(Target::Moto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_event_is_an_error_not_a_crash() {
    let endpoint = start(Target::Embedded).await;
    let api = RuntimeApi::start().await;
    let mut f = function(&api, &endpoint.endpoint_url());
    let err = api
        .invoke(r#"{"hello":"world"}"#, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(err.contains("unexpected event"), "{err}");
    // A tick for a barrier that does not exist says so.
    let err = api
        .invoke(r#"{"barrier":"nope"}"#, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(err.contains("not set up"), "{err}");
    // Still serving.
    let err = api
        .invoke(r#"{"Records":[]}"#, Duration::from_secs(10))
        .await;
    assert_eq!(
        err.map(|r| esm::batch_item_failures(&r)),
        Ok(Ok(vec![])),
        "an empty batch fails nothing"
    );
    f.kill().await.unwrap();
}

/// One function instance: the binary with the Lambda environment.
fn function(api: &RuntimeApi, endpoint_url: &str) -> Child {
    Command::new(bin())
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "sqs-barrier")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_ENDPOINT_URL", endpoint_url)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("SQS_BARRIER_HEARTBEAT_SECS", "2")
        .env("SQS_BARRIER_QUEUE_VISIBILITY_SECS", VISIBILITY.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start sqs-barrier-lambda")
}

async fn phases(target: Target) {
    let endpoint = start(target).await;
    let url = endpoint.endpoint_url();
    let sqs = Sqs::local(&url);
    let name = format!("rt{:06x}", std::process::id());
    admin::setup(&sqs, &name, &admin::SetupOptions::new(3))
        .await
        .expect("setup");
    let info = admin::open(&sqs, &name).await.unwrap();
    let client = endpoint.client();
    client
        .set_queue_attributes()
        .queue_url(&info.urls.checkin)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            VISIBILITY.to_string(),
        )
        .send()
        .await
        .unwrap();
    let arn = client
        .get_queue_attributes()
        .queue_url(&info.urls.checkin)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("an ARN");

    let api = Arc::new(RuntimeApi::start().await);
    // Two instances: the mapping's concurrency.
    let mut instances = [function(&api, &url), function(&api, &url)];
    let invoke = api.clone();
    let handler: esm::Handler = Arc::new(move |records| {
        let api = invoke.clone();
        Box::pin(async move {
            let event = esm::sqs_event(&records, REGION);
            let response = api.invoke(&event, Duration::from_secs(10)).await?;
            esm::batch_item_failures(&response)
        })
    });
    let mapping = EventSourceMapping::start(
        client.clone(),
        &info.urls.checkin,
        &arn,
        EsmConfig::default(),
        handler,
    );
    let ticker = api.clone();
    let tick_body = format!(r#"{{"barrier":"{name}"}}"#);
    let tick_errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let errors = tick_errors.clone();
    let ticks = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Err(e) = ticker.invoke(&tick_body, Duration::from_secs(10)).await {
                errors.lock().unwrap().push(e);
            }
        }
    });

    let started = Instant::now();
    let mut members = Vec::new();
    for id in 0..3 {
        let b = Barrier::connect(&sqs, &name, &id.to_string())
            .await
            .unwrap();
        members.push(tokio::spawn(async move {
            for k in 0..4u64 {
                tokio::time::sleep(Duration::from_millis(40 * id * (k + 1))).await;
                let r = b
                    .wait(Some(Duration::from_secs(60)))
                    .await
                    .expect("released");
                assert_eq!(r.generation, k);
            }
        }));
    }
    for m in members {
        m.await.unwrap();
    }
    let stats = mapping.stats();
    eprintln!(
        "{target}: 4 phases of 3 through the binary in {:?}; {stats:?}",
        started.elapsed()
    );
    ticks.abort();
    assert!(
        tick_errors.lock().unwrap().is_empty(),
        "ticks failed: {:?}",
        tick_errors.lock().unwrap()
    );
    assert_eq!(
        stats.failed.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "{stats:?}"
    );
    mapping.stop().await;
    for i in &mut instances {
        assert!(
            i.try_wait().unwrap().is_none(),
            "a function instance exited"
        );
        i.kill().await.unwrap();
    }
}
