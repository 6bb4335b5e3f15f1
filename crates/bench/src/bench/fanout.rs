//! The fan-out floor: the time the endpoint takes to hand one message to N
//! receivers already parked in long polls, the least a release of N
//! participants can take once it has been decided (a hand-off to N instead
//! of one).
//!
//! On a queue of its own, N receivers, each with a client of its own on its
//! group's connections (as participants have; the groups are those of the
//! participants: this process, or with `--processes` one group per worker
//! process), long-poll (`WaitTimeSeconds` 20, `VisibilityTimeout` 0, so that
//! the one message stays visible to all). Once every receiver's attempt has
//! been counted by the request counter (the attempt is about to be sent),
//! and a settle time more has passed for the requests to reach the endpoint
//! and park, one message is sent. A sample is the time from just before the
//! send until the last receiver's receive returned with the message (wall
//! clock, shared by the processes of a run). A receiver whose receive
//! returned without it polls again (counted in `empty`): a receiver not
//! parked in time makes its sample longer, never shorter. After each sample
//! the message is taken (`VisibilityTimeout` 43,200) and deleted, so that
//! the next sample starts from an empty queue.
//!
//! Worker processes (`bench-worker --fanout-url URL`, see `probes`) run
//! their group's receivers as told on stdin, one line per sample, and
//! answer on stdout:
//!
//! * `PARK i` (stdin): start the receivers' long polls for sample `i`;
//! * `PARKED i`: every receiver's attempt has been counted;
//! * `GOT i last empty`: every receiver has sample `i`'s message; `last` is
//!   the latest instant a receive returned with it (microseconds since the
//!   Unix epoch), `empty` the receives that returned without it;
//! * `FAIL why`: the group failed; the last line.
//!
//! A worker ends when its stdin is closed.

use std::time::{Duration, Instant};

use sqs_barrier::{ClientOptions, Sqs};
use tokio::task::JoinSet;

use super::probes::{self, Probe};
use super::probes::{BUDGET, DELIVERY_LIMIT, PARK_LIMIT, SAMPLES};
use super::{Failure, Target, sdk};
use crate::Failed;
use crate::args::{BenchArgs, BenchWorkerArgs};
use sqs_barrier::clock::wall_us;

/// The settle time after every attempt was counted: a fixed part, twice
/// the endpoint's hand-off p50 (a request's way there, with margin), and a
/// part per receiver (the endpoint takes in N requests at once).
const SETTLE_FIXED: Duration = Duration::from_millis(20);
const SETTLE_PER_RECEIVER: Duration = Duration::from_micros(50);

/// The floor's samples and how they were taken.
#[derive(Debug)]
pub(super) struct Floor {
    /// The samples, in milliseconds.
    pub(super) samples: Vec<f64>,
    /// The settle time before each send.
    pub(super) settle: Duration,
    /// Receives that returned without the message (and were repeated).
    pub(super) empty: u64,
}

/// The settle time for `n` receivers on an endpoint whose hand-off p50 is
/// `handoff_ms`.
pub(super) fn settle(n: usize, handoff_ms: f64) -> Duration {
    SETTLE_FIXED
        + Duration::from_secs_f64((2.0 * handoff_ms / 1e3).max(0.0))
        + SETTLE_PER_RECEIVER * u32::try_from(n).unwrap_or(u32::MAX)
}

/// Measures the fan-out floor of `a.parties` receivers (grouped as the
/// participants are, by `a.processes`) on a new queue `name` (deleted
/// afterwards), waiting `settle` before each send.
pub(super) async fn fanout(
    a: &BenchArgs,
    target: &Target,
    name: &str,
    settle: Duration,
) -> Result<Floor, Failure> {
    let sender = target.sqs().await?;
    let url = sender
        .client()
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| Failure::infra(sdk("CreateQueue", e)))?
        .queue_url
        .unwrap_or_default();
    let result = async {
        let mut receivers = match a.processes {
            None => Receivers::Here(Group::new(&target.sqs().await?, a.parties, &url)),
            Some(p) => Receivers::Workers(probes::start(
                target,
                name,
                ("--fanout-url", &url),
                a.parties,
                p,
                "fan-out",
            )?),
        };
        let r = measure(&mut receivers, &sender, &url, settle).await;
        receivers.close().await;
        r
    }
    .await;
    let _ = sender.client().delete_queue().queue_url(&url).send().await;
    result
}

