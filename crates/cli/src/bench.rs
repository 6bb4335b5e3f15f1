//! `sqs-barrier bench`: release latency, SQS requests per participant-episode
//! and episodes per second of the barrier (or of the course handout's
//! protocol, `--baseline`), next to the endpoint's own hand-off time.
//!
//! Definitions (the same in both modes):
//!
//! * An **episode** is one generation: every participant arrives, and every
//!   participant is released. Participants loop with no work in between.
//!   Episode 0 is a warm-up (connections, the coordinator's first state
//!   write): it is excluded from every figure and reported on its own.
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

mod report;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use serde::Serialize;
use sqs_barrier::core::coordinator::Event;
use sqs_barrier::{Barrier, ClientOptions, CoordinatorOptions, Sqs, admin};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use report::report;

use crate::cli::{BenchArgs, BenchWorkerArgs};
use crate::exit;

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

/// A benchmark failure: an exit code and what to tell the user.
#[derive(Debug)]
struct Failure {
    code: u8,
    msg: String,
}

impl Failure {
    fn new(code: u8, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }
    fn infra(msg: impl Into<String>) -> Self {
        Self::new(exit::INFRA, msg)
    }
}

impl From<sqs_barrier::Error> for Failure {
    fn from(e: sqs_barrier::Error) -> Self {
        Self::new(exit::of(&e), e.to_string())
    }
}

fn sdk<E: std::error::Error>(op: &str, e: E) -> String {
    format!("{op}: {}", DisplayErrorContext(&e))
}

/// Wall clock in microseconds since the Unix epoch: the one clock all
/// processes of a run share (they run on one machine).
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

