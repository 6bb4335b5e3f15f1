//! The background half of a message-move task: a tokio task that moves messages one
//! at a time from the source queue to the destination, at the task's rate.
//!
//! Each move takes the source's lock, then (released) the destination's, never both
//! at once, so it cannot deadlock with receives that dead-letter messages the other
//! way. A message is in exactly one queue before and after a move: the source hands
//! it over only after the destination was found, and a message a consumer received
//! in between is left to the consumer (see [`Queue::take_for_move`]).
//!
//! With `MaxNumberOfMessagesPerSecond` = r the n-th message (from 0) is moved no
//! earlier than n/r seconds after the start, so the first goes at once; without it,
//! messages are moved as fast as the locks allow, yielding to other tasks every
//! [`BATCH`] messages. A cancel wakes a runner that waits for its rate at once. At
//! server shutdown runners stop where they are.
//!
//! [`Queue::take_for_move`]: crate::model::Queue::take_for_move

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{MoveTask, NON_EXISTENT_QUEUE, Outcome};
use crate::server::stopped;
use crate::service::{Service, now};

/// Messages moved between two yields when the task has no rate.
const BATCH: u64 = 64;

/// `FailureReason` when a task without a destination meets a message that was not
/// dead-lettered by a redrive policy, so it has no source queue to go back to.
const NO_SOURCE_QUEUE: &str = "A message in the source queue was not moved there by a redrive policy, so it has no source queue to return to; start the task with a DestinationArn to move it.";

/// What one step did.
#[derive(Debug)]
enum Step {
    /// One message moved.
    Moved,
    /// The message chosen was received by a consumer before it could be taken.
    Raced,
    /// Nothing left that the task may move.
    Done,
    /// The task cannot go on.
    Failed(String),
}

/// Runs `task` in the background until it ends or the server stops.
pub(crate) fn spawn(service: Arc<Service>, task: Arc<MoveTask>) {
    tokio::spawn(run(service, task));
}

async fn run(service: Arc<Service>, task: Arc<MoveTask>) {
    let mut shutdown = service.shutdown.clone();
    let started = Instant::now();
    let mut moved: u64 = 0;
    loop {
        if task.cancel_requested() {
            task.finish(Outcome::Completed);
            return;
        }
        if *shutdown.borrow() {
            return;
        }
        if let Some(rate) = task.spec.rate {
            let due = started + pace(moved, rate);
            if Instant::now() < due {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = task.wake.notified() => {}
                    _ = stopped(&mut shutdown) => return,
                }
                continue;
            }
        }
        match step(&service, &task) {
            Step::Moved => {
                moved += 1;
                if task.spec.rate.is_none() && moved.is_multiple_of(BATCH) {
                    tokio::task::yield_now().await;
                }
            }
            Step::Raced => tokio::task::yield_now().await,
            Step::Done => {
                tracing::debug!(task = %task.id, moved, "message-move task done");
                task.finish(Outcome::Completed);
                return;
            }
            Step::Failed(reason) => {
                tracing::debug!(task = %task.id, moved, %reason, "message-move task failed");
                task.finish(Outcome::Failed(reason));
                return;
            }
        }
    }
}

/// When message `n` (from 0) may be moved at `rate` per second, from the start.
fn pace(n: u64, rate: u32) -> Duration {
    Duration::from_nanos(n.saturating_mul(1_000_000_000) / u64::from(rate.max(1)))
}

/// Moves one message, if the task may move one now.
fn step(service: &Service, task: &MoveTask) -> Step {
    let Some(source) = task.source() else {
        return Step::Failed(NON_EXISTENT_QUEUE.to_owned());
    };
    let now = now();
    let Some(candidate) = source.lock().next_to_move(task.spec.horizon, now) else {
        return Step::Done;
    };
    let destination_arn = task.spec.destination_arn.as_deref();
    let Some(destination_arn) = destination_arn.or(candidate.dead_letter_source()) else {
        return Step::Failed(NO_SOURCE_QUEUE.to_owned());
    };
    let Some(destination) = service.get_by_arn(destination_arn) else {
        return Step::Failed(NON_EXISTENT_QUEUE.to_owned());
    };
    let Some(message) = source.lock().take_for_move(&candidate, now) else {
        return Step::Raced;
    };
    destination.lock().accept_moved(message, now);
    destination.wakeup.notify_waiters();
    task.moved_one();
    Step::Moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_message_waits_n_over_rate_seconds() {
        assert_eq!(pace(0, 1), Duration::ZERO);
        assert_eq!(pace(3, 1), Duration::from_secs(3));
        assert_eq!(pace(1, 500), Duration::from_millis(2));
        assert_eq!(pace(250, 500), Duration::from_millis(500));
    }
}