async fn measure(
    receivers: &mut Receivers,
    sender: &Sqs,
    url: &str,
    settle: Duration,
) -> Result<Floor, Failure> {
    let mut floor = Floor {
        samples: Vec::new(),
        settle,
        empty: 0,
    };
    let began = Instant::now();
    for i in 0..SAMPLES {
        if i > 0 && began.elapsed() > BUDGET {
            break;
        }
        let fail = |e: String| Failure::infra(format!("fan-out sample {i}: {e}"));
        receivers.park(i).await.map_err(fail)?;
        tokio::time::sleep(settle).await;
        let t0 = wall_us();
        sender
            .client()
            .send_message()
            .queue_url(url)
            .message_body(body(i))
            .send()
            .await
            .map_err(|e| fail(sdk("SendMessage", e)))?;
        let (last, empty) = receivers.collect(i).await.map_err(fail)?;
        floor.samples.push(last.saturating_sub(t0) as f64 / 1e3);
        floor.empty += empty;
        take(sender, url, i).await?;
    }
    Ok(floor)
}

fn body(i: usize) -> String {
    format!("fan-out {i}")
}

/// A group of receivers in one process, each with a client of its own on
/// one set of connections.
struct Group {
    /// Counts every receiver's requests (and only theirs).
    shared: Sqs,
    receivers: Vec<Sqs>,
    url: String,
    /// The receivers of the current sample: when each returned with the
    /// message (µs since the epoch), and the receives without it.
    tasks: JoinSet<Result<(u64, u64), String>>,
}

impl Group {
    fn new(sqs: &Sqs, count: usize, url: &str) -> Self {
        let shared = sqs.with_own_counter();
        Self {
            receivers: (0..count).map(|_| shared.with_own_counter()).collect(),
            shared,
            url: url.to_owned(),
            tasks: JoinSet::new(),
        }
    }

    fn attempts(&self) -> u64 {
        self.shared
            .requests()
            .snapshot()
            .get("ReceiveMessage")
            .copied()
            .unwrap_or(0)
    }

