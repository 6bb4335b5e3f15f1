//! The gather floor: the least time for N messages sent at once by N
//! senders to all reach one consumer whose long polls are parked, the
//! least the first hand-off of a release (N check-ins to the coordinator)
//! can take; the fan-out floor is the least of the second (the notice to
//! N).
//!
//! On a queue of its own, a consumer with one client (as the coordinator
//! has) runs R receivers, R being the coordinator's long polls on the
//! check-in queue in a burst of N check-ins (`--receivers`, else the
//! coordinator's default rule, `CoordinatorOptions::burst_receivers`).
//! Each long-polls (`WaitTimeSeconds` 20, `MaxNumberOfMessages` 10,
//! `VisibilityTimeout` 43,200 so that nothing comes back) and polls again
//! at once after each answer, as the coordinator's receivers do. N senders,
//! each with a client of its own on its group's connections (the groups are
//! those of the participants: this process, or with `--processes` one
//! group per worker process), send one message each, all at once (a
//! group's senders start on one signal).
//!
//! A round: once every receiver's attempt has been counted by the
//! consumer's request counter without having returned (its long poll is
//! out), and a settle time more has passed (the fan-out floor's for R
//! receivers), the sends start. A sample is the time from the start of the
//! last send (the latest instant just before a send: the release latency
//! too counts from the last check-in) until the consumer has received all N
//! distinct messages (the return of the receive that brought the last of
//! them; wall clock, shared by the processes of a run). The messages are
//! then deleted (not timed), so that the next round starts from an empty
//! queue. Round 0 opens the senders' connections (a participant's are open
//! after the warm-up episode) and is not a sample; then 11 samples, none
//! begun once the measurement has taken 60 s.
//!
//! Worker processes (`bench-worker --gather-url URL`, see `probes`) run
//! their group's senders as told on stdin, one line per round, and answer
//! on stdout:
//!
//! * `SEND i` (stdin): every sender of the group sends its message of
//!   round `i`;
//! * `SENT i last`: every send returned; `last` is the latest instant one
//!   started (microseconds since the Unix epoch);
//! * `FAIL why`: the group failed; the last line.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqs_barrier::clock::wall_us;
use sqs_barrier::{ClientOptions, Sqs};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::probes::{self, BUDGET, DELIVERY_LIMIT, PARK_LIMIT, Probe, SAMPLES};
use super::{Failure, Target, sdk};
use crate::Failed;
use crate::args::{BenchArgs, BenchWorkerArgs};

/// The floor's samples and how they were taken.
#[derive(Debug)]
pub(super) struct Floor {
    /// The samples, in milliseconds.
    pub(super) samples: Vec<f64>,
    /// The consumer's long polls (R).
    pub(super) receivers: usize,
    /// The settle time before each round's sends.
    pub(super) settle: Duration,
}

/// Measures the gather floor of `a.parties` senders (grouped as the
/// participants are, by `a.processes`) and a consumer of `receivers` long
/// polls on a new queue `name` (deleted afterwards), waiting `settle`
/// before each round's sends.
pub(super) async fn gather(
    a: &BenchArgs,
    target: &Target,
    name: &str,
    receivers: usize,
    settle: Duration,
) -> Result<Floor, Failure> {
    let admin = target.sqs().await?;
    let url = admin
        .client()
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| Failure::infra(sdk("CreateQueue", e)))?
        .queue_url
        .unwrap_or_default();
    let result = async {
        let mut consumer = Consumer::start(&target.sqs().await?, receivers, &url);
        let mut senders = match a.processes {
            None => Senders::Here(Group::new(&target.sqs().await?, 0, a.parties, &url)),
            Some(p) => Senders::Workers(probes::start(
                target,
                name,
                ("--gather-url", &url),
                a.parties,
                p,
                "gather",
            )?),
        };
        let r = measure(&mut consumer, &mut senders, &admin, &url, a.parties, settle).await;
        consumer.tasks.abort_all();
        senders.close().await;
        r.map(|samples| Floor {
            samples,
            receivers,
            settle,
        })
    }
    .await;
    let _ = admin.client().delete_queue().queue_url(&url).send().await;
    result
}

