//! Message-move tasks (dead-letter queue redrive): StartMessageMoveTask,
//! ListMessageMoveTasks and CancelMessageMoveTask.
//!
//! **Embedded endpoint only.** moto (5.x) does not implement these operations, so
//! this group has no `moto::` half; the expected behaviour is that of the AWS pages
//! cited at each test:
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html>,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasks.html>,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CancelMessageMoveTask.html>,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html>.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    ListMessageMoveTasksResultEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
    MessageSystemAttributeNameForSends, MessageSystemAttributeValue, QueueAttributeName,
};
use sqs_barrier_testkit::Target;

use crate::support::{Ctx, bodies, error_code, sys_attr};

embedded_only!(
    redrive_back_to_the_source_queue,
    redrive_to_a_custom_destination_at_a_rate,
    cancel_mid_way_at_a_slow_rate,
    fifo_redrive_keeps_group_order_and_leaves_blocked_groups,
    start_errors,
    list_and_cancel_errors,
    a_task_fails_when_its_destination_is_gone,
    list_is_newest_first,
);

const DONE_WITHIN: Duration = Duration::from_secs(15);

/// A work queue whose dead-letter queue gets a message after one receive
/// (`maxReceiveCount` 1). Both FIFO if `fifo`.
struct Pipe {
    work: String,
    work_arn: String,
    dlq: String,
    dlq_arn: String,
}

impl Pipe {
    async fn new(ctx: &Ctx, name: &str, fifo: bool) -> Pipe {
        let suffix = if fifo { ".fifo" } else { "" };
        let dlq = if fifo {
            ctx.fifo_queue(&format!("{name}-dlq{suffix}"), true).await
        } else {
            ctx.queue(&format!("{name}-dlq"), &[]).await
        };
        let dlq_arn = ctx.arn(&dlq).await;
        let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":1}}"#);
        let mut attributes = vec![(QueueAttributeName::RedrivePolicy, policy.as_str())];
        if fifo {
            attributes.push((QueueAttributeName::FifoQueue, "true"));
            attributes.push((QueueAttributeName::ContentBasedDeduplication, "true"));
        }
        let work = ctx.queue(&format!("{name}{suffix}"), &attributes).await;
        let work_arn = ctx.arn(&work).await;
        Pipe {
            work,
            work_arn,
            dlq,
            dlq_arn,
        }
    }

    /// Receives from the work queue (visibility 0) until `n` messages are in the
    /// dead-letter queue: the first receive delivers a message, the next moves it.
    async fn dead_letter(&self, ctx: &Ctx, n: u32) {
        let deadline = Instant::now() + DONE_WITHIN;
        loop {
            ctx.receive(&self.work, 10, 0, Some(0)).await;
            let dead = ctx
                .attribute(&self.dlq, QueueAttributeName::ApproximateNumberOfMessages)
                .await
                .and_then(|v| v.parse::<u32>().ok());
            if dead == Some(n) {
                return;
            }
            assert!(Instant::now() < deadline, "{n} dead letters: got {dead:?}");
        }
    }
}

async fn start(ctx: &Ctx, source: &str, destination: Option<&str>, rate: Option<i32>) -> String {
    ctx.client
        .start_message_move_task()
        .source_arn(source)
        .set_destination_arn(destination.map(str::to_owned))
        .set_max_number_of_messages_per_second(rate)
        .send()
        .await
        .expect("StartMessageMoveTask")
        .task_handle()
        .expect("TaskHandle")
        .to_owned()
}

async fn tasks(ctx: &Ctx, source: &str, max: Option<i32>) -> Vec<ListMessageMoveTasksResultEntry> {
    ctx.client
        .list_message_move_tasks()
        .source_arn(source)
        .set_max_results(max)
        .send()
        .await
        .expect("ListMessageMoveTasks")
        .results()
        .to_vec()
}

