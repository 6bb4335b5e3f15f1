//! The coordinator's (or the handout's monitor's) requests over the
//! measured window, and, for the barrier's coordinator, split by whether a
//! generation was open: from the coordinator counting the first check-in of
//! a generation (its `Event::Arrived`) to the generation's release (its
//! `Event::Released` or `Event::Broken`), or on to the next generation's
//! release if that had an arrival first. A request counts where its attempt
//! started (the counter counts before sending), so a long poll that returns
//! the check-in opening a generation counts as idle.

use std::time::{Duration, Instant};

use sqs_barrier::Sqs;
use sqs_barrier::core::coordinator::Event;

use super::Counts;
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
    /// The last reading.
    since: Instant,
    last: Counts,
    pub(super) whole: Span,
    pub(super) opened: Span,
    pub(super) idle: Span,
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
            since: Instant::now(),
            whole: Span::default(),
            opened: Span::default(),
            idle: Span::default(),
        }
    }

    /// Reads the counter: what happened since the last reading goes to the
    /// state it happened in; `open` is the state from now on.
    fn mark(&mut self, open: bool) {
        let now = Instant::now();
        let snap = self.sqs.requests().snapshot();
        if self.counting {
            let (t, c) = (now - self.since, diff(&snap, &self.last));
            for s in [
                &mut self.whole,
                if self.open {
                    &mut self.opened
                } else {
                    &mut self.idle
                },
            ] {
                s.time += t;
                add(&mut s.requests, &c);
            }
        }
        self.open = open;
        self.since = now;
        self.last = snap;
    }

    /// Starts the measured window.
    pub(super) fn start(&mut self) {
        self.mark(self.open);
        self.counting = true;
    }

    /// Ends the measured window.
    pub(super) fn end(&mut self) {
        self.mark(self.open);
        self.counting = false;
    }

    /// Follows a coordinator's event.
    pub(super) fn event(&mut self, e: &Event) {
        match e {
            Event::Arrived { generation, .. } => self.arrived = self.arrived.max(Some(*generation)),
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
