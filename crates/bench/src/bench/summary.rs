//! The figures of a run: the JSON report and its text form.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Counts;
use super::coordinator::LambdaFigures;
use super::sampler::QueueSeries;
use super::stats::{per, r3, r6};

/// The JSON report (`--json`, and what `bench-report` reads).
#[derive(Serialize, Debug)]
pub(super) struct Report {
    pub(super) mode: &'static str,
    /// Who decided: `process` (a coordinator), `lambda` (the Lambda
    /// handler behind an emulated event source mapping) or `monitor`
    /// (`--baseline`).
    pub(super) coordinator_kind: &'static str,
    /// With `--coordinator lambda`: its invocations over the measured
    /// window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) lambda: Option<LambdaFigures>,
    pub(super) endpoint: String,
    pub(super) endpoint_url: String,
    pub(super) parties: usize,
    pub(super) episodes: u64,
    pub(super) processes: usize,
    pub(super) warmup: &'static str,
    pub(super) warmup_release_ms: f64,
    pub(super) release_p50_ms: f64,
    pub(super) release_p99_ms: f64,
    pub(super) release_max_ms: f64,
    pub(super) release_mean_ms: f64,
    /// From the last check-in until the coordinator (monitor) had sent the
    /// release: its share of the release latency.
    pub(super) decision_p50_ms: Option<f64>,
    pub(super) requests_per_participant_episode: f64,
    pub(super) participant_requests_per_participant_episode: f64,
    pub(super) coordinator_requests_per_episode: f64,
    /// Per participant-episode, by operation, coordinator included.
    pub(super) requests_by_operation: BTreeMap<String, f64>,
    pub(super) requests_total: u64,
    pub(super) episodes_per_second: f64,
    /// `--duration`: the run's time limit in seconds (`episodes` is then
    /// what was run in it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) duration_limit_s: Option<f64>,
    /// `--sample-queues`: the barrier's queue counts over the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) queue_series: Option<QueueSeries>,
    pub(super) handoff_p50_ms: f64,
    pub(super) handoff_p99_ms: f64,
    pub(super) handoff_samples: usize,
    pub(super) ratio_to_handoff: f64,
    /// The fan-out floor's receivers: N, parked in long polls when the one
    /// message is sent.
    pub(super) fanout_receivers: usize,
    /// The fan-out floor: from just before the one message is sent until
    /// the last of the N receivers has it; p50 and max over the samples.
    pub(super) fanout_floor_p50_ms: f64,
    pub(super) fanout_floor_max_ms: f64,
    pub(super) fanout_floor_samples: usize,
    /// The wait before each send, once every receiver's long poll had
    /// started.
    pub(super) fanout_settle_ms: f64,
    /// Receives of the floor that returned without the message (and were
    /// repeated).
    pub(super) fanout_empty_receives: u64,
    /// Release p50 / fan-out floor p50.
    pub(super) ratio_to_fanout_floor: f64,
    /// The gather floor's consumer's long polls (R): the coordinator's in
    /// a burst of N check-ins.
    pub(super) gather_receivers: usize,
    /// The gather floor: from the start of the last of N sends at once
    /// until the consumer has all N messages; p50 and max over the samples.
    pub(super) gather_floor_p50_ms: f64,
    pub(super) gather_floor_max_ms: f64,
    pub(super) gather_floor_samples: usize,
    /// The wait before each round's sends, once every long poll of the
    /// consumer was out.
    pub(super) gather_settle_ms: f64,
    /// Gather floor p50 + fan-out floor p50: the least a release's two
    /// hand-offs take.
    pub(super) two_hop_floor_p50_ms: f64,
    /// Release p50 / two-hop floor p50.
    pub(super) ratio_to_two_hop_floor: f64,
    /// Tagging actions (`TagQueue`, `UntagQueue`, `ListQueueTags` attempts)
    /// of the participants and the coordinator over the counted window.
    pub(super) tagging_actions: u64,
    /// `tagging_actions` over N x E.
    pub(super) tagging_actions_per_participant_episode: f64,
    /// `tagging_actions` over `barrier_minutes`.
    pub(super) tagging_actions_per_barrier_minute: f64,
    /// The tagging attempts among them that failed (most likely throttled).
    pub(super) failed_tagging_attempts: u64,
    /// The minutes of the counted window (the coordinator's measured
    /// window).
    pub(super) barrier_minutes: f64,
    pub(super) duration_s: f64,
    /// The longest work before a measured episode (`--work`), seconds.
    pub(super) work_s: f64,
    /// Bytes of data each participant brought to every episode
    /// (`--data-bytes`).
    pub(super) data_bytes: usize,
    /// The seed of the work times (with `--work` only).
    pub(super) seed: Option<u64>,
    /// The check-ins' requests (the `SendMessage` attempts made until the
    /// check-in call returned), per participant-episode.
    pub(super) checkin_requests_per_participant_episode: f64,
    /// The participants' other requests from their check-in until their
    /// wait returned, per participant-episode.
    pub(super) waiting_requests_per_participant_episode: f64,
    /// The mean wait of a participant-episode: from its check-in sent until
    /// its wait returned.
    pub(super) waiting_mean_s: f64,
    /// The participants' requests while waiting, over the participant-
    /// minutes spent waiting.
    pub(super) waiting: PerMinute,
    /// The coordinator's (monitor's) requests over the measured window.
    pub(super) coordinator: PerMinute,
    /// The coordinator's requests while a generation was open, and while
    /// none was (the barrier's coordinator only).
    pub(super) coordinator_open: Option<PerMinute>,
    /// The part of `coordinator_open` from 3 s after an arrival on: the
    /// coordinator while members wait and nothing comes in.
    pub(super) coordinator_quiet: Option<PerMinute>,
    pub(super) coordinator_idle: Option<PerMinute>,
}

