//! The coordinator's side of the roll, gathered data and quorums: joins,
//! recounts when the roll changes, and when a generation is complete.

use std::time::Duration;

use super::*;

impl<T> Coordinator<T> {
    /// Recounts how many of `g`'s arrived the roll expects (after the roll
    /// changed).
    pub(super) fn recount(&mut self, g: u64) {
        let min = self.cfg.quorum.map(|q| q.min);
        let Some(o) = self.open.get_mut(&g) else {
            return;
        };
        o.have = self
            .roll
            .expected(g)
            .filter(|i| o.arrived.contains(*i))
            .count();
        // Arrivals of members no longer expected (they left, or a quorum
        // release dropped them) count for no quorum: a grace under way
        // stops until enough have arrived again.
        if min.is_some_and(|min| o.have < min) {
            o.quorum_at = None;
        }
    }

    /// Releases `g` if every member it expects has arrived and the data of
    /// each that brought some is here; on a quorum barrier, starts the
    /// grace once enough have.
    pub(super) fn check_complete(&mut self, g: u64, now: Duration) {
        let need = self.roll.expected_count(g);
        let Some(o) = self.open.get_mut(&g) else {
            return;
        };
        if let Some(q) = self.cfg.quorum
            && o.quorum_at.is_none()
            && o.have >= q.min
            && self.started.is_some()
        {
            o.quorum_at = Some(now);
        }
        if o.have >= need && self.data_here(g) {
            self.release(g, now);
        }
    }

    /// Counts a join: the member is expected from the first generation
    /// that has no check-in counted yet. The join goes once a state that
    /// records it is durable: the joining process learns its first
    /// generation (and its number) from there.
    ///
    /// Not before `restart_grace` has passed since this coordinator's
    /// start: a dead predecessor may have released generations it never
    /// published (a notice goes before the write that records it), on
    /// check-ins it held, hidden until then. Counted earlier, the join
    /// could be placed at such a generation: the joining member would
    /// pass it by the predecessor's notice, which went without it, and
    /// the generation would be released twice, with different data.
    pub(super) fn join(
        &mut self,
        token: T,
        member: Option<String>,
        session: String,
        now: Duration,
    ) {
        let start = self.started.unwrap_or(now);
        if now < self.deadline_floor(start) {
            self.joins.push((token, member, session));
            return;
        }
        self.count_held_joins(now);
        self.count_join(token, member, session);
    }

    /// Counts the joins held back while `restart_grace` ran, once it has.
    pub(super) fn count_held_joins(&mut self, now: Duration) {
        let start = self.started.unwrap_or(now);
        if self.joins.is_empty() || now < self.deadline_floor(start) {
            return;
        }
        for (token, member, session) in std::mem::take(&mut self.joins) {
            self.count_join(token, member, session);
        }
    }

    pub(super) fn count_join(&mut self, token: T, member: Option<String>, session: String) {
        let from = self
            .open
            .keys()
            .next_back()
            .map_or(0, |g| g + 1)
            .max(self.frontier());
        let before = self.roll.version();
        let settled = self.released_below;
        match self.roll.join(member.as_deref(), &session, from, settled) {
            Ok(j) if j.new => {
                self.last_seen.resize(self.roll.len(), None);
                self.events.push_back(Event::Joined {
                    member: self.roll.name(j.position),
                    from,
                });
            }
            Ok(_) => {}
            Err(e) => self.events.push_back(Event::JoinRefused {
                member,
                reason: e.to_string(),
            }),
        }
        if self.roll.version() != before {
            self.version += 1;
        }
        self.await_write(token);
    }

    /// When a quorum reached at `t` releases its generation: after the
    /// grace, and never before a predecessor's held check-ins are back
    /// (as a deadline: `restart_grace` after this coordinator's start, and
    /// `deadline_slack` more for a coordinator rebuilt for every batch).
    pub(super) fn quorum_end(&self, t: Duration) -> Duration {
        let grace = self.cfg.quorum.map_or(Duration::ZERO, |q| q.grace);
        let floor = self.deadline_floor(self.started.unwrap_or_default());
        (t + grace + self.opts.deadline_slack).max(floor)
    }

    /// The next quorum release due, if any.
    pub(super) fn quorum_due(&self) -> Option<Duration> {
        if self.broken.is_some() {
            return None;
        }
        self.open
            .values()
            .filter_map(|o| o.quorum_at)
            .map(|t| self.quorum_end(t))
            .min()
    }

    /// Whether the data of every member of `g` known to have brought some
    /// is here.
    pub(super) fn data_here(&self, g: u64) -> bool {
        self.open.get(&g).is_some_and(|o| {
            (0..self.roll.len())
                .filter(|i| o.data_expected.contains(*i))
                .all(|i| o.data.contains_key(&i))
        })
    }
}
