//! The coordinator's (or the handout's monitor's) requests, and failed
//! attempts, over the measured window, and, for the barrier's coordinator,
//! its requests split by whether a
//! generation was open: from the coordinator counting the first check-in of
//! a generation (its `Event::Arrived`) to the generation's release (its
//! `Event::Released` or `Event::Broken`), or on to the next generation's
//! release if that had an arrival first. A request counts where its attempt
//! started (the counter counts before sending), so a long poll that returns
//! the check-in opening a generation counts as idle.
//!
//! The open time is split again: *quiet* from [`SETTLE`] after the latest
//! arrival on, until the next arrival (or a rested coordinator's
//! `Event::Waking` for it) or the release. What the coordinator does then
//! is the cost of members waiting (long polls, heartbeats); what it does in
//! the first seconds after an arrival (taking the lease again after a rest,
//! the write that publishes it, the delete, the busy polls) is the cost of
//! that arrival.

use std::time::{Duration, Instant};

use serde::Serialize;
use sqs_barrier::Sqs;
use sqs_barrier::core::coordinator::Event;
use sqs_barrier::lambda::emulator::{Counters, Counts as LambdaCounts};

use super::Counts;

/// How long after an arrival the coordinator's requests count as that
/// arrival's work rather than as waiting: its state write comes within
/// 0.5 s and the delete right after; a burst's busy polls last 5 s after
/// the last batch of more than one check-in, so a burst keeps settling.
pub(super) const SETTLE: Duration = Duration::from_secs(3);
use super::stats::{add, diff};

/// Time and requests of one state.
#[derive(Clone, Debug, Default)]
pub(super) struct Span {
    pub(super) time: Duration,
    pub(super) requests: Counts,
}

impl Span {
    pub(super) fn minutes(&self) -> f64 {
        self.time.as_secs_f64() / 60.0
    }
}

/// Reads the deciding side's counter at the window's ends and at each
/// change between open and idle. Shared between the task that follows the
/// coordinator's events and the run, behind a lock, so that the readings are
/// in order.
#[derive(Debug)]
pub(super) struct Window {
    sqs: Sqs,
    /// Inside the measured window.
    counting: bool,
    /// A generation is open: one has had an arrival and is not released.
    open: bool,
    /// The latest generation with an arrival, and the latest released.
    arrived: Option<u64>,
    released: Option<u64>,
    /// Until when the latest arrival's work lasts (see [`SETTLE`]).
    settling: Option<Instant>,
    /// The last reading, and whether the time since was quiet.
    since: Instant,
    quiet: bool,
    last: Counts,
    pub(super) whole: Span,
    pub(super) opened: Span,
    /// The part of `opened` from `SETTLE` after an arrival on.
    pub(super) quiet_open: Span,
    pub(super) idle: Span,
    /// The failed attempts counted at the window's start, and those of the
    /// whole window once it has ended.
    errors_start: Counts,
    pub(super) errors: Counts,
    /// With the Lambda coordinator: its counters, and their readings at
    /// the window's start and end.
    lambda: Option<LambdaCounters>,
}

#[derive(Debug)]
struct LambdaCounters {
    counters: Counters,
    start: LambdaCounts,
    end: LambdaCounts,
}

/// The Lambda coordinator over the measured window.
#[derive(Serialize, Debug)]
pub(super) struct LambdaFigures {
    /// Invocations (batches and ticks) per episode.
    pub(super) invocations_per_episode: f64,
    /// Batch invocations, scheduled ones (ticks), and records handed to
    /// the function (redeliveries included).
    pub(super) batch_invocations: u64,
    pub(super) ticks: u64,
    pub(super) records: u64,
    /// Records the function handed back (`batchItemFailures`).
    pub(super) records_handed_back: u64,
    /// Invocations that failed (an error, a timeout): their batch came back.
    pub(super) invocations_failed: u64,
    /// Races lost to a concurrent invocation: each cost a round more.
    pub(super) races_lost: u64,
    pub(super) races_lost_per_episode: f64,
    /// Of `races_lost`, those found at the re-read after a write (the
    /// write erased); the rest were found before writing.
    pub(super) races_erased: u64,
    /// The mean time of a batch invocation (what Lambda bills), ms.
    pub(super) invocation_mean_ms: f64,
}