async fn measure(
    consumer: &mut Consumer,
    senders: &mut Senders,
    admin: &Sqs,
    url: &str,
    n: usize,
    settle: Duration,
) -> Result<Vec<f64>, Failure> {
    let mut samples = Vec::with_capacity(SAMPLES);
    let began = Instant::now();
    for i in 0..=SAMPLES {
        if i > 1 && began.elapsed() > BUDGET {
            break;
        }
        let fail = |e: String| Failure::infra(format!("gather round {i}: {e}"));
        consumer.parked().await.map_err(fail)?;
        tokio::time::sleep(settle).await;
        let limit = if i == 0 {
            PARK_LIMIT + DELIVERY_LIMIT
        } else {
            DELIVERY_LIMIT
        };
        let until = tokio::time::Instant::now() + limit;
        let (last, (done, receipts)) =
            tokio::try_join!(senders.send(i, until), consumer.collect(i, n, until))
                .map_err(fail)?;
        if i > 0 {
            samples.push(done.saturating_sub(last) as f64 / 1e3);
        }
        for c in receipts.chunks(10) {
            admin.delete_batch(url, c).await?;
        }
    }
    Ok(samples)
}

/// The body of sender `k`'s message of round `i`.
fn body(i: usize, k: usize) -> String {
    format!("gather {i} {k}")
}

/// The round and the sender of a message body.
fn parse_body(b: &str) -> Option<(usize, usize)> {
    let (i, k) = b.strip_prefix("gather ")?.split_once(' ')?;
    Some((i.parse().ok()?, k.parse().ok()?))
}

/// What the consumer has of round `sample`'s `n` messages: the senders
/// seen, every receipt handle (a stray message's too, to delete), and when
/// the last distinct message came.
#[derive(Debug)]
struct Tally {
    sample: usize,
    n: usize,
    seen: HashSet<usize>,
    receipts: Vec<String>,
    done: Option<u64>,
}

impl Tally {
    fn new(sample: usize, n: usize) -> Self {
        Self {
            sample,
            n,
            seen: HashSet::with_capacity(n),
            receipts: Vec::new(),
            done: None,
        }
    }

    /// A message received by a receive that returned at `at`.
    fn add(&mut self, at: u64, body: &str, receipt: Option<String>) {
        self.receipts.extend(receipt);
        if let Some((i, k)) = parse_body(body)
            && i == self.sample
            && k < self.n
            && self.seen.insert(k)
            && self.seen.len() == self.n
        {
            self.done = Some(at);
        }
    }
}

/// A batch of messages (bodies and receipt handles) and when the receive
/// that brought it returned (µs since the epoch).
type Batch = (u64, Vec<(String, Option<String>)>);

/// The consumer: R receivers on one client, long-polling in a loop.
struct Consumer {
    /// Counts the receivers' requests (and only theirs).
    sqs: Sqs,
    receivers: usize,
    /// Receives that returned, whatever they brought.
    returned: Arc<AtomicU64>,
    tasks: JoinSet<Result<(), String>>,
    batches: mpsc::UnboundedReceiver<Batch>,
}

impl Consumer {
    fn start(sqs: &Sqs, receivers: usize, url: &str) -> Self {
        let sqs = sqs.with_own_counter();
        let returned = Arc::new(AtomicU64::new(0));
        let (tx, batches) = mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        for _ in 0..receivers {
            let (c, u, tx, returned) = (
                sqs.client().clone(),
                url.to_owned(),
                tx.clone(),
                returned.clone(),
            );
            tasks.spawn(async move {
                loop {
                    let out = c
                        .receive_message()
                        .queue_url(&u)
                        .max_number_of_messages(10)
                        .visibility_timeout(43_200)
                        .wait_time_seconds(20)
                        .send()
                        .await;
                    let at = wall_us();
                    returned.fetch_add(1, Ordering::SeqCst);
                    let messages: Vec<_> = out
                        .map_err(|e| sdk("ReceiveMessage", e))?
                        .messages
                        .unwrap_or_default()
                        .into_iter()
                        .map(|m| (m.body.unwrap_or_default(), m.receipt_handle))
                        .collect();
                    if !messages.is_empty() && tx.send((at, messages)).is_err() {
                        return Ok(());
                    }
                }
            });
        }
        Self {
            sqs,
            receivers,
            returned,
            tasks,
            batches,
        }
    }