    /// Starts every receiver's long poll for sample `i`; returns once every
    /// receiver's attempt has been counted.
    async fn park(&mut self, i: usize) -> Result<(), String> {
        let n = self.receivers.len();
        let before = self.attempts();
        let started = Instant::now();
        let deadline = started + PARK_LIMIT + DELIVERY_LIMIT;
        for r in &self.receivers {
            let (c, u, want) = (r.client().clone(), self.url.clone(), body(i));
            self.tasks.spawn(async move {
                let mut empty = 0u64;
                loop {
                    let out = c
                        .receive_message()
                        .queue_url(&u)
                        .max_number_of_messages(10)
                        .visibility_timeout(0)
                        .wait_time_seconds(20)
                        .send()
                        .await;
                    let at = wall_us();
                    let out = out.map_err(|e| sdk("ReceiveMessage", e))?;
                    let got = out
                        .messages
                        .unwrap_or_default()
                        .iter()
                        .any(|m| m.body.as_deref() == Some(want.as_str()));
                    if got {
                        return Ok((at, empty));
                    }
                    empty += 1;
                    if Instant::now() >= deadline {
                        return Err(format!("a receiver had no message after {empty} receives"));
                    }
                }
            });
        }
        while self.attempts() < before + n as u64 {
            let early = match self.tasks.try_join_next() {
                _ if started.elapsed() > PARK_LIMIT => Some(format!(
                    "{} of {n} receivers had started a long poll after {} s",
                    self.attempts().saturating_sub(before),
                    PARK_LIMIT.as_secs()
                )),
                None => None,
                Some(Ok(Err(e))) => Some(e),
                Some(Ok(Ok(_))) => Some("a receiver had the message before it was sent".into()),
                Some(Err(e)) => Some(format!("a receiver task failed: {e}")),
            };
            if let Some(e) = early {
                self.tasks.abort_all();
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Waits until every receiver has sample `i`'s message: the latest
    /// instant one returned with it, and the receives without it.
    async fn collect(&mut self) -> Result<(u64, u64), String> {
        let n = self.receivers.len();
        let limit = tokio::time::Instant::now() + DELIVERY_LIMIT;
        let (mut last, mut empty, mut done) = (0, 0, 0);
        loop {
            let joined = tokio::select! {
                j = self.tasks.join_next() => j,
                _ = tokio::time::sleep_until(limit) => {
                    self.tasks.abort_all();
                    return Err(format!(
                        "{done} of {n} receivers had the message after {} s",
                        DELIVERY_LIMIT.as_secs()
                    ));
                }
            };
            let (at, e) = match joined {
                None => return Ok((last, empty)),
                Some(Ok(Ok(r))) => r,
                Some(Ok(Err(e))) => {
                    self.tasks.abort_all();
                    return Err(e);
                }
                Some(Err(e)) => {
                    self.tasks.abort_all();
                    return Err(format!("a receiver task failed: {e}"));
                }
            };
            last = last.max(at);
            empty += e;
            done += 1;
        }
    }
}

/// Where the receivers are: in this process, or in worker processes.
enum Receivers {
    Here(Group),
    Workers(Vec<Probe>),
}

impl Receivers {
    /// Starts every receiver's long poll for sample `i`; returns once every
    /// receiver's attempt has been counted.
    async fn park(&mut self, i: usize) -> Result<(), String> {
        match self {
            Self::Here(g) => g.park(i).await,
            Self::Workers(ws) => {
                let until = tokio::time::Instant::now() + PARK_LIMIT;
                probes::tell_all(ws, &format!("PARK {i}")).await?;
                for w in ws.iter_mut() {
                    let rest = w.expect("PARKED ", until).await?;
                    if rest != i.to_string() {
                        return Err(format!("a worker process parked for {rest}, not {i}"));
                    }
                }
                Ok(())
            }
        }
    }

    /// Waits until every receiver has sample `i`'s message: the latest
    /// instant one returned with it (µs since the epoch), and the receives
    /// without it.
    async fn collect(&mut self, i: usize) -> Result<(u64, u64), String> {
        match self {
            Self::Here(g) => g.collect().await,
            Self::Workers(ws) => {
                let until = tokio::time::Instant::now() + DELIVERY_LIMIT;
                let (mut last, mut empty) = (0, 0);
                for w in ws.iter_mut() {
                    let rest = w.expect("GOT ", until).await?;
                    let (at, e) = parse_got(&rest, i)
                        .ok_or_else(|| format!("a worker process answered GOT {rest}"))?;
                    last = last.max(at);
                    empty += e;
                }
                Ok((last, empty))
            }
        }
    }

    /// Ends the worker processes, if any.
    async fn close(self) {
        if let Self::Workers(ws) = self {
            probes::close(ws).await;
        }
    }
}

/// `i last empty` of a `GOT` line for sample `i`.
fn parse_got(rest: &str, i: usize) -> Option<(u64, u64)> {
    match probes::numbers(rest, i)?[..] {
        [last, empty] => Some((last, empty)),
        _ => None,
    }
}

/// A worker process's side (`bench-worker --fanout-url URL`): runs
/// `a.count` receivers on `url` as told on stdin (see the module
/// documentation); `FAIL why` on stdout if it fails.
pub(super) async fn serve(
    a: &BenchWorkerArgs,
    client: &ClientOptions,
    url: &str,
) -> Result<(), Failed> {
    let result = async {
        let sqs = Sqs::connect(client).await?;
        let mut group = Group::new(&sqs, a.count, url);
        let mut rx = probes::stdin_lines();
        while let Some(l) = rx.recv().await {
            let Some(i) = probes::command(&l, "PARK") else {
                continue;
            };
            let fail = |e: String| Failure::infra(format!("fan-out sample {i}: {e}"));
            group.park(i).await.map_err(fail)?;
            println!("PARKED {i}");
            let (last, empty) = group.collect().await.map_err(fail)?;
            println!("GOT {i} {last} {empty}");
        }
        Ok::<(), Failure>(())
    }
    .await;
    result.map_err(|f| {
        println!("FAIL {}", f.msg);
        f.failed
    })
}

/// Takes sample `i`'s message off the queue (hidden for 12 h, then
/// deleted); fails if it does not come.
async fn take(sender: &Sqs, url: &str, i: usize) -> Result<(), Failure> {
    let want = body(i);
    for _ in 0..5 {
        let out = sender
            .client()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(43_200)
            .wait_time_seconds(2)
            .send()
            .await
            .map_err(|e| Failure::infra(sdk("ReceiveMessage", e)))?;
        let messages = out.messages.unwrap_or_default();
        let found = messages
            .iter()
            .any(|m| m.body.as_deref() == Some(want.as_str()));
        let receipts: Vec<String> = messages
            .into_iter()
            .filter_map(|m| m.receipt_handle)
            .collect();
        sender.delete_batch(url, &receipts).await?;
        if found {
            return Ok(());
        }
    }
    Err(Failure::infra(format!(
        "fan-out sample {i}: the message could not be taken off the queue afterwards"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn got_lines() {
        assert_eq!(
            parse_got("3 1700000000000000 2", 3),
            Some((1_700_000_000_000_000, 2))
        );
        assert_eq!(parse_got("3 5 0", 4), None);
        assert_eq!(parse_got("3 5", 3), None);
        assert_eq!(parse_got("x 5 0", 3), None);
    }

    #[test]
    fn the_settle_time_grows_with_the_hand_off_and_the_receivers() {
        assert_eq!(settle(0, 0.0), Duration::from_millis(20));
        assert_eq!(settle(1000, 1.0), Duration::from_millis(20 + 2 + 50));
    }
}
