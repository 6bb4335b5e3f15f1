//! Registry tests on a virtual clock: statuses, one active task per queue, newest
//! first, what is kept for how long, handles.

use super::*;
use crate::model::{Queue, QueueAttributes};

const T0: Millis = 1_700_000_000_000;
const DAY: Millis = 24 * 60 * 60 * 1000;
const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:dlq";

fn slot() -> Arc<QueueSlot> {
    let queue = Queue::new("dlq", QueueAttributes::default(), 5, T0);
    QueueSlot::detached(queue, ARN)
}

fn task(n: u128, source: &Arc<QueueSlot>, at: Millis) -> MoveTask {
    let spec = TaskSpec {
        source_arn: ARN.to_owned(),
        destination_arn: None,
        rate: None,
        started_at: at,
        to_move: 0,
        horizon: source.lock().move_horizon(),
    };
    MoveTask::new(format!("00000000-0000-4000-8000-{n:012x}"), spec, source)
}

/// Starts `count` tasks one `step` apart from `T0`, each completed before the next.
fn history(tasks: &MoveTasks, source: &Arc<QueueSlot>, count: u128, step: Millis) {
    for n in 0..count {
        let started = tasks
            .start(
                task(n, source, T0 + n as Millis * step),
                source,
                T0 + n as Millis * step,
            )
            .unwrap();
        started.finish(Outcome::Completed);
    }
}

fn ids(list: &[Arc<MoveTask>]) -> Vec<String> {
    list.iter()
        .map(|t| t.id[24..].trim_start_matches('0').to_owned())
        .collect()
}

#[test]
fn one_active_task_per_source_queue() {
    let tasks = MoveTasks::default();
    let source = slot();
    let first = tasks.start(task(1, &source, T0), &source, T0).unwrap();
    let second = tasks.start(task(2, &source, T0), &source, T0).unwrap_err();
    assert_eq!(second.code, ErrorCode::InvalidParameterValue);
    assert!(second.message.contains("already a task running"));
    // Cancelling is still active; cancelled is not.
    first.cancel().unwrap();
    assert!(tasks.start(task(2, &source, T0), &source, T0).is_err());
    first.finish(Outcome::Completed);
    assert_eq!(first.progress().status, Status::Cancelled);
    tasks.start(task(2, &source, T0), &source, T0).unwrap();
}

#[test]
fn listed_newest_first_up_to_max() {
    let tasks = MoveTasks::default();
    let source = slot();
    history(&tasks, &source, 4, 1000);
    assert_eq!(ids(&tasks.list(&source, 1, T0 + DAY)), ["3"]);
    assert_eq!(ids(&tasks.list(&source, 10, T0 + DAY)), ["3", "2", "1", ""]);
}

#[test]
fn tasks_are_kept_for_14_days_and_10_per_queue() {
    let tasks = MoveTasks::default();
    let source = slot();
    history(&tasks, &source, 3, DAY);
    // Started at T0, T0 + 1 day, T0 + 2 days.
    assert_eq!(tasks.list(&source, 10, T0 + 14 * DAY - 1).len(), 3);
    assert_eq!(ids(&tasks.list(&source, 10, T0 + 14 * DAY)), ["2", "1"]);
    assert!(
        tasks
            .find(&source, &task(0, &source, T0).id, T0 + 14 * DAY)
            .is_none()
    );
    assert_eq!(tasks.list(&source, 10, T0 + 16 * DAY).len(), 0);

    let tasks = MoveTasks::default();
    history(&tasks, &source, 12, 1);
    let kept = tasks.list(&source, 10, T0 + 100);
    assert_eq!(kept.len(), KEPT_PER_QUEUE);
    assert_eq!(ids(&kept)[0], "b");
}

#[test]
fn a_running_task_is_kept_whatever_its_age() {
    let tasks = MoveTasks::default();
    let source = slot();
    let running = tasks.start(task(7, &source, T0), &source, T0).unwrap();
    assert_eq!(tasks.list(&source, 1, T0 + 30 * DAY).len(), 1);
    running.finish(Outcome::Completed);
    assert!(tasks.list(&source, 1, T0 + 30 * DAY).is_empty());
}

#[test]
fn a_new_queue_of_the_same_name_has_no_tasks() {
    let tasks = MoveTasks::default();
    let old = slot();
    history(&tasks, &old, 2, 1);
    let new = slot();
    assert!(tasks.list(&new, 10, T0 + 10).is_empty());
    tasks.start(task(9, &new, T0 + 10), &new, T0 + 10).unwrap();
}

#[test]
fn only_running_tasks_can_be_cancelled() {
    let tasks = MoveTasks::default();
    let source = slot();
    let running = tasks.start(task(1, &source, T0), &source, T0).unwrap();
    running.moved_one();
    running.moved_one();
    assert_eq!(running.cancel(), Ok(2));
    assert!(running.cancel_requested());
    assert_eq!(running.progress().status, Status::Cancelling);
    let again = running.cancel().unwrap_err();
    assert_eq!(again.code, ErrorCode::UnsupportedOperation);
    assert!(again.message.contains("CANCELLING"), "{again}");
    running.finish(Outcome::Completed);
    assert_eq!(
        running.cancel().unwrap_err().code,
        ErrorCode::UnsupportedOperation
    );

    let failed = tasks.start(task(2, &source, T0), &source, T0).unwrap();
    failed.finish(Outcome::Failed(NON_EXISTENT_QUEUE.to_owned()));
    let progress = failed.progress();
    assert_eq!(progress.status, Status::Failed);
    assert_eq!(progress.failure_reason.as_deref(), Some(NON_EXISTENT_QUEUE));
    assert!(failed.cancel().is_err());
}

#[test]
fn handles_name_task_and_source_and_reject_anything_else() {
    let source = slot();
    let task = task(42, &source, T0);
    let handle = task.handle();
    assert_eq!(
        decode_handle(&handle).unwrap(),
        (task.id.clone(), ARN.to_owned())
    );
    for bad in [
        "foobared",
        "",
        "!!!",
        &encode_handle("not-a-uuid", ARN),
        &encode_handle(&task.id, "queue"),
    ] {
        let error = decode_handle(bad).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue, "{bad:?}");
        assert_eq!(error.message, "Value for parameter TaskHandle is invalid.");
    }
}
