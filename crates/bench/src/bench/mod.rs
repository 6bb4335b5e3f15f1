//! `sqs-barrier bench` (and `bench-worker`): release latency, SQS requests (and tagging actions)
//! per participant-episode and episodes per second of the barrier (or of the
//! course handout's protocol, `--baseline`), next to the endpoint's own
//! hand-off time, fan-out floor and gather floor.
//!
//! Definitions (the same in both modes):
//!
//! * An **episode** is one generation: every participant arrives, and every
//!   participant is released. Participants loop with no work in between, or
//!   with `--work SECS`, before each measured episode, a random time uniform
//!   in [0, SECS] (seeded by `--seed`, per member index). Episode 0 is a
//!   warm-up (connections, the coordinator's first state write; never any
//!   work): it is excluded from every figure and reported on its own.
//! * **Release latency** of an episode: from the last check-in (the latest,
//!   over participants, of the instant just before the check-in is sent) to
//!   the last release (the latest instant a participant's wait returned).
//! * **Requests per participant-episode**: every SQS request attempt made by
//!   the participants and the coordinator (or monitor) during the measured
//!   episodes, divided by N x E. Setup, connecting and teardown are not
//!   counted: counters are read after the warm-up episode and at the end.
//! * **Hand-off**: on a queue of its own, a long-polling receiver is parked,
//!   then one message is sent; the time from just before the send to the
//!   receive's return. Its p50 is the floor any SQS barrier pays at least
//!   twice (check-in, then release).
//! * **Fan-out floor**: on a queue of its own, N receivers (N = `--parties`,
//!   each with a client of its own on its group's connections, grouped into
//!   processes as the participants are) long-poll (`WaitTimeSeconds` 20,
//!   `VisibilityTimeout` 0); once every receiver's attempt has been counted
//!   and a settle time more has passed (20 ms + 2 x hand-off p50 + 50 µs per
//!   receiver), one message is sent; the time from just before the send
//!   until the last receiver's receive returned with it. A receive that
//!   returned without it polls again. 11 samples (none begun after 60 s);
//!   its p50 is the least a release of N parked participants takes once
//!   decided, and release p50 is reported as a multiple of it ("x floor").
//! * **Gather floor**: on a queue of its own, one consumer (one client) has
//!   R long polls parked (R = the coordinator's receivers in a burst of N
//!   check-ins: `--receivers`, else its default rule;
//!   `MaxNumberOfMessages` 10, `VisibilityTimeout` 43,200, each polling
//!   again at once after an answer); once every one has been counted and a
//!   settle time more has passed (the fan-out floor's for R receivers), N
//!   senders (each with a client of its own, grouped into processes as the
//!   participants are) send one message each, all at once; the time from
//!   the start of the last send until the consumer has all N distinct
//!   messages. Round 0 (connections) is not a sample; then 11 samples (none
//!   begun after 60 s), the messages deleted after each. Its p50 is the
//!   least the N check-ins take to reach a coordinator; the **two-hop
//!   floor** is gather p50 + fan-out p50, the least the whole release
//!   takes (two hand-offs), release p50 reported as a multiple of it too.
//! * **Tagging actions**: the `TagQueue`, `UntagQueue` and `ListQueueTags`
//!   attempts among the requests above (SQS allows 5 a second per
//!   account, the three together): per participant-episode (over N x E), and
//!   per barrier-minute (over the minutes of the coordinator's counted
//!   window). **Failed tagging attempts**: those of them the counters
//!   recorded as failed (no response or a status other than 2xx; on SQS
//!   most likely a throttle).
//! * **Waiting**: a participant waits from the moment its check-in call has
//!   returned until its wait returns. Each participant has a client of its
//!   own (on its group's connections) whose counter counts its requests
//!   only; read just before the check-in, when the check-in call returned,
//!   and when the wait returned. The check-in's requests are the
//!   `SendMessage` attempts (retries included) counted until the check-in
//!   call returned; every other request of the participant in that interval
//!   is a waiting request (long polls, re-sent check-ins, status reads; for
//!   `--baseline`, the short polls and the delete of the release message).
//!   Requests per minute of waiting: the waiting requests over the
//!   participant-minutes waited, summed over participants and measured
//!   episodes.
//! * **Coordinator requests per minute**: its (the monitor's) requests over
//!   the window its counter is read in (see above), and split by whether a
//!   generation was open (see `coordinator`).
//!
//! The parts: `run` drives a run and computes its figures, `summary` prints
//! them; `group` runs a group of participants (in this process, or in a
//! worker process that reports over the line protocol of `worker`);
//! `coordinator` splits the coordinator's requests into open and idle;
//! `baseline` is the handout's protocol; `handoff`, `fanout` and `gather`
//! measure the endpoint (`probes`: the floors' worker processes); `stats`
//! holds the arithmetic; `sampler` reads the queues'
//! counts over a run (`--sample-queues`). `bench-report` is the crate's
//! `report`.

mod baseline;
mod coordinator;
mod fanout;
mod gather;
mod group;
mod handoff;
mod probes;
mod run;
mod sampler;
mod stats;
mod summary;
mod worker;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use sqs_barrier::{ClientOptions, Sqs};

pub(crate) use run::run;
pub(crate) use worker::worker;

use crate::Failed;

type Counts = BTreeMap<String, u64>;

/// The pause after the warm-up episode and after the last one, so that the
/// coordinator's deferred work (check-ins are deleted after a state write,
/// at most one per 500 ms) falls inside the counted window for exactly the
/// measured episodes.
const SETTLE: Duration = Duration::from_millis(1500);

/// When the coordinator's counter is read after the warm-up episode: after
/// its deferred work, before any group can start episode 1 (groups wait
/// [`SETTLE`] from their own end of the warm-up).
const COORD_START: Duration = Duration::from_millis(1000);

/// A benchmark failure: how it failed (which the caller makes an exit code
/// of) and what to tell the user.
#[derive(Debug)]
struct Failure {
    failed: Failed,
    msg: String,
}

impl Failure {
    fn new(failed: Failed, msg: impl Into<String>) -> Self {
        Self {
            failed,
            msg: msg.into(),
        }
    }
    fn infra(msg: impl Into<String>) -> Self {
        Self::new(Failed::Infrastructure, msg)
    }
}

impl From<sqs_barrier::Error> for Failure {
    fn from(e: sqs_barrier::Error) -> Self {
        let msg = e.to_string();
        Self::new(Failed::Barrier(Box::new(e)), msg)
    }
}

fn sdk<E: std::error::Error>(op: &str, e: E) -> String {
    format!("{op}: {}", DisplayErrorContext(&e))
}

fn seconds(s: f64, what: &str) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::new(
                Failed::Usage,
                format!("{what} must be a positive number of seconds"),
            )
        })
}

/// Where the benchmark runs.
#[derive(Clone, Debug)]
struct Target {
    url: String,
    embedded: bool,
    client: ClientOptions,
}

impl Target {
    /// A new client with a request counter of its own.
    async fn sqs(&self) -> Result<Sqs, Failure> {
        if self.embedded {
            Ok(Sqs::local(&self.url))
        } else {
            Ok(Sqs::connect(&self.client).await?)
        }
    }
}

/// The longest work before an episode (`--work`): seconds, 0 to a day.
fn work_seconds(s: f64) -> Result<f64, Failure> {
    if (0.0..=86_400.0).contains(&s) {
        Ok(s)
    } else {
        Err(Failure::new(
            Failed::Usage,
            "--work must be a number of seconds from 0 to 86400",
        ))
    }
}