fn seconds(s: f64, what: &str) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::new(
                exit::USAGE,
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

// ---------------------------------------------------------------------------
// Participants

/// The queues of the handout's protocol. Two of each, used by episode
/// parity, so that a participant released early cannot take a release
/// message left for a slower one (see `docs/BENCHMARKS.md`).
#[derive(Debug)]
struct BaselineQueues {
    checkin: [String; 2],
    release: [String; 2],
}

impl BaselineQueues {
    fn names(prefix: &str) -> [String; 4] {
        [
            format!("{prefix}-BarrierQueue-0"),
            format!("{prefix}-BarrierQueue-1"),
            format!("{prefix}-ReleaseQueue-0"),
            format!("{prefix}-ReleaseQueue-1"),
        ]
    }

    async fn create(sqs: &Sqs, prefix: &str) -> Result<Self, Failure> {
        let mut urls = Vec::new();
        for name in Self::names(prefix) {
            let out = sqs
                .client()
                .create_queue()
                .queue_name(&name)
                .send()
                .await
                .map_err(|e| Failure::infra(sdk("CreateQueue", e)))?;
            urls.push(out.queue_url.unwrap_or_default());
        }
        Ok(Self::from_urls(urls))
    }

    async fn open(sqs: &Sqs, prefix: &str) -> Result<Self, Failure> {
        let mut urls = Vec::new();
        for name in Self::names(prefix) {
            let out = sqs
                .client()
                .get_queue_url()
                .queue_name(&name)
                .send()
                .await
                .map_err(|e| Failure::infra(sdk("GetQueueUrl", e)))?;
            urls.push(out.queue_url.unwrap_or_default());
        }
        Ok(Self::from_urls(urls))
    }

    fn from_urls(u: Vec<String>) -> Self {
        Self {
            checkin: [u[0].clone(), u[1].clone()],
            release: [u[2].clone(), u[3].clone()],
        }
    }

    async fn delete(&self, sqs: &Sqs) {
        for url in self.checkin.iter().chain(&self.release) {
            let _ = sqs.client().delete_queue().queue_url(url).send().await;
        }
    }
}

enum Member {
    Barrier(Barrier),
    Baseline {
        sqs: Sqs,
        queues: Arc<BaselineQueues>,
        id: String,
    },
}

/// One episode of one participant: (instant before the check-in, instant
/// released), in microseconds.
async fn episode(m: &Member, k: u64, timeout: Duration) -> Result<(u64, u64), String> {
    match m {
        Member::Barrier(b) => {
            let before = now_us();
            let arrival = b
                .arrive(Some(timeout))
                .await
                .map_err(|e| format!("episode {k}: participant {}: {e}", b.member()))?;
            arrival
                .await
                .map_err(|e| format!("episode {k}: participant {}: {e}", b.member()))?;
            Ok((before, now_us()))
        }
        Member::Baseline { sqs, queues, id } => {
            let q = (k % 2) as usize;
            let started = Instant::now();
            let before = now_us();
            // Step 3 of the handout: the check-in.
            sqs.client()
                .send_message()
                .queue_url(&queues.checkin[q])
                .message_body(format!("Process {id} completed phase {k}"))
                .send()
                .await
                .map_err(|e| format!("episode {k}: participant {id}: {}", sdk("SendMessage", e)))?;
            // Step 5: poll the release queue, short polling, one message,
            // one second between polls.
            loop {
                let out = sqs
                    .client()
                    .receive_message()
                    .queue_url(&queues.release[q])
                    .max_number_of_messages(1)
                    .wait_time_seconds(0)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "episode {k}: participant {id}: {}",
                            sdk("ReceiveMessage", e)
                        )
                    })?;
                if let Some(m) = out.messages.unwrap_or_default().into_iter().next() {
                    let released = now_us();
                    // Not in the handout: without it the message comes back
                    // after the visibility timeout and releases someone in a
                    // later episode.
                    if let Some(r) = m.receipt_handle {
                        sqs.client()
                            .delete_message()
                            .queue_url(&queues.release[q])
                            .receipt_handle(r)
                            .send()
                            .await
                            .map_err(|e| {
                                format!(
                                    "episode {k}: participant {id}: {}",
                                    sdk("DeleteMessage", e)
                                )
                            })?;
                    }
                    return Ok((before, released));
                }
                if started.elapsed() > timeout {
                    return Err(format!(
                        "episode {k}: participant {id} was not released within {:.0} s",
                        timeout.as_secs_f64()
                    ));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// What a group of participants reports.
#[derive(Debug)]
enum Msg {
    /// Every participant of the group has finished episode `k`: the first
    /// and the last check-in, and the last release.
    Episode {
        k: u64,
        first: u64,
        before: u64,
        released: u64,
    },
    /// The group's requests during the measured episodes.
    Requests(Counts),
    Failed(String),
}

fn diff(end: &Counts, start: &Counts) -> Counts {
    end.iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*start.get(k).unwrap_or(&0))))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Runs `members` (all on `sqs`) through `episodes` episodes and reports on
/// `tx`. After the warm-up episode the group pauses until all its members
/// are released, so that its counter is read between episodes.
async fn run_group(
    sqs: Sqs,
    members: Vec<Member>,
    episodes: u64,
    timeout: Duration,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let n = members.len();
    let pause = Arc::new(tokio::sync::Barrier::new(n));
    let start = Arc::new(Mutex::new(Counts::new()));
    let agg = Arc::new(Mutex::new(BTreeMap::<u64, (usize, u64, u64, u64)>::new()));
    let mut tasks = JoinSet::new();
    for m in members {
        let (pause, start, agg, tx, sqs) = (
            pause.clone(),
            start.clone(),
            agg.clone(),
            tx.clone(),
            sqs.clone(),
        );
        tasks.spawn(async move {
            for k in 0..episodes {
                let (b, r) = episode(&m, k, timeout).await?;
                let done = {
                    let mut a = agg.lock().expect("lock");
                    let e = a.entry(k).or_insert((0, u64::MAX, 0, 0));
                    e.0 += 1;
                    e.1 = e.1.min(b);
                    e.2 = e.2.max(b);
                    e.3 = e.3.max(r);
                    if e.0 == n { a.remove(&k) } else { None }
                };
                if let Some((_, first, before, released)) = done {
                    let _ = tx.send(Msg::Episode {
                        k,
                        first,
                        before,
                        released,
                    });
                }
                if k == 0 {
                    // Let the coordinator finish the warm-up's deferred
                    // work (state write, deletes) before counting starts.
                    if pause.wait().await.is_leader() {
                        tokio::time::sleep(SETTLE).await;
                        *start.lock().expect("lock") = sqs.requests().snapshot();
                    }
                    pause.wait().await;
                }
            }
            Ok::<(), String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        let failed = match r {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => format!("a participant task failed: {e}"),
        };
        let _ = tx.send(Msg::Failed(failed));
        tasks.abort_all();
        return;
    }
    let start = start.lock().expect("lock").clone();
    let _ = tx.send(Msg::Requests(diff(&sqs.requests().snapshot(), &start)));
}

/// Connects members `first..first + count` (many at once: a large N would
/// otherwise take long to start).
async fn connect_members(
    sqs: &Sqs,
    name: &str,
    first: usize,
    count: usize,
    baseline: Option<Arc<BaselineQueues>>,
) -> Result<Vec<Member>, Failure> {
    if let Some(queues) = baseline {
        return Ok((first..first + count)
            .map(|i| Member::Baseline {
                sqs: sqs.clone(),
                queues: queues.clone(),
                id: i.to_string(),
            })
            .collect());
    }
    let mut out: Vec<Option<Member>> = (0..count).map(|_| None).collect();
    let mut tasks = JoinSet::new();
    let mut next = 0;
    while next < count || !tasks.is_empty() {
        while next < count && tasks.len() < 32 {
            let (sqs, name, i) = (sqs.clone(), name.to_owned(), next);
            tasks.spawn(async move {
                let b = Barrier::connect(&sqs, &name, &(first + i).to_string()).await;
                (i, b)
            });
            next += 1;
        }
        if let Some(r) = tasks.join_next().await {
            let (i, b) = r.map_err(|e| Failure::new(exit::INTERNAL, e.to_string()))?;
            out[i] = Some(Member::Barrier(b?));
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// A group of participants in its own process (`bench --processes`).
/// Prints `EP k first before released`, then `REQ {counts}`; `FAIL why` on error.
pub async fn worker(a: BenchWorkerArgs, client: &ClientOptions) -> u8 {
    let result = async {
        let timeout = seconds(a.episode_timeout, "--episode-timeout")?;
        let sqs = Sqs::connect(client).await?;
        let queues = if a.baseline {
            Some(Arc::new(BaselineQueues::open(&sqs, &a.barrier).await?))
        } else {
            None
        };
        let members = connect_members(&sqs, &a.barrier, a.first, a.count, queues).await?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(run_group(sqs, members, a.episodes, timeout, tx));
        while let Some(m) = rx.recv().await {
            match m {
                Msg::Episode {
                    k,
                    first,
                    before,
                    released,
                } => println!("EP {k} {first} {before} {released}"),
                Msg::Requests(c) => {
                    println!("REQ {}", serde_json::to_string(&c).expect("counts"));
                    return Ok(());
                }
                Msg::Failed(e) => return Err(Failure::new(exit::TIMEOUT, e)),
            }
        }
        Err(Failure::new(exit::INTERNAL, "the participants stopped"))
    }
    .await;
    match result {
        Ok(()) => exit::OK,
        Err(f) => {
            println!("FAIL {}", f.msg);
            f.code
        }
    }
}

fn parse_line(l: &str) -> Option<Msg> {
    if let Some(rest) = l.strip_prefix("EP ") {
        let v: Vec<u64> = rest
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        return match v[..] {
            [k, first, before, released] => Some(Msg::Episode {
                k,
                first,
                before,
                released,
            }),
            _ => None,
        };
    }
    if let Some(rest) = l.strip_prefix("REQ ") {
        return serde_json::from_str(rest).ok().map(Msg::Requests);
    }
    l.strip_prefix("FAIL ").map(|e| Msg::Failed(e.to_owned()))
}

// ---------------------------------------------------------------------------
// The coordinator (or the handout's monitor)

/// The handout's monitor: poll the check-in count every second; at N, send
/// one release message per participant, then delete the check-ins.
async fn monitor(
    sqs: Sqs,
    queues: Arc<BaselineQueues>,
    n: usize,
    episodes: u64,
    timeout: Duration,
    decided: Arc<Mutex<BTreeMap<u64, u64>>>,
) -> Result<(), String> {
    for k in 0..episodes {
        let q = (k % 2) as usize;
        let started = Instant::now();
        loop {
            let out = sqs
                .client()
                .get_queue_attributes()
                .queue_url(&queues.checkin[q])
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .send()
                .await
                .map_err(|e| sdk("GetQueueAttributes", e))?;
            let count: usize = out
                .attributes
                .as_ref()
                .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if count >= n {
                break;
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "episode {k}: the monitor counted {count} of {n} check-ins for {:.0} s",
                    timeout.as_secs_f64()
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        for _ in 0..n {
            sqs.client()
                .send_message()
                .queue_url(&queues.release[q])
                .message_body(format!("release phase {k}"))
                .send()
                .await
                .map_err(|e| sdk("SendMessage", e))?;
        }
        decided.lock().expect("lock").insert(k, now_us());
        // Clean-up: PurgeQueue works once a minute; receive and delete the N
        // check-ins instead.
        let mut deleted = 0;
        while deleted < n {
            if started.elapsed() > timeout {
                return Err(format!(
                    "episode {k}: the monitor deleted only {deleted} of {n} check-ins"
                ));
            }
            let out = sqs
                .client()
                .receive_message()
                .queue_url(&queues.checkin[q])
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| sdk("ReceiveMessage", e))?;
            let entries: Vec<_> = out
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.receipt_handle)
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                        .expect("id and handle set")
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            let out = sqs
                .client()
                .delete_message_batch()
                .queue_url(&queues.checkin[q])
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk("DeleteMessageBatch", e))?;
            deleted += out.successful.len();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The endpoint's hand-off

async fn handoff(target: &Target, name: &str, samples: usize) -> Result<Vec<f64>, Failure> {
    let sender = target.sqs().await?;
    let receiver = target.sqs().await?;
    let url = sender
        .client()
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| Failure::infra(sdk("CreateQueue", e)))?
        .queue_url
        .unwrap_or_default();
    let mut out = Vec::with_capacity(samples);
    let mut empty = 0;
    let result = async {
        for i in 0..samples {
            let (c, u) = (receiver.client().clone(), url.clone());
            let recv = tokio::spawn(async move {
                let r = c
                    .receive_message()
                    .queue_url(u)
                    .max_number_of_messages(1)
                    .visibility_timeout(43_200)
                    .wait_time_seconds(20)
                    .send()
                    .await;
                (Instant::now(), r)
            });
            // Let the long poll reach the endpoint and park.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let t0 = Instant::now();
            sender
                .client()
                .send_message()
                .queue_url(&url)
                .message_body(format!("hand-off {i}"))
                .send()
                .await
                .map_err(|e| Failure::infra(sdk("SendMessage", e)))?;
            let (t1, r) = recv
                .await
                .map_err(|e| Failure::new(exit::INTERNAL, e.to_string()))?;
            let r = r.map_err(|e| Failure::infra(sdk("ReceiveMessage", e)))?;
            if r.messages.is_some_and(|m| !m.is_empty()) {
                out.push(t1.saturating_duration_since(t0).as_secs_f64() * 1e3);
                continue;
            }
            // An empty answer although a message was sent (SQS may do
            // this, rarely): the sample is void. Take the message so the
            // next sample starts from an empty queue; give up if it never
            // comes.
            empty += 1;
            let again = receiver
                .client()
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(43_200)
                .wait_time_seconds(5)
                .send()
                .await
                .map_err(|e| Failure::infra(sdk("ReceiveMessage", e)))?;
            if empty > 3 || again.messages.is_none_or(|m| m.is_empty()) {
                return Err(Failure::infra(format!(
                    "hand-off sample {i}: the endpoint does not deliver a message that was sent \
                     ({empty} empty long polls)"
                )));
            }
        }
        Ok::<(), Failure>(())
    }
    .await;
    let _ = sender.client().delete_queue().queue_url(&url).send().await;
    result?;
    if out.is_empty() {
        return Err(Failure::infra("the hand-off measurement received nothing"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// The report

/// Nearest-rank percentile of sorted `v`.
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The JSON report (`--json`, and what `bench-report` reads).
#[derive(Serialize, Debug)]
struct Report {
    mode: &'static str,
    endpoint: String,
    endpoint_url: String,
    parties: usize,
    episodes: u64,
    processes: usize,
    warmup: &'static str,
    warmup_release_ms: f64,
    release_p50_ms: f64,
    release_p99_ms: f64,
    release_max_ms: f64,
    release_mean_ms: f64,
    /// From the last check-in until the coordinator (monitor) had sent the
    /// release: its share of the release latency.
    decision_p50_ms: Option<f64>,
    requests_per_participant_episode: f64,
    participant_requests_per_participant_episode: f64,
    coordinator_requests_per_episode: f64,
    /// Per participant-episode, by operation, coordinator included.
    requests_by_operation: BTreeMap<String, f64>,
    requests_total: u64,
    episodes_per_second: f64,
    handoff_p50_ms: f64,
    handoff_p99_ms: f64,
    handoff_samples: usize,
    ratio_to_handoff: f64,
    duration_s: f64,
}

/// Runs the benchmark; the exit code.
pub async fn run(a: BenchArgs, client: &ClientOptions) -> u8 {
    let n_max = sqs_barrier::core::config::MAX_MEMBERS;
    let usage = |m: String| {
        eprintln!("sqs-barrier bench: {m}");
        exit::USAGE
    };
    if a.parties == 0 || a.parties > n_max {
        return usage(format!(
            "--parties must be between 1 and {n_max}, not {}",
            a.parties
        ));
    }
    if a.episodes == 0 {
        return usage("--episodes must be at least 1".into());
    }
    if let Some(p) = a.processes
        && (p == 0 || p > a.parties)
    {
        return usage(format!(
            "--processes must be between 1 and --parties ({}), not {p}",
            a.parties
        ));
    }
    if a.receivers == Some(0) {
        return usage("--receivers must be at least 1".into());
    }
    if a.handoff_samples == 0 {
        return usage("--handoff-samples must be at least 1".into());
    }
    let timeout = match seconds(a.episode_timeout, "--episode-timeout") {
        Ok(t) => t,
        Err(f) => return usage(f.msg),
    };
    let (server, target) = match &client.endpoint_url {
        Some(u) => (
            None,
            Target {
                url: u.clone(),
                embedded: false,
                client: client.clone(),
            },
        ),
        None => match sqs_barrier_local::Server::bind(([127, 0, 0, 1], 0).into()).await {
            Ok(s) => {
                let url = s.endpoint_url();
                let target = Target {
                    url,
                    embedded: true,
                    client: client.clone(),
                };
                (Some(s), target)
            }
            Err(e) => {
                eprintln!("sqs-barrier bench: cannot start the embedded endpoint: {e}");
                return exit::INFRA;
            }
        },
    };
    let code = match bench(&a, &target, timeout).await {
        Ok(r) => {
            print_report(&r, a.json);
            exit::OK
        }
        Err(f) => {
            eprintln!("sqs-barrier bench: {}", f.msg);
            f.code
        }
    };
    if let Some(s) = server {
        s.shutdown().await;
    }
    code
}

fn print_report(r: &Report, json: bool) {
    println!(
        "sqs-barrier bench ({}): N={} E={} on {} ({}), {} process(es); warm-up episode {:.2} ms, excluded",
        r.mode, r.parties, r.episodes, r.endpoint, r.endpoint_url, r.processes, r.warmup_release_ms
    );
    println!(
        "  release latency  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  mean {:.2} ms",
        r.release_p50_ms, r.release_p99_ms, r.release_max_ms, r.release_mean_ms
    );
    if let Some(d) = r.decision_p50_ms {
        println!("  of which last check-in -> release sent: p50 {d:.2} ms");
    }
    println!(
        "  endpoint hand-off p50 {:.2} ms  p99 {:.2} ms ({} samples); release p50 / hand-off p50 = {:.2}",
        r.handoff_p50_ms, r.handoff_p99_ms, r.handoff_samples, r.ratio_to_handoff
    );
    println!(
        "  SQS requests per participant-episode {:.3} (participants {:.3}, coordinator {:.1} per episode)",
        r.requests_per_participant_episode,
        r.participant_requests_per_participant_episode,
        r.coordinator_requests_per_episode
    );
    for (op, v) in &r.requests_by_operation {
        println!("    {op:<28} {v:.3}");
    }
    println!(
        "  {:.1} episodes per second; {:.1} s in all",
        r.episodes_per_second, r.duration_s
    );
    if json {
        println!("{}", serde_json::to_string(r).expect("report serialises"));
    }
}

fn child(exe: &std::path::Path, target: &Target) -> Command {
    let mut c = Command::new(exe);
    c.arg("--endpoint-url").arg(&target.url);
    if let Some(r) = &target.client.region {
        c.arg("--region").arg(r);
    }
    if let Some(p) = &target.client.profile {
        c.arg("--profile").arg(p);
    }
    if target.embedded {
        c.env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE");
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    c
}

async fn bench(a: &BenchArgs, target: &Target, timeout: Duration) -> Result<Report, Failure> {
    let n = a.parties;
    let total = a.episodes + 1;
    let name = format!("bench-{:08x}", rand::random::<u32>());
    let admin_sqs = target.sqs().await?;
    let began = Instant::now();

    let hand = sorted(handoff(target, &format!("{name}-handoff"), a.handoff_samples).await?);

    // The deciding side, with a client (and counter) of its own.
    let coord_sqs = target.sqs().await?;
    let decided = Arc::new(Mutex::new(BTreeMap::<u64, u64>::new()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let baseline = if a.baseline {
        Some(Arc::new(BaselineQueues::create(&admin_sqs, &name).await?))
    } else {
        admin::setup(&admin_sqs, &name, &admin::SetupOptions::new(n)).await?;
        None
    };
    let mut decider: tokio::task::JoinHandle<Result<(), String>> = match &baseline {
        Some(q) => tokio::spawn(monitor(
            coord_sqs.clone(),
            q.clone(),
            n,
            total,
            timeout,
            decided.clone(),
        )),
        None => {
            let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
            let d = decided.clone();
            tokio::spawn(async move {
                while let Some(e) = ev_rx.recv().await {
                    if let Event::Released { generation } = e {
                        d.lock().expect("lock").insert(generation, now_us());
                    }
                }
            });
            let (sqs, name) = (coord_sqs.clone(), name.clone());
            let mut opts = CoordinatorOptions::default();
            opts.receivers = a.receivers;
            tokio::spawn(async move {
                let stop = async {
                    let _ = stop_rx.await;
                };
                sqs_barrier::run_coordinator(&sqs, &name, opts, Some(ev_tx), stop)
                    .await
                    .map_err(|e| format!("the coordinator stopped: {e}"))
            })
        }
    };

    let result = drive(
        a,
        target,
        &name,
        baseline.clone(),
        &coord_sqs,
        &mut decider,
        timeout,
    )
    .await;

    // Stop and clean up whatever happened.
    let _ = stop_tx.send(());
    if !decider.is_finished()
        && tokio::time::timeout(Duration::from_secs(5), &mut decider)
            .await
            .is_err()
    {
        decider.abort();
    }
    match &baseline {
        Some(q) => q.delete(&admin_sqs).await,
        None => {
            if let Err(e) = admin::teardown(&admin_sqs, &name).await {
                eprintln!("sqs-barrier bench: teardown of {name} failed: {e}");
            }
        }
    }
    let (eps, part, coord) = result?;

    // Figures.
    let lat: Vec<f64> = (1..total as usize)
        .map(|k| eps[k].2.saturating_sub(eps[k].1) as f64 / 1e3)
        .collect();
    let decided = decided.lock().expect("lock").clone();
    let dec: Vec<f64> = (1..total)
        .filter_map(|k| {
            decided
                .get(&k)
                .map(|t| t.saturating_sub(eps[k as usize].1) as f64 / 1e3)
        })
        .collect();
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    let lat = sorted(lat);
    let pe = (n as u64 * a.episodes) as f64;
    let mut all = part.clone();
    for (k, v) in &coord {
        *all.entry(k.clone()).or_default() += v;
    }
    let total_req: u64 = all.values().sum();
    let part_req: u64 = part.values().sum();
    let coord_req: u64 = coord.values().sum();
    // From the first check-in of episode 1 to the last release.
    let span = eps[a.episodes as usize].2.saturating_sub(eps[1].0) as f64 / 1e6;
    let p50 = pct(&lat, 0.5);
    let h50 = pct(&hand, 0.5);
    Ok(Report {
        mode: if a.baseline { "baseline" } else { "barrier" },
        endpoint: if target.embedded {
            "embedded".into()
        } else {
            target.url.clone()
        },
        endpoint_url: target.url.clone(),
        parties: n,
        episodes: a.episodes,
        processes: a.processes.unwrap_or(1),
        warmup: "excluded",
        warmup_release_ms: r3(eps[0].2.saturating_sub(eps[0].1) as f64 / 1e3),
        release_p50_ms: r3(p50),
        release_p99_ms: r3(pct(&lat, 0.99)),
        release_max_ms: r3(pct(&lat, 1.0)),
        release_mean_ms: r3(mean),
        decision_p50_ms: (!dec.is_empty()).then(|| r3(pct(&sorted(dec), 0.5))),
        requests_per_participant_episode: r3(total_req as f64 / pe),
        participant_requests_per_participant_episode: r3(part_req as f64 / pe),
        coordinator_requests_per_episode: r3(coord_req as f64 / a.episodes as f64),
        requests_by_operation: all
            .iter()
            .map(|(k, v)| (k.clone(), r3(*v as f64 / pe)))
            .collect(),
        requests_total: total_req,
        episodes_per_second: r3(if span > 0.0 {
            a.episodes as f64 / span
        } else {
            0.0
        }),
        handoff_p50_ms: r3(h50),
        handoff_p99_ms: r3(pct(&hand, 0.99)),
        handoff_samples: hand.len(),
        ratio_to_handoff: r3(if h50 > 0.0 { p50 / h50 } else { 0.0 }),
        duration_s: r3(began.elapsed().as_secs_f64()),
    })
}

/// Per episode: the first and the last check-in, the last release (µs).
type Episodes = Vec<(u64, u64, u64)>;

/// Starts the participants (tasks or processes) and collects their
/// reports: per episode (last check-in, last release), and the requests of
/// the participants and of the coordinator during the measured episodes.
async fn drive(
    a: &BenchArgs,
    target: &Target,
    name: &str,
    baseline: Option<Arc<BaselineQueues>>,
    coord_sqs: &Sqs,
    decider: &mut tokio::task::JoinHandle<Result<(), String>>,
    timeout: Duration,
) -> Result<(Episodes, Counts, Counts), Failure> {
    let n = a.parties;
    let total = a.episodes + 1;
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let groups = match a.processes {
        None => {
            let sqs = target.sqs().await?;
            let members = connect_members(&sqs, name, 0, n, baseline).await?;
            tokio::spawn(run_group(sqs, members, total, timeout, tx));
            1
        }
        Some(p) => {
            let exe = std::env::current_exe()
                .map_err(|e| Failure::new(exit::INTERNAL, format!("my own executable: {e}")))?;
            let mut first = 0;
            for g in 0..p {
                let count = n / p + usize::from(g < n % p);
                let mut c = child(&exe, target);
                c.args(["bench-worker", "--barrier", name])
                    .args(["--first", &first.to_string()])
                    .args(["--count", &count.to_string()])
                    .args(["--episodes", &total.to_string()])
                    .args(["--episode-timeout", &a.episode_timeout.to_string()]);
                if a.baseline {
                    c.arg("--baseline");
                }
                first += count;
                let mut ch = c.spawn().map_err(|e| {
                    Failure::new(exit::INTERNAL, format!("cannot start worker {g}: {e}"))
                })?;
                let out = ch.stdout.take().expect("piped");
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut lines = BufReader::new(out).lines();
                    let mut ended = false;
                    while let Ok(Some(l)) = lines.next_line().await {
                        if let Some(m) = parse_line(&l) {
                            ended |= !matches!(m, Msg::Episode { .. });
                            let _ = tx.send(m);
                        }
                    }
                    let status = ch.wait().await;
                    if !ended {
                        let _ = tx.send(Msg::Failed(format!(
                            "worker process {g} ended without a report ({status:?})"
                        )));
                    }
                });
            }
            drop(tx);
            p
        }
    };

    let mut eps: Vec<(usize, u64, u64, u64)> = vec![(0, u64::MAX, 0, 0); total as usize];
    let mut complete = 0u64;
    let mut reported = 0usize;
    let mut part = Counts::new();
    let mut coord_start = None;
    // The next episode must complete within this (a generous margin over
    // the participants' own timeout, for a hung process).
    let mut deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(15);
    let step = (total / 10).max(1);
    // The monitor of the baseline ends by itself after the last episode.
    let mut decider_done = false;
    while reported < groups {
        let msg = tokio::select! {
            m = rx.recv() => m,
            r = &mut *decider, if !decider_done => {
                decider_done = true;
                let why = match r {
                    Ok(Ok(())) if a.baseline => continue,
                    Ok(Ok(())) => "the coordinator stopped".to_owned(),
                    Ok(Err(e)) => e,
                    Err(e) => format!("the coordinator task failed: {e}"),
                };
                return Err(Failure::infra(format!("episode {complete}: {why}")));
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Failure::new(exit::TIMEOUT, format!(
                    "episode {complete} did not complete within {:.0} s",
                    timeout.as_secs_f64()
                )));
            }
        };
        match msg {
            None => {
                return Err(Failure::new(
                    exit::INTERNAL,
                    format!("episode {complete}: the participants stopped reporting"),
                ));
            }
            Some(Msg::Failed(e)) => return Err(Failure::new(exit::TIMEOUT, e)),
            Some(Msg::Requests(c)) => {
                for (k, v) in c {
                    *part.entry(k).or_default() += v;
                }
                reported += 1;
            }
            Some(Msg::Episode {
                k,
                first,
                before,
                released,
            }) => {
                let Some(e) = eps.get_mut(k as usize) else {
                    continue;
                };
                e.0 += 1;
                e.1 = e.1.min(first);
                e.2 = e.2.max(before);
                e.3 = e.3.max(released);
                while complete < total && eps[complete as usize].0 == groups {
                    if complete == 0 {
                        let c = coord_sqs.clone();
                        coord_start = Some(tokio::spawn(async move {
                            tokio::time::sleep(COORD_START).await;
                            c.requests().snapshot()
                        }));
                    }
                    complete += 1;
                    deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(15);
                    if total >= 20 && complete.is_multiple_of(step) {
                        eprintln!("sqs-barrier bench: {complete}/{total} episodes");
                    }
                }
            }
        }
    }
    if complete < total {
        return Err(Failure::new(
            exit::INTERNAL,
            format!("episode {complete}: the participants finished early"),
        ));
    }
    // The coordinator's deferred work for the last episodes.
    tokio::time::sleep(SETTLE).await;
    let start = match coord_start {
        Some(h) => h.await.unwrap_or_default(),
        None => Counts::new(),
    };
    let coord = diff(&coord_sqs.requests().snapshot(), &start);
    Ok((
        eps.into_iter().map(|(_, f, b, r)| (f, b, r)).collect(),
        part,
        coord,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(pct(&v, 0.5), 50.0);
        assert_eq!(pct(&v, 0.99), 99.0);
        assert_eq!(pct(&v, 1.0), 100.0);
        assert_eq!(pct(&[7.0], 0.5), 7.0);
    }

    #[test]
    fn worker_lines_round_trip() {
        assert!(matches!(
            parse_line("EP 3 5 10 20"),
            Some(Msg::Episode {
                k: 3,
                first: 5,
                before: 10,
                released: 20
            })
        ));
        assert!(
            matches!(parse_line("REQ {\"SendMessage\":4}"), Some(Msg::Requests(c)) if c["SendMessage"] == 4)
        );
        assert!(
            matches!(parse_line("FAIL episode 2: x"), Some(Msg::Failed(e)) if e == "episode 2: x")
        );
        assert!(parse_line("EP 1 2 3").is_none());
        assert!(parse_line("noise").is_none());
    }
}
