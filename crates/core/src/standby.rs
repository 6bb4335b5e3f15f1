//! A coordinator standing by: it watches the active one and takes over when
//! that one is gone.
//!
//! Starting a coordinator never fails because another one runs: the new one
//! stands by, and takes over as soon as the other is gone. So a supervisor
//! (systemd, ECS, Kubernetes) may simply restart a crashed coordinator, and
//! two coordinators on two hosts give high availability.
//!
//! Whether the active coordinator lives is judged on this machine's own
//! clock, never by comparing clocks of different hosts (see
//! [`Liveness`]):
//!
//! * **At start** the standby reads the published state. No state, or one
//!   marked `stopped`: it takes over at once. Otherwise it sends a
//!   [`Message::Probe`] to the check-in queue; a live coordinator answers
//!   with a write (a new heartbeat) at once. No answer within
//!   [`StandbyOptions::probe_timeout`]: it takes over. So a coordinator
//!   restarted after a crash takes over within seconds.
//! * **While standing by** it reads the state every
//!   [`StandbyOptions::poll`] and probes every [`StandbyOptions::probe_every`];
//!   probes keep the active one on its short standby heartbeat (see
//!   [`crate::coordinator::CoordinatorOptions::standby_heartbeat`]). When the
//!   state shows nothing new for its writer's
//!   [`PublishedState::stale_after`], or shows that writer stopped, it takes
//!   over.
//!
//! A takeover that was wrong (the active one was only slow) is safe: the two
//! run at once until one of them finds the other's write at its next write
//! and stands down ([`crate::coordinator::Event::Superseded`]).
//!
//! # Driving it
//!
//! 1. [`Standby::new`]; then drain [`Standby::poll_transmit`]: answer
//!    [`Transmit::ReadState`] with [`Standby::handle_state`] (or
//!    [`Standby::handle_read_failed`]), send [`Transmit::Probe`]'s body to the
//!    check-in queue.
//! 2. Call [`Standby::handle_timeout`] when [`Standby::poll_timeout`] has
//!    passed.
//! 3. Stop when [`Standby::poll_event`] yields [`Event::TakeOver`]: build the
//!    coordinator from the state it carries.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::BarrierConfig;
use crate::state::{Liveness, PublishedState};
use crate::wire::Message;

/// Tunables of a standby.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct StandbyOptions {
    /// How often to read the published state while standing by.
    pub poll: Duration,
    /// How long a live coordinator has to answer a probe.
    pub probe_timeout: Duration,
    /// How often to probe while standing by (keeps the active coordinator
    /// on its standby heartbeat; shorter than its watch window).
    pub probe_every: Duration,
    /// Take over at once, without probing (`coordinator --force`).
    pub force: bool,
}

impl Default for StandbyOptions {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(3),
            probe_every: Duration::from_secs(20),
            force: false,
        }
    }
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transmit {
    /// Read the published state and report it with [`Standby::handle_state`].
    ReadState,
    /// Send this body to the check-in queue.
    Probe(String),
}