    /// Long polls out: attempts counted that have not returned.
    fn out(&self) -> u64 {
        // The attempts first: a receive returning in between makes it
        // smaller, never larger.
        let attempts = self
            .sqs
            .requests()
            .snapshot()
            .get("ReceiveMessage")
            .copied()
            .unwrap_or(0);
        attempts.saturating_sub(self.returned.load(Ordering::SeqCst))
    }

    /// Returns once every receiver's long poll is out.
    async fn parked(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let r = self.receivers as u64;
        while self.out() < r {
            if let Some(j) = self.tasks.try_join_next() {
                return Err(ended(j));
            }
            if started.elapsed() > PARK_LIMIT {
                return Err(format!(
                    "{} of {r} long polls of the consumer were out after {} s",
                    self.out(),
                    PARK_LIMIT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Waits until the consumer has all `n` messages of round `i`: when the
    /// receive that brought the last of them returned (µs since the epoch),
    /// and the receipt handles of what it received.
    async fn collect(
        &mut self,
        i: usize,
        n: usize,
        until: tokio::time::Instant,
    ) -> Result<(u64, Vec<String>), String> {
        let mut tally = Tally::new(i, n);
        loop {
            tokio::select! {
                b = self.batches.recv() => {
                    let (at, messages) = b.ok_or("the consumer's receivers stopped")?;
                    for (body, receipt) in messages {
                        tally.add(at, &body, receipt);
                    }
                    if let Some(done) = tally.done {
                        return Ok((done, tally.receipts));
                    }
                }
                Some(j) = self.tasks.join_next() => return Err(ended(j)),
                _ = tokio::time::sleep_until(until) => {
                    return Err(format!(
                        "the consumer had {} of {n} messages after {} s",
                        tally.seen.len(),
                        DELIVERY_LIMIT.as_secs()
                    ));
                }
            }
        }
    }
}

/// Why a receiver of the consumer ended.
fn ended(j: Result<Result<(), String>, tokio::task::JoinError>) -> String {
    match j {
        Ok(Err(e)) => e,
        Ok(Ok(())) => "a receiver of the consumer stopped".into(),
        Err(e) => format!("a receiver of the consumer failed: {e}"),
    }
}

/// A group of senders in one process, each with a client of its own on one
/// set of connections.
struct Group {
    senders: Vec<Sqs>,
    /// The index of the first.
    first: usize,
    url: String,
}

impl Group {
    fn new(sqs: &Sqs, first: usize, count: usize, url: &str) -> Self {
        let shared = sqs.with_own_counter();
        Self {
            senders: (0..count).map(|_| shared.with_own_counter()).collect(),
            first,
            url: url.to_owned(),
        }
    }

    /// Every sender sends its message of round `i`, all on one signal;
    /// once every send returned, the latest instant one started.
    async fn send(&self, i: usize) -> Result<u64, String> {
        let (go, signal) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for (j, s) in self.senders.iter().enumerate() {
            let (c, u, b) = (
                s.client().clone(),
                self.url.clone(),
                body(i, self.first + j),
            );
            let mut signal = signal.clone();
            tasks.spawn(async move {
                let _ = signal.wait_for(|go| *go).await;
                let started = wall_us();
                c.send_message()
                    .queue_url(u)
                    .message_body(b)
                    .send()
                    .await
                    .map_err(|e| sdk("SendMessage", e))?;
                Ok::<u64, String>(started)
            });
        }
        let _ = go.send(true);
        let mut last = 0;
        while let Some(j) = tasks.join_next().await {
            match j {
                Ok(Ok(t)) => last = last.max(t),
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(format!("a sender task failed: {e}")),
            }
        }
        Ok(last)
    }
}

/// Where the senders are: in this process, or in worker processes.
enum Senders {
    Here(Group),
    Workers(Vec<Probe>),
}

impl Senders {
    /// Every sender sends its message of round `i`; the latest instant a
    /// send started (µs since the epoch).
    async fn send(&mut self, i: usize, until: tokio::time::Instant) -> Result<u64, String> {
        match self {
            Self::Here(g) => tokio::time::timeout_at(until, g.send(i))
                .await
                .map_err(|_| "the sends did not return in time".to_owned())?,
            Self::Workers(ws) => {
                probes::tell_all(ws, &format!("SEND {i}")).await?;
                let mut last = 0;
                for w in ws.iter_mut() {
                    let rest = w.expect("SENT ", until).await?;
                    let at = parse_sent(&rest, i)
                        .ok_or_else(|| format!("a worker process answered SENT {rest}"))?;
                    last = last.max(at);
                }
                Ok(last)
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

/// `i last` of a `SENT` line for round `i`.
fn parse_sent(rest: &str, i: usize) -> Option<u64> {
    match probes::numbers(rest, i)?[..] {
        [last] => Some(last),
        _ => None,
    }
}

/// A worker process's side (`bench-worker --gather-url URL`): runs
/// `a.count` senders (from member `a.first`) on `url` as told on stdin
/// (see the module documentation); `FAIL why` on stdout if it fails.
pub(super) async fn serve(
    a: &BenchWorkerArgs,
    client: &ClientOptions,
    url: &str,
) -> Result<(), Failed> {
    let result = async {
        let sqs = Sqs::connect(client).await?;
        let group = Group::new(&sqs, a.first, a.count, url);
        let mut rx = probes::stdin_lines();
        while let Some(l) = rx.recv().await {
            let Some(i) = probes::command(&l, "SEND") else {
                continue;
            };
            let last = group
                .send(i)
                .await
                .map_err(|e| Failure::infra(format!("gather round {i}: {e}")))?;
            println!("SENT {i} {last}");
        }
        Ok::<(), Failure>(())
    }
    .await;
    result.map_err(|f| {
        println!("FAIL {}", f.msg);
        f.failed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip() {
        assert_eq!(parse_body(&body(3, 999)), Some((3, 999)));
        assert_eq!(parse_body("fan-out 3"), None);
        assert_eq!(parse_body("gather 3"), None);
        assert_eq!(parse_body("gather x 1"), None);
    }

    #[test]
    fn sent_lines() {
        assert_eq!(
            parse_sent("4 1700000000000000", 4),
            Some(1_700_000_000_000_000)
        );
        assert_eq!(parse_sent("4 5", 3), None);
        assert_eq!(parse_sent("4 5 6", 4), None);
        assert_eq!(parse_sent("4", 4), None);
    }

    #[test]
    fn a_round_is_done_at_the_last_distinct_message_of_its_own() {
        let mut t = Tally::new(2, 3);
        t.add(10, &body(2, 0), Some("a".into()));
        // A duplicate, a message of another round, a stranger, a sender
        // out of range: receipts kept, none counted.
        t.add(11, &body(2, 0), Some("b".into()));
        t.add(12, &body(1, 1), Some("c".into()));
        t.add(13, "hello", None);
        t.add(14, &body(2, 3), Some("d".into()));
        assert_eq!((t.seen.len(), t.done), (1, None));
        t.add(20, &body(2, 2), Some("e".into()));
        assert_eq!(t.done, None);
        t.add(30, &body(2, 1), Some("f".into()));
        assert_eq!(t.done, Some(30));
        assert_eq!(t.receipts, ["a", "b", "c", "d", "e", "f"]);
    }
}