/// Polls the newest task of `source` until `done` holds for it.
async fn wait_for(
    ctx: &Ctx,
    source: &str,
    what: &str,
    done: impl Fn(&ListMessageMoveTasksResultEntry) -> bool,
) -> ListMessageMoveTasksResultEntry {
    let deadline = Instant::now() + DONE_WITHIN;
    loop {
        let newest = tasks(ctx, source, None).await;
        assert_eq!(newest.len(), 1, "the newest task, by default");
        if done(&newest[0]) {
            return newest.into_iter().next().unwrap();
        }
        assert!(Instant::now() < deadline, "{what}: still {:?}", newest[0]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until_ended(ctx: &Ctx, source: &str) -> ListMessageMoveTasksResultEntry {
    wait_for(ctx, source, "the task ends", |t| {
        !matches!(t.status(), Some("RUNNING" | "CANCELLING"))
    })
    .await
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn attribute_text(message: &Message, name: &str) -> Option<String> {
    let value = message.message_attributes()?.get(name)?;
    match value.binary_value() {
        Some(blob) => Some(format!("{:?}", blob.as_ref())),
        None => value.string_value().map(str::to_owned),
    }
}

/// Without a DestinationArn every message goes back to the queue it was
/// dead-lettered from, as a new message (new id, no receives yet) with its body,
/// message attributes and AWSTraceHeader. A message in flight in the dead-letter
/// queue stays there. The finished task reports COMPLETED, the counts, its start
/// time, no DestinationArn, no rate and no TaskHandle.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html>
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasksResultEntry.html>
async fn redrive_back_to_the_source_queue(target: Target) {
    let ctx = Ctx::start(target).await;
    let pipe = Pipe::new(&ctx, "orders", false).await;
    let mut original_ids = Vec::new();
    for n in 0..3 {
        let out = ctx
            .client
            .send_message()
            .queue_url(&pipe.work)
            .message_body(format!("order-{n}"))
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("refund")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "raw",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(vec![0, 1, n]))
                    .build()
                    .unwrap(),
            )
            .message_system_attributes(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                MessageSystemAttributeValue::builder()
                    .data_type("String")
                    .string_value("Root=1-5759e988-bd862e3fe1be46a994272793")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        original_ids.push(out.message_id().unwrap().to_owned());
    }
    pipe.dead_letter(&ctx, 3).await;
    // A consumer of the dead-letter queue holds one message.
    let held = ctx.receive(&pipe.dlq, 1, 0, Some(30)).await;
    assert_eq!(held.len(), 1);
    assert_eq!(
        sys_attr(
            &held[0],
            MessageSystemAttributeName::DeadLetterQueueSourceArn
        ),
        Some(pipe.work_arn.as_str()),
        "a dead letter names the queue it came from"
    );

    let before = epoch_ms();
    let handle = start(&ctx, &pipe.dlq_arn, None, None).await;
    assert!(!handle.is_empty());
    let done = wait_until_ended(&ctx, &pipe.dlq_arn).await;
    assert_eq!(done.status(), Some("COMPLETED"));
    assert_eq!(done.approximate_number_of_messages_moved(), 2);
    assert_eq!(done.approximate_number_of_messages_to_move(), Some(2));
    assert_eq!(done.source_arn(), Some(pipe.dlq_arn.as_str()));
    assert_eq!(done.destination_arn(), None);
    assert_eq!(done.max_number_of_messages_per_second(), None);
    assert_eq!(done.failure_reason(), None);
    assert_eq!(done.task_handle(), None, "only a running task has a handle");
    let started = done.started_timestamp();
    assert!(
        (before - 1000..=epoch_ms()).contains(&started),
        "StartedTimestamp {started} is epoch milliseconds"
    );

    let back = ctx
        .receive_n(&pipe.work, 2, Some(30), Duration::from_secs(5))
        .await;
    let held_body = held[0].body().unwrap();
    let mut expected: Vec<String> = (0..3).map(|n| format!("order-{n}")).collect();
    expected.retain(|b| b != held_body);
    assert_eq!(
        bodies(&back),
        expected,
        "oldest first, all but the held one"
    );
    for message in &back {
        let id = message.message_id().unwrap();
        assert!(
            !original_ids.iter().any(|o| o == id),
            "a redriven message gets a new id"
        );
        assert_eq!(
            sys_attr(message, MessageSystemAttributeName::ApproximateReceiveCount),
            Some("1")
        );
        assert_eq!(
            sys_attr(message, MessageSystemAttributeName::AwsTraceHeader),
            Some("Root=1-5759e988-bd862e3fe1be46a994272793")
        );
        assert_eq!(
            sys_attr(
                message,
                MessageSystemAttributeName::DeadLetterQueueSourceArn
            ),
            None
        );
        assert_eq!(attribute_text(message, "kind").as_deref(), Some("refund"));
        let n: u8 = message.body().unwrap()[6..].parse().unwrap();
        assert_eq!(
            attribute_text(message, "raw"),
            Some(format!("{:?}", [0u8, 1, n]))
        );
        assert!(message.md5_of_message_attributes().is_some());
    }
    // The held message is still in flight in the dead-letter queue, nothing else.
    ctx.expect_counts(&pipe.dlq, 0, 1, 0).await;
}

/// With a DestinationArn every message goes there, oldest first, at no more than
/// MaxNumberOfMessagesPerSecond; while it runs the task lists its handle, rate and
/// destination. A message sent to the dead-letter queue directly moves too.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html>
async fn redrive_to_a_custom_destination_at_a_rate(target: Target) {
    let ctx = Ctx::start(target).await;
    let pipe = Pipe::new(&ctx, "billing", false).await;
    for n in 0..3 {
        ctx.send(&pipe.work, &format!("bill-{n}")).await;
    }
    pipe.dead_letter(&ctx, 3).await;
    ctx.send(&pipe.dlq, "direct").await;
    let replay = ctx.queue("billing-replay", &[]).await;
    let replay_arn = ctx.arn(&replay).await;

    let started = Instant::now();
    let handle = start(&ctx, &pipe.dlq_arn, Some(&replay_arn), Some(2)).await;
    let running = &tasks(&ctx, &pipe.dlq_arn, None).await[0];
    assert_eq!(running.status(), Some("RUNNING"));
    assert_eq!(running.task_handle(), Some(handle.as_str()));
    assert_eq!(running.destination_arn(), Some(replay_arn.as_str()));
    assert_eq!(running.max_number_of_messages_per_second(), Some(2));
    assert_eq!(running.approximate_number_of_messages_to_move(), Some(4));

    let done = wait_until_ended(&ctx, &pipe.dlq_arn).await;
    let elapsed = started.elapsed();
    assert_eq!(done.status(), Some("COMPLETED"));
    assert_eq!(done.approximate_number_of_messages_moved(), 4);
    // 2 per second: the 4th message no earlier than 1.5 s after the start.
    assert!(
        elapsed >= Duration::from_millis(1400),
        "took only {elapsed:?}"
    );
    let moved = ctx
        .receive_n(&replay, 4, Some(30), Duration::from_secs(5))
        .await;
    assert_eq!(bodies(&moved), ["bill-0", "bill-1", "bill-2", "direct"]);
    ctx.expect_counts(&pipe.dlq, 0, 0, 0).await;
    ctx.expect_counts(&pipe.work, 0, 0, 0).await;
}

/// Cancelling a running task (at 1 message per second) answers the messages moved
/// so far and stops it: CANCELLING, then CANCELLED. What was moved stays moved,
/// the rest stays in the dead-letter queue: no message lost or doubled. Only a
/// RUNNING task can be cancelled, and afterwards a new task may start.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CancelMessageMoveTask.html>
async fn cancel_mid_way_at_a_slow_rate(target: Target) {
    let ctx = Ctx::start(target).await;
    let pipe = Pipe::new(&ctx, "slow", false).await;
    for n in 0..10 {
        ctx.send(&pipe.work, &format!("m{n}")).await;
    }
    pipe.dead_letter(&ctx, 10).await;
    let destination = ctx.queue("slow-out", &[]).await;
    let destination_arn = ctx.arn(&destination).await;
    let handle = start(&ctx, &pipe.dlq_arn, Some(&destination_arn), Some(1)).await;
    wait_for(&ctx, &pipe.dlq_arn, "two moved", |t| {
        t.approximate_number_of_messages_moved() >= 2
    })
    .await;

    let cancelled = ctx
        .client
        .cancel_message_move_task()
        .task_handle(&handle)
        .send()
        .await
        .expect("CancelMessageMoveTask");
    let at_cancel = cancelled.approximate_number_of_messages_moved();
    assert!(
        (2..10).contains(&at_cancel),
        "moved {at_cancel} at the cancel"
    );
    let status = tasks(&ctx, &pipe.dlq_arn, None).await[0]
        .status()
        .map(str::to_owned);
    assert!(
        matches!(status.as_deref(), Some("CANCELLING" | "CANCELLED")),
        "{status:?}"
    );
    let done = wait_until_ended(&ctx, &pipe.dlq_arn).await;
    assert_eq!(done.status(), Some("CANCELLED"));
    let moved = done.approximate_number_of_messages_moved();
    assert!(
        moved == at_cancel || moved == at_cancel + 1,
        "{moved} vs {at_cancel}"
    );
    // No more moves after the end.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ctx.expect_counts(&destination, moved as u32, 0, 0).await;
    ctx.expect_counts(&pipe.dlq, 10 - moved as u32, 0, 0).await;
    let out = ctx
        .receive_n(
            &destination,
            moved as usize,
            Some(30),
            Duration::from_secs(5),
        )
        .await;
    let left = ctx
        .receive_n(
            &pipe.dlq,
            10 - moved as usize,
            Some(30),
            Duration::from_secs(5),
        )
        .await;
    let all: HashSet<&str> = bodies(&out).into_iter().chain(bodies(&left)).collect();
    assert_eq!(all.len(), 10, "every message once: {all:?}");

    let again = ctx
        .client
        .cancel_message_move_task()
        .task_handle(&handle)
        .send()
        .await
        .expect_err("a cancelled task cannot be cancelled");
    assert!(
        again.as_service_error().unwrap().is_unsupported_operation(),
        "{again:?}"
    );
    // The source is free for a new task.
    start(&ctx, &pipe.dlq_arn, Some(&destination_arn), None).await;
}

/// A FIFO dead-letter queue redrives only into a FIFO queue. Messages go back in
/// their group's order with their MessageGroupId; a group with a message in flight
/// in the dead-letter queue is left alone (the move takes only what a consumer
/// could receive). In a FIFO dead-letter queue a message's deduplication id is
/// its original message id.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html>
async fn fifo_redrive_keeps_group_order_and_leaves_blocked_groups(target: Target) {
    let ctx = Ctx::start(target).await;
    let pipe = Pipe::new(&ctx, "ledger", true).await;
    let mut first_id = None;
    for (body, group) in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b")] {
        let out = ctx
            .client
            .send_message()
            .queue_url(&pipe.work)
            .message_body(body)
            .message_group_id(group)
            .send()
            .await
            .unwrap();
        first_id.get_or_insert(out.message_id().unwrap().to_owned());
    }
    pipe.dead_letter(&ctx, 4).await;
    let held = ctx.receive(&pipe.dlq, 1, 0, Some(30)).await;
    assert_eq!(bodies(&held), ["a1"]);
    assert_eq!(
        sys_attr(&held[0], MessageSystemAttributeName::MessageDeduplicationId),
        first_id.as_deref()
    );

    let standard = ctx.queue("ledger-standard", &[]).await;
    let standard_arn = ctx.arn(&standard).await;
    let err = ctx
        .client
        .start_message_move_task()
        .source_arn(&pipe.dlq_arn)
        .destination_arn(&standard_arn)
        .send()
        .await;
    assert_eq!(
        error_code(err, "FIFO into standard"),
        "InvalidParameterValue"
    );

    start(&ctx, &pipe.dlq_arn, None, None).await;
    let done = wait_until_ended(&ctx, &pipe.dlq_arn).await;
    assert_eq!(done.status(), Some("COMPLETED"));
    assert_eq!(done.approximate_number_of_messages_moved(), 2);
    let back = ctx
        .receive_n(&pipe.work, 2, Some(30), Duration::from_secs(5))
        .await;
    assert_eq!(bodies(&back), ["b1", "b2"]);
    for message in &back {
        assert_eq!(
            sys_attr(message, MessageSystemAttributeName::MessageGroupId),
            Some("b")
        );
    }
    // a1 in flight, a2 behind it: both still in the dead-letter queue.
    ctx.expect_counts(&pipe.dlq, 1, 1, 0).await;
}

/// StartMessageMoveTask's errors, with the codes, messages and HTTP statuses SQS
/// answers: an unknown source or destination is ResourceNotFoundException (404);
/// a source that is no queue's dead-letter queue, a rate outside 1..500, queues of
/// different types and a second task on a busy source are InvalidParameterValue.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html>
async fn start_errors(target: Target) {
    let ctx = Ctx::start(target).await;
    let pipe = Pipe::new(&ctx, "errs", false).await;
    let missing = pipe.dlq_arn.replace("errs-dlq", "nowhere");

    let err = ctx
        .client
        .start_message_move_task()
        .source_arn(&missing)
        .send()
        .await
        .expect_err("unknown source");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    assert_eq!(
        err.message(),
        Some("The resource that you specified for the SourceArn parameter doesn't exist.")
    );
    assert!(err.into_service_error().is_resource_not_found_exception());

    let err = ctx
        .client
        .start_message_move_task()
        .source_arn("not-an-arn")
        .send()
        .await;
    assert_eq!(error_code(err, "malformed ARN"), "InvalidParameterValue");

    // The work queue is nobody's dead-letter queue.
    let err = ctx
        .client
        .start_message_move_task()
        .source_arn(&pipe.work_arn)
        .send()
        .await
        .expect_err("not a dead-letter queue");
    assert_eq!(err.code(), Some("InvalidParameterValue"));
    assert_eq!(
        err.message(),
        Some("Source queue must be configured as a Dead Letter Queue.")
    );

    let err = ctx
        .client
        .start_message_move_task()
        .source_arn(&pipe.dlq_arn)
        .destination_arn(&missing)
        .send()
        .await
        .expect_err("unknown destination");
    assert_eq!(
        err.message(),
        Some("The resource that you specified for the DestinationArn parameter doesn't exist.")
    );
    assert!(err.into_service_error().is_resource_not_found_exception());

    let fifo = ctx.fifo_queue("errs-out.fifo", true).await;
    let fifo_arn = ctx.arn(&fifo).await;
    for (destination, rate, what) in [
        (Some(fifo_arn.as_str()), None, "standard into FIFO"),
        (Some(pipe.dlq_arn.as_str()), None, "into itself"),
        (None, Some(0), "rate 0"),
        (None, Some(501), "rate 501"),
    ] {
        let err = ctx
            .client
            .start_message_move_task()
            .source_arn(&pipe.dlq_arn)
            .set_destination_arn(destination.map(str::to_owned))
            .set_max_number_of_messages_per_second(rate)
            .send()
            .await;
        assert_eq!(error_code(err, what), "InvalidParameterValue", "{what}");
    }

    // One active task per source queue.
    for n in 0..3 {
        ctx.send(&pipe.work, &format!("e{n}")).await;
    }
    pipe.dead_letter(&ctx, 3).await;
    start(&ctx, &pipe.dlq_arn, Some(&pipe.work_arn), Some(1)).await;
    let err = ctx
        .client
        .start_message_move_task()
        .source_arn(&pipe.dlq_arn)
        .send()
        .await
        .expect_err("second task");
    assert_eq!(err.code(), Some("InvalidParameterValue"));
    assert_eq!(
        err.message(),
        Some(
            "There is already a task running. Only one active task is allowed for a source queue arn at a given time."
        )
    );
}

/// ListMessageMoveTasks takes MaxResults 1..10 and a source that exists; a task
/// handle must be well-formed (InvalidParameterValue) and name an existing source
/// and task (ResourceNotFoundException); only a RUNNING task can be cancelled.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasks.html>
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CancelMessageMoveTask.html>
async fn list_and_cancel_errors(target: Target) {
    let ctx = Ctx::start(target).await;
    let pipe = Pipe::new(&ctx, "lc", false).await;
    assert!(tasks(&ctx, &pipe.dlq_arn, Some(10)).await.is_empty());
    for max in [0, 11] {
        let err = ctx
            .client
            .list_message_move_tasks()
            .source_arn(&pipe.dlq_arn)
            .max_results(max)
            .send()
            .await;
        assert_eq!(error_code(err, "MaxResults"), "InvalidParameterValue");
    }
    let missing = pipe.dlq_arn.replace("lc-dlq", "nowhere");
    let err = ctx
        .client
        .list_message_move_tasks()
        .source_arn(&missing)
        .send()
        .await
        .expect_err("unknown source");
    assert!(err.into_service_error().is_resource_not_found_exception());

    let cancel = |handle: String| {
        let client = ctx.client.clone();
        async move {
            client
                .cancel_message_move_task()
                .task_handle(handle)
                .send()
                .await
        }
    };
    let err = cancel("foobared".into()).await.expect_err("garbage handle");
    assert_eq!(err.code(), Some("InvalidParameterValue"));
    assert_eq!(
        err.message(),
        Some("Value for parameter TaskHandle is invalid.")
    );

    // A real handle, then the same with another source queue or another task id.
    let handle = start(&ctx, &pipe.dlq_arn, None, None).await;
    let done = wait_until_ended(&ctx, &pipe.dlq_arn).await;
    assert_eq!(done.status(), Some("COMPLETED"), "nothing to move");
    assert_eq!(done.approximate_number_of_messages_to_move(), Some(0));
    let decoded = decode(&handle);
    let (id, source) = decoded.split_once(' ').expect("id and source");
    assert_eq!(source, pipe.dlq_arn);
    let err = cancel(encode(&format!("{id} {missing}")))
        .await
        .expect_err("no source");
    assert_eq!(
        err.message(),
        Some("The resource that you specified for the SourceArn parameter doesn't exist.")
    );
    assert!(err.into_service_error().is_resource_not_found_exception());
    let last = if id.ends_with('0') { '1' } else { '0' };
    let other_id = format!("{}{last}", &id[..35]);
    let err = cancel(encode(&format!("{other_id} {source}")))
        .await
        .expect_err("no task");
    assert_eq!(err.message(), Some("Task does not exist."));
    assert!(err.into_service_error().is_resource_not_found_exception());

    let err = cancel(handle).await.expect_err("a completed task");
    assert!(err.into_service_error().is_unsupported_operation());
}

/// The handle is opaque to clients; the test reads it only to forge wrong ones.
fn decode(handle: &str) -> String {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(handle)
        .expect("the endpoint's handles are base64url");
    String::from_utf8(raw).unwrap()
}

fn encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// A task whose destination is deleted while it runs fails with the
/// FailureReason AWS.SimpleQueueService.NonExistentQueue; so does one without a
/// destination that meets a message sent to the dead-letter queue directly (it has
/// no source queue to go back to). No message is lost either way.
async fn a_task_fails_when_its_destination_is_gone(target: Target) {
    let ctx = Ctx::start(target).await;
    let pipe = Pipe::new(&ctx, "gone", false).await;
    for n in 0..5 {
        ctx.send(&pipe.work, &format!("g{n}")).await;
    }
    pipe.dead_letter(&ctx, 5).await;
    let doomed = ctx.queue("gone-out", &[]).await;
    let doomed_arn = ctx.arn(&doomed).await;
    start(&ctx, &pipe.dlq_arn, Some(&doomed_arn), Some(1)).await;
    wait_for(&ctx, &pipe.dlq_arn, "one moved", |t| {
        t.approximate_number_of_messages_moved() >= 1
    })
    .await;
    ctx.client
        .delete_queue()
        .queue_url(&doomed)
        .send()
        .await
        .unwrap();
    let done = wait_until_ended(&ctx, &pipe.dlq_arn).await;
    assert_eq!(done.status(), Some("FAILED"));
    assert_eq!(
        done.failure_reason(),
        Some("AWS.SimpleQueueService.NonExistentQueue")
    );
    let moved = done.approximate_number_of_messages_moved() as u32;
    assert!(moved < 5);
    ctx.expect_counts(&pipe.dlq, 5 - moved, 0, 0).await;

    // Back to the sources: the first messages go, the one sent directly stops it.
    ctx.send(&pipe.dlq, "orphan").await;
    start(&ctx, &pipe.dlq_arn, None, None).await;
    let done = wait_until_ended(&ctx, &pipe.dlq_arn).await;
    assert_eq!(done.status(), Some("FAILED"));
    assert!(
        done.failure_reason()
            .is_some_and(|r| r.contains("DestinationArn"))
    );
    assert_eq!(
        done.approximate_number_of_messages_moved() as u32,
        5 - moved
    );
    ctx.expect_counts(&pipe.work, 5 - moved, 0, 0).await;
    let left = ctx
        .receive_n(&pipe.dlq, 1, Some(30), Duration::from_secs(3))
        .await;
    assert_eq!(bodies(&left), ["orphan"]);
}

/// ListMessageMoveTasks answers the newest task by default and up to MaxResults
/// (at most 10) newest first; StartedTimestamp does not grow down the list.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasks.html>
async fn list_is_newest_first(target: Target) {
    let ctx = Ctx::start(target).await;
    let pipe = Pipe::new(&ctx, "hist", false).await;
    let mut destinations = Vec::new();
    for n in 0..3 {
        let url = ctx.queue(&format!("hist-out-{n}"), &[]).await;
        let arn = ctx.arn(&url).await;
        start(&ctx, &pipe.dlq_arn, Some(&arn), None).await;
        wait_until_ended(&ctx, &pipe.dlq_arn).await;
        destinations.push(arn);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let newest = tasks(&ctx, &pipe.dlq_arn, None).await;
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].destination_arn(), Some(destinations[2].as_str()));
    let all = tasks(&ctx, &pipe.dlq_arn, Some(10)).await;
    let listed: Vec<&str> = all.iter().filter_map(|t| t.destination_arn()).collect();
    let expected: Vec<&str> = destinations.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, expected);
    assert!(
        all.windows(2)
            .all(|w| w[0].started_timestamp() >= w[1].started_timestamp())
    );
    let two = tasks(&ctx, &pipe.dlq_arn, Some(2)).await;
    assert_eq!(two.len(), 2);
}