/// Why a standby takes over.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// No coordinator ever published a state.
    NoState,
    /// The last coordinator stopped cleanly.
    Stopped,
    /// The coordinator did not answer a probe in time.
    NoAnswer {
        /// How long this standby waited.
        waited: Duration,
    },
    /// The coordinator published nothing new for this long.
    Silent {
        /// How long, by this standby's clock.
        for_: Duration,
    },
    /// Asked to (`force`).
    Forced,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NoState => write!(f, "no coordinator has published a state"),
            Reason::Stopped => write!(f, "the last coordinator stopped"),
            Reason::NoAnswer { waited } => write!(
                f,
                "the coordinator did not answer a probe in {:.1} s",
                waited.as_secs_f64()
            ),
            Reason::Silent { for_ } => write!(
                f,
                "the coordinator published nothing for {:.1} s",
                for_.as_secs_f64()
            ),
            Reason::Forced => write!(f, "forced"),
        }
    }
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// Another coordinator is alive; this one stands by.
    StandingBy {
        /// The active coordinator's id.
        active: String,
    },
    /// This one takes over: build the coordinator from `state`.
    TakeOver {
        /// Why.
        reason: Reason,
        /// The coordinator it takes over from, if any.
        from: Option<String>,
        /// The last state read (boxed: it can be large).
        state: Option<Box<PublishedState>>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Phase {
    /// The first read is under way.
    Starting,
    /// A probe was sent at this instant; waiting for a new beat.
    Probing { sent: Duration },
    /// The active coordinator answered; watching it.
    Watching,
    /// Took over: nothing more to do.
    Done,
}

/// The standby's state machine.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Standby {
    barrier: String,
    instance: String,
    id: String,
    opts: StandbyOptions,
    phase: Phase,
    liveness: Liveness,
    last: Option<PublishedState>,
    /// The active coordinator being watched.
    watching: Option<String>,
    reading: bool,
    next_read: Duration,
    next_probe: Duration,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Standby {
    /// A standby for barrier `cfg`, whose probes are signed `id` (the id the
    /// coordinator will have if it takes over, so that it ignores its own
    /// probes). Starts with a read of the published state.
    pub fn new(
        cfg: &BarrierConfig,
        id: impl Into<String>,
        opts: StandbyOptions,
        now: Duration,
    ) -> Self {
        let mut s = Self {
            barrier: cfg.name.clone(),
            instance: cfg.instance.clone(),
            id: id.into(),
            opts,
            phase: Phase::Starting,
            liveness: Liveness::new(now),
            last: None,
            watching: None,
            reading: true,
            next_read: now,
            next_probe: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        s.transmits.push_back(Transmit::ReadState);
        s
    }

    /// Whether this standby has taken over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn take_over(&mut self, reason: Reason) {
        self.phase = Phase::Done;
        self.transmits.clear();
        let from = self.last.as_ref().map(|s| s.coordinator.clone());
        self.events.push_back(Event::TakeOver {
            reason,
            from,
            state: self.last.take().map(Box::new),
        });
    }

    fn probe(&mut self, now: Duration) {
        let body = Message::Probe {
            barrier: self.barrier.clone(),
            instance: self.instance.clone(),
            from: self.id.clone(),
            watch: true,
        }
        .encode();
        self.transmits.push_back(Transmit::Probe(body));
        self.next_probe = now + self.opts.probe_every;
    }

    /// Feeds the published state read for [`Transmit::ReadState`] (`None`:
    /// there is none).
    pub fn handle_state(&mut self, state: Option<PublishedState>, now: Duration) {
        if self.phase == Phase::Done {
            return;
        }
        self.reading = false;
        let changed = self.liveness.observe(state.as_ref(), now);
        let active = state.as_ref().map(|s| s.coordinator.clone());
        let stopped = state.as_ref().is_some_and(|s| s.stopped);
        self.last = state;
        let Some(active) = active else {
            return self.take_over(Reason::NoState);
        };
        if stopped {
            return self.take_over(Reason::Stopped);
        }
        if self.opts.force {
            return self.take_over(Reason::Forced);
        }
        match self.phase {
            Phase::Starting => {
                self.probe(now);
                self.phase = Phase::Probing { sent: now };
                self.next_read = now + self.opts.poll.min(Duration::from_millis(500));
            }
            Phase::Probing { sent } => {
                if changed {
                    self.phase = Phase::Watching;
                    self.watching = Some(active.clone());
                    self.events.push_back(Event::StandingBy { active });
                    self.next_read = now + self.opts.poll;
                } else if now.saturating_sub(sent) >= self.opts.probe_timeout {
                    let waited = now.saturating_sub(sent);
                    self.take_over(Reason::NoAnswer { waited });
                } else {
                    self.next_read = now + self.opts.poll.min(Duration::from_millis(500));
                }
            }
            Phase::Watching => {
                if changed {
                    // Another standby may have taken over meanwhile: worth a
                    // log line.
                    if self.watching.as_ref() != Some(&active) {
                        self.watching = Some(active.clone());
                        self.events.push_back(Event::StandingBy { active });
                    }
                } else if self.liveness.gone(now, Duration::ZERO) {
                    let for_ = self.liveness.unchanged_for(now);
                    return self.take_over(Reason::Silent { for_ });
                }
                self.next_read = now + self.opts.poll;
            }
            Phase::Done => {}
        }
    }

    /// Reports that the read for [`Transmit::ReadState`] failed: it is tried
    /// again after [`StandbyOptions::poll`]. A standby never takes over on a
    /// failed read (it cannot tell a dead coordinator from a dead network).
    pub fn handle_read_failed(&mut self, now: Duration) {
        self.reading = false;
        self.next_read = now + self.opts.poll;
    }

    /// Fires due timers: reads and probes.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.phase == Phase::Done {
            return;
        }
        if !self.reading && now >= self.next_read {
            self.reading = true;
            self.transmits.push_back(Transmit::ReadState);
        }
        if self.phase == Phase::Watching && now >= self.next_probe {
            self.probe(now);
        }
    }

    /// The next instant at which [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Done => None,
            Phase::Watching if !self.reading => Some(self.next_read.min(self.next_probe)),
            Phase::Watching => Some(self.next_probe),
            _ if self.reading => None,
            _ => Some(self.next_read),
        }
    }

    /// The next thing the driver must do.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Membership;

    const T: Duration = Duration::from_secs(1_000);
    const S: Duration = Duration::from_secs(1);

    fn cfg() -> BarrierConfig {
        BarrierConfig::new("b", "i", Membership::new(2, None).unwrap(), None, false).unwrap()
    }

    fn state(by: &str, beat: u64, every_ms: u64) -> PublishedState {
        PublishedState {
            v: 1,
            coordinator: by.into(),
            term: 0,
            heartbeat_ms: beat,
            seq: 0,
            heartbeat_every_ms: every_ms,
            stopped: false,
            standbys: vec![],
            released_below: 0,
            released_above: vec![],
            open: None,
            broken: None,
            rejected: 0,
            roll: None,
        }
    }

    fn drain(s: &mut Standby) -> Vec<Transmit> {
        std::iter::from_fn(|| s.poll_transmit()).collect()
    }

    fn took_over(s: &mut Standby) -> Option<Reason> {
        std::iter::from_fn(|| s.poll_event()).find_map(|e| match e {
            Event::TakeOver { reason, .. } => Some(reason),
            _ => None,
        })
    }

    /// Runs the standby's timers from `from` to `to` in 100 ms steps,
    /// answering every read with `read(now)`.
    fn run(
        s: &mut Standby,
        from: Duration,
        to: Duration,
        read: impl Fn(Duration) -> PublishedState,
    ) {
        let mut now = from;
        while now <= to && !s.is_done() {
            s.handle_timeout(now);
            for t in drain(s) {
                if t == Transmit::ReadState {
                    s.handle_state(Some(read(now)), now);
                }
            }
            now += Duration::from_millis(100);
        }
    }

    #[test]
    fn no_state_or_a_stopped_one_is_taken_over_at_once() {
        let mut s = Standby::new(&cfg(), "me", StandbyOptions::default(), T);
        assert_eq!(drain(&mut s), vec![Transmit::ReadState]);
        s.handle_state(None, T);
        assert_eq!(took_over(&mut s), Some(Reason::NoState));
        let mut s = Standby::new(&cfg(), "me", StandbyOptions::default(), T);
        drain(&mut s);
        let mut st = state("old", 5, 30_000);
        st.stopped = true;
        s.handle_state(Some(st), T);
        assert_eq!(took_over(&mut s), Some(Reason::Stopped));
    }

    #[test]
    fn a_dead_coordinator_is_taken_over_when_it_does_not_answer_a_probe() {
        let o = StandbyOptions::default();
        let mut s = Standby::new(&cfg(), "me", o.clone(), T);
        drain(&mut s);
        // Its clock says it wrote a moment ago; that proves nothing.
        s.handle_state(Some(state("old", T.as_millis() as u64, 30_000)), T);
        let t = drain(&mut s);
        assert!(matches!(&t[..], [Transmit::Probe(body)] if body.contains("\"from\":\"me\"")));
        run(&mut s, T, T + 10 * S, |_| {
            state("old", T.as_millis() as u64, 30_000)
        });
        match took_over(&mut s) {
            Some(Reason::NoAnswer { waited }) => {
                assert!(
                    waited >= o.probe_timeout && waited < o.probe_timeout + S,
                    "{waited:?}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_live_coordinator_is_watched_and_taken_over_soon_after_it_dies() {
        let o = StandbyOptions::default();
        let mut s = Standby::new(&cfg(), "me", o.clone(), T);
        drain(&mut s);
        s.handle_state(Some(state("active", 1, 30_000)), T);
        drain(&mut s);
        // It answers the probe (a new beat), then beats every 2 s (its
        // standby heartbeat) until it dies at T + 30 s.
        let death = T + 30 * S;
        let beat = |now: Duration| {
            let last = now.min(death);
            state("active", 2 + (last - T).as_secs() / 2, 2_000)
        };
        run(&mut s, T, death, beat);
        assert!(!s.is_done(), "a live coordinator was taken over");
        assert!(matches!(s.poll_event(), Some(Event::StandingBy { .. })));
        let mut now = death;
        while !s.is_done() {
            now += Duration::from_millis(100);
            run(&mut s, now, now, beat);
        }
        // Its last beat was at most 2 s before its death.
        let after_last_beat = now - (death - 2 * S);
        assert!(after_last_beat <= 10 * S, "{after_last_beat:?}");
        assert!(matches!(took_over(&mut s), Some(Reason::Silent { .. })));
    }

    #[test]
    fn probes_keep_coming_while_standing_by() {
        let o = StandbyOptions::default();
        let mut s = Standby::new(&cfg(), "me", o.clone(), T);
        drain(&mut s);
        s.handle_state(Some(state("active", 1, 2_000)), T);
        let mut probes = drain(&mut s).len();
        let mut now = T;
        let mut k = 1;
        while now < T + 61 * S {
            s.handle_timeout(now);
            for t in drain(&mut s) {
                match t {
                    Transmit::ReadState => {
                        k += 1;
                        s.handle_state(Some(state("active", k, 2_000)), now)
                    }
                    Transmit::Probe(_) => probes += 1,
                }
            }
            now += Duration::from_millis(100);
        }
        assert!(!s.is_done());
        assert_eq!(probes, 4, "one at start, then every {:?}", o.probe_every);
    }
}