impl Window {
    pub(super) fn new(sqs: Sqs) -> Self {
        Self {
            last: sqs.requests().snapshot(),
            sqs,
            counting: false,
            open: false,
            arrived: None,
            released: None,
            settling: None,
            since: Instant::now(),
            quiet: false,
            whole: Span::default(),
            opened: Span::default(),
            quiet_open: Span::default(),
            idle: Span::default(),
            errors_start: Counts::new(),
            errors: Counts::new(),
            lambda: None,
        }
    }

    /// Reads the Lambda coordinator's counters with the request counter.
    pub(super) fn follow_lambda(&mut self, counters: Counters) {
        self.lambda = Some(LambdaCounters {
            counters,
            start: LambdaCounts::default(),
            end: LambdaCounts::default(),
        });
    }

    /// The Lambda coordinator's figures over the window, for `episodes`.
    pub(super) fn lambda_figures(&self, episodes: u64) -> Option<LambdaFigures> {
        let l = self.lambda.as_ref()?;
        let d = l.end.since(&l.start);
        let per = |v: u64| super::stats::r3(v as f64 / episodes.max(1) as f64);
        Some(LambdaFigures {
            invocations_per_episode: per(d.invocations + d.ticks),
            batch_invocations: d.invocations,
            ticks: d.ticks,
            records: d.records,
            records_handed_back: d.handed_back,
            invocations_failed: d.failed,
            races_lost: d.races,
            races_lost_per_episode: per(d.races),
            races_erased: d.erased,
            invocation_mean_ms: super::stats::r3(
                d.busy_us as f64 / 1e3 / d.invocations.max(1) as f64,
            ),
        })
    }

    /// Reads the counter: what happened since the last reading goes to the
    /// state it happened in; `open` is the state from now on.
    fn mark(&mut self, open: bool) {
        let now = Instant::now();
        let snap = self.sqs.requests().snapshot();
        if self.counting {
            let (t, c) = (now - self.since, diff(&snap, &self.last));
            let mut spans = vec![&mut self.whole];
            if self.open {
                spans.push(&mut self.opened);
                if self.quiet {
                    spans.push(&mut self.quiet_open);
                }
            } else {
                spans.push(&mut self.idle);
            }
            for s in spans {
                s.time += t;
                add(&mut s.requests, &c);
            }
        }
        self.open = open;
        self.quiet = open && self.settling.is_none_or(|t| t <= now);
        self.since = now;
        self.last = snap;
    }

    /// Called often (every 100 ms): ends an arrival's settling time.
    pub(super) fn tick(&mut self) {
        if self.open && !self.quiet && self.settling.is_none_or(|t| t <= Instant::now()) {
            self.mark(true);
        }
    }

    /// Starts the measured window.
    pub(super) fn start(&mut self) {
        self.mark(self.open);
        self.counting = true;
        self.errors_start = self.sqs.requests().errors();
        if let Some(l) = &mut self.lambda {
            l.start = l.counters.read();
        }
    }

    /// Ends the measured window.
    pub(super) fn end(&mut self) {
        self.mark(self.open);
        self.counting = false;
        self.errors = diff(&self.sqs.requests().errors(), &self.errors_start);
        if let Some(l) = &mut self.lambda {
            l.end = l.counters.read();
        }
    }

    /// Follows a coordinator's event.
    pub(super) fn event(&mut self, e: &Event) {
        match e {
            Event::Arrived { generation, .. } => {
                self.arrived = self.arrived.max(Some(*generation));
                // What was quiet ends here; this arrival's work begins.
                self.mark(self.open);
                self.settling = Some(Instant::now() + SETTLE);
                self.quiet = false;
            }
            Event::Waking => {
                // A coordinator that rested takes the lease again for a
                // check-in it saw (or a decision due): the work of that
                // arrival, not the cost of waiting.
                self.mark(self.open);
                self.settling = Some(Instant::now() + SETTLE);
                self.quiet = false;
                return;
            }
            Event::Released { generation } => self.released = self.released.max(Some(*generation)),
            Event::Broken { .. } => self.released = self.arrived,
            _ => return,
        }
        // A fast member's arrival at the next generation may be seen before
        // the release of this one.
        let open = self.arrived > self.released;
        if open != self.open {
            self.mark(open);
        }
    }
}