/// Requests over minutes.
#[derive(Serialize, Debug)]
pub(super) struct PerMinute {
    pub(super) minutes: f64,
    pub(super) requests: u64,
    pub(super) requests_per_minute: f64,
    /// Requests per minute, by operation.
    pub(super) by_operation: BTreeMap<String, f64>,
}

impl PerMinute {
    pub(super) fn new(requests: &Counts, minutes: f64) -> Self {
        let total: u64 = requests.values().sum();
        Self {
            minutes: r6(minutes),
            requests: total,
            requests_per_minute: if minutes > 0.0 {
                r3(total as f64 / minutes)
            } else {
                0.0
            },
            by_operation: per(requests, minutes),
        }
    }

    fn line(&self, what: &str) {
        println!(
            "  {what}: {:.1} requests per minute ({} over {:.3} min)",
            self.requests_per_minute, self.requests, self.minutes
        );
        for (op, v) in &self.by_operation {
            println!("    {op:<28} {v:.2}");
        }
    }
}

pub(super) fn print_report(r: &Report, json: bool) {
    println!(
        "sqs-barrier bench ({}, {} coordinator): N={} E={} on {} ({}), {} process(es); warm-up episode {:.2} ms, excluded",
        r.mode,
        r.coordinator_kind,
        r.parties,
        r.episodes,
        r.endpoint,
        r.endpoint_url,
        r.processes,
        r.warmup_release_ms
    );
    println!(
        "  release latency  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  mean {:.2} ms",
        r.release_p50_ms, r.release_p99_ms, r.release_max_ms, r.release_mean_ms
    );
    if r.data_bytes > 0 {
        println!(
            "  gathered data: {} bytes from each participant, every episode; each release handed out {} bytes",
            r.data_bytes,
            r.data_bytes * r.parties
        );
    }
    if let Some(d) = r.decision_p50_ms {
        println!("  of which last check-in -> release sent: p50 {d:.2} ms");
    }
    println!(
        "  endpoint hand-off p50 {:.2} ms  p99 {:.2} ms ({} samples); release p50 / hand-off p50 = {:.2}",
        r.handoff_p50_ms, r.handoff_p99_ms, r.handoff_samples, r.ratio_to_handoff
    );
    println!(
        "  fan-out floor ({} parked receivers, one message) p50 {:.2} ms  max {:.2} ms ({} samples, settle {:.0} ms, {} empty receives); release p50 = {:.2} x floor",
        r.fanout_receivers,
        r.fanout_floor_p50_ms,
        r.fanout_floor_max_ms,
        r.fanout_floor_samples,
        r.fanout_settle_ms,
        r.fanout_empty_receives,
        r.ratio_to_fanout_floor
    );
    println!(
        "  gather floor ({} senders at once, one consumer with {} long polls) p50 {:.2} ms  max {:.2} ms ({} samples, settle {:.0} ms); two-hop floor (gather + fan-out p50) {:.2} ms; release p50 = {:.2} x two-hop floor",
        r.parties,
        r.gather_receivers,
        r.gather_floor_p50_ms,
        r.gather_floor_max_ms,
        r.gather_floor_samples,
        r.gather_settle_ms,
        r.two_hop_floor_p50_ms,
        r.ratio_to_two_hop_floor
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
        "  tagging actions {:.3} per participant-episode, {:.1} per barrier-minute ({} over {:.3} min; {} failed attempts)",
        r.tagging_actions_per_participant_episode,
        r.tagging_actions_per_barrier_minute,
        r.tagging_actions,
        r.barrier_minutes,
        r.failed_tagging_attempts
    );
    println!(
        "  {:.1} episodes per second; {:.1} s in all",
        r.episodes_per_second, r.duration_s
    );
    if r.work_s > 0.0 {
        println!(
            "  work before each measured episode: uniform in [0, {} s], seed {}",
            r.work_s,
            r.seed.unwrap_or_default()
        );
    }
    println!(
        "  per participant-episode: check-in {:.3} requests; waiting {:.3} requests, {:.3} s on average",
        r.checkin_requests_per_participant_episode,
        r.waiting_requests_per_participant_episode,
        r.waiting_mean_s
    );
    r.waiting
        .line("participants while waiting, per participant-minute of waiting");
    r.coordinator.line("coordinator over the measured window");
    if let Some(l) = &r.lambda {
        println!(
            "  lambda: {:.2} invocations per episode ({} batches of {:.1} records, {:.0} ms on average; {} ticks); {} records handed back, {} invocations failed; {} races lost ({:.2} per episode; {} writes erased)",
            l.invocations_per_episode,
            l.batch_invocations,
            l.records as f64 / l.batch_invocations.max(1) as f64,
            l.invocation_mean_ms,
            l.ticks,
            l.records_handed_back,
            l.invocations_failed,
            l.races_lost,
            l.races_lost_per_episode,
            l.races_erased
        );
    }
    if let Some(o) = &r.coordinator_open {
        o.line("coordinator while a generation was open");
    }
    if let Some(q) = &r.coordinator_quiet {
        q.line("coordinator while open, from 3 s after an arrival (members waiting)");
    }
    if let Some(i) = &r.coordinator_idle {
        i.line("coordinator while no generation was open");
    }
    if let Some(q) = &r.queue_series {
        println!(
            "  queues sampled every {} s: {} samples, {} failed reads; most messages seen (visible / in flight):",
            q.interval_s,
            q.samples.len(),
            q.errors
        );
        let (vis, fly) = (q.max_of(|s| &s.visible), q.max_of(|s| &s.in_flight));
        for (i, name) in q.queues.iter().enumerate() {
            println!("    {name:<40} {} / {}", vis[i], fly[i]);
        }
        if let Some(e) = &q.first_error {
            println!("    first failed read: {e}");
        }
    }
    if json {
        println!("{}", serde_json::to_string(r).expect("report serialises"));
    }
}
