//! Queue tags: TagQueue, UntagQueue and ListQueueTags, their limits, and the
//! tagging quota.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use sqs_barrier_testkit::Target::{self, Moto};

use crate::support::{Ctx, code_of, error_code};

sqs_barrier_testkit::both_endpoints!(
    tags_set_list_and_remove,
    tags_are_at_most_50_with_checked_keys_and_values,
    tagging_actions_are_throttled_over_5_per_second,
);

/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-queue-tags.html>
async fn tags_set_list_and_remove(target: Target) {
    let ctx = Ctx::start(target).await;
    let out = ctx
        .client
        .create_queue()
        .queue_name("tagged")
        .tags("team", "infra")
        .tags("env", "test")
        .send()
        .await
        .unwrap();
    let url = out.queue_url().unwrap().to_owned();
    let tags = |map: Option<&HashMap<String, String>>| {
        let mut pairs: Vec<(String, String)> =
            map.cloned().unwrap_or_default().into_iter().collect();
        pairs.sort();
        pairs
    };
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());

    let listed = ctx
        .client
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(listed.tags()),
        [pair("env", "test"), pair("team", "infra")]
    );

    ctx.client
        .tag_queue()
        .queue_url(&url)
        .tags("env", "prod")
        .tags("owner", "me")
        .send()
        .await
        .unwrap();
    ctx.client
        .untag_queue()
        .queue_url(&url)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let listed = ctx
        .client
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(listed.tags()),
        [pair("env", "prod"), pair("owner", "me")]
    );
}

/// Queue tags: keys 1..128 and values up to 256 characters; SQS refuses more
/// than 50 tags per queue (the docs call more "not recommended").
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html>
async fn tags_are_at_most_50_with_checked_keys_and_values(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("many-tags", &[]).await;
    let tag = |request: aws_sdk_sqs::operation::tag_queue::builders::TagQueueFluentBuilder,
               range: std::ops::Range<usize>| {
        range.fold(request, |r, i| r.tags(format!("k{i}"), "v"))
    };
    tag(ctx.client.tag_queue().queue_url(&url), 0..50)
        .send()
        .await
        .unwrap();
    let more = tag(ctx.client.tag_queue().queue_url(&url), 50..51)
        .send()
        .await;
    if ctx.target == Moto {
        // moto differs: it counts only the tags of one request, not the
        // queue's; AWS doc:
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html
        assert!(more.is_ok(), "{more:?}");
    } else {
        assert_eq!(error_code(more, "the 51st tag"), "InvalidParameterValue");
    }
    let other = ctx.queue("many-tags-at-once", &[]).await;
    let at_once = tag(ctx.client.tag_queue().queue_url(&other), 0..51)
        .send()
        .await;
    assert_eq!(
        error_code(at_once, "51 tags at once"),
        "InvalidParameterValue"
    );
    // Overwriting one of the 50 is fine.
    ctx.client
        .tag_queue()
        .queue_url(&url)
        .tags("k0", "w")
        .send()
        .await
        .unwrap();

    // Four tagging actions so far, three to come: stay within SQS's 5 per
    // second (see tagging_actions_are_throttled_over_5_per_second).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let fresh = ctx.queue("checked-tags", &[]).await;
    let longest = ctx
        .client
        .tag_queue()
        .queue_url(&fresh)
        .tags("k".repeat(128), "v".repeat(256))
        .send()
        .await;
    assert!(longest.is_ok(), "[{}] {longest:?}", ctx.target);
    for (key, value) in [
        ("k".repeat(129), "v".to_owned()),
        ("k".to_owned(), "v".repeat(257)),
    ] {
        let result = ctx
            .client
            .tag_queue()
            .queue_url(&fresh)
            .tags(&key, &value)
            .send()
            .await;
        if ctx.target == Moto {
            // moto differs: it does not check tag lengths; AWS doc:
            // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html
            assert!(result.is_ok(), "{result:?}");
            continue;
        }
        assert_eq!(
            error_code(result, "tag too long"),
            "InvalidParameterValue",
            "[{}] {} / {}",
            ctx.target,
            key.len(),
            value.len()
        );
    }
}

/// Requests to run at once, each reduced to its outcome (see [`code_of`]).
type Requests = Vec<std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>>;

/// Runs `requests` at once (each as a task of its own) and returns their
/// outcomes in order: `Ok(())` or the error code.
async fn at_once(requests: Requests) -> Vec<Result<(), String>> {
    let tasks: Vec<_> = requests.into_iter().map(tokio::spawn).collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("request task"));
    }
    outcomes
}

/// SQS limits the tagging actions (TagQueue, UntagQueue and ListQueueTags,
/// together) per AWS account; a request over the quota fails with
/// `RequestThrottled` (HTTP 400). The embedded endpoint allows 5 per second
/// with a burst of 5 and answers "Rate exceeded", and so does the test kit's
/// proxy in front of moto (moto itself has no such quota). CreateQueue with
/// tags and the other operations are not counted.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html>
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListQueueTags.html>
async fn tagging_actions_are_throttled_over_5_per_second(target: Target) {
    let ctx = Ctx::start(target).await;
    let out = ctx
        .client
        .create_queue()
        .queue_name("throttled")
        .tags("team", "infra")
        .send()
        .await
        .unwrap();
    let url = out.queue_url().unwrap().to_owned();
    let list = |client: &Client| {
        let request = client.list_queue_tags().queue_url(&url);
        async move { request.send().await }
    };

    // Six ListQueueTags in a burst: five pass, the sixth is throttled.
    let start = Instant::now();
    let tasks: Vec<_> = (0..6).map(|_| tokio::spawn(list(&ctx.client))).collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let took = start.elapsed();
    let (passed, throttled): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(
        (passed.len(), throttled.len()),
        (5, 1),
        "[{}] a burst of 6 within {took:?}",
        ctx.target
    );
    let error = throttled.into_iter().next().unwrap().unwrap_err();
    assert_eq!(error.code(), Some("RequestThrottled"), "{error:?}");
    assert_eq!(error.message(), Some("Rate exceeded"), "{error:?}");
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(400));
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_request_throttled()),
        "the SDK's typed RequestThrottled: {error:?}"
    );

    // A second later the quota has refilled.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let listed = list(&ctx.client).await.unwrap();
    assert_eq!(
        listed
            .tags()
            .and_then(|t| t.get("team"))
            .map(String::as_str),
        Some("infra")
    );

    // All three actions count together; nothing else counts.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let c = &ctx.client;
    let tagging: Requests = vec![
        Box::pin(code_of_later(
            c.tag_queue().queue_url(&url).tags("a", "1").send(),
        )),
        Box::pin(code_of_later(
            c.tag_queue().queue_url(&url).tags("b", "2").send(),
        )),
        Box::pin(code_of_later(
            c.untag_queue().queue_url(&url).tag_keys("x").send(),
        )),
        Box::pin(code_of_later(
            c.untag_queue().queue_url(&url).tag_keys("y").send(),
        )),
        Box::pin(code_of_later(c.list_queue_tags().queue_url(&url).send())),
        Box::pin(code_of_later(c.list_queue_tags().queue_url(&url).send())),
    ];
    let others: Requests = vec![
        Box::pin(code_of_later(
            c.create_queue()
                .queue_name("tagged-too")
                .tags("k", "v")
                .send(),
        )),
        Box::pin(code_of_later(
            c.send_message().queue_url(&url).message_body("m").send(),
        )),
        Box::pin(code_of_later(c.list_queues().send())),
        Box::pin(code_of_later(
            c.get_queue_url().queue_name("throttled").send(),
        )),
    ];
    let start = Instant::now();
    let (tagging, others) = tokio::join!(at_once(tagging), at_once(others));
    let took = start.elapsed();
    let refused: Vec<_> = tagging.iter().filter_map(|r| r.clone().err()).collect();
    assert_eq!(
        refused,
        ["RequestThrottled"],
        "[{}] six tagging actions of three kinds within {took:?}: {tagging:?}",
        ctx.target
    );
    assert!(others.iter().all(Result::is_ok), "{others:?}");
}

/// [`code_of`] of a request still to be awaited.
async fn code_of_later<T, E: ProvideErrorMetadata>(
    request: impl Future<Output = Result<T, E>>,
) -> Result<(), String> {
    code_of(request.await)
}
