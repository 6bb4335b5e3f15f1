//! Ending a generation: its release (one notice, the sweep of the other
//! queue, a quorum's drops), an abort or a deadline breaking the barrier,
//! and messages moved to the dead-letter queue.

use std::time::Duration;

use super::*;

impl<T> Coordinator<T> {
    pub(super) fn release(&mut self, g: u64, now: Duration) {
        let Some(open) = self.open.get(&g) else {
            return;
        };
        // Those g expects that have not arrived: none, unless a quorum
        // release goes on without them.
        let without: Vec<usize> = self
            .roll
            .expected(g)
            .filter(|i| !open.arrived.contains(*i))
            .collect();
        let data = (!open.data.is_empty()).then(|| {
            open.data
                .iter()
                .filter(|(i, _)| self.roll.expects(**i, g))
                .map(|(i, d)| (self.roll.name(*i), d.clone()))
                .collect()
        });
        let body = Message::Release {
            barrier: self.cfg.name.clone(),
            instance: self.cfg.instance.clone(),
            generation: g,
            without: without.iter().map(|&i| self.roll.name(i)).collect(),
            data,
        }
        .encode();
        if body.len() > MAX_BODY {
            // Members joined after the data's size was checked against the
            // membership: no message can carry it.
            let cause = BreakCause::TooMuchData {
                bytes: body.len() as u64,
                max: MAX_BODY as u64,
            };
            return self.break_from(g, cause, now);
        }
        let open = self.open.remove(&g).expect("looked up above");
        let mut recheck = Vec::new();
        if !without.is_empty() {
            for &i in &without {
                self.roll.end(i, g);
            }
            self.events.push_back(Event::Dropped {
                generation: g,
                members: without.iter().map(|&i| self.roll.name(i)).collect(),
            });
            // Generations open above g (phase numbers with gaps) wait for
            // the dropped no more: one may be complete now.
            let later: Vec<u64> = self.open.range(g + 1..).map(|(g, _)| *g).collect();
            for h in &later {
                self.recount(*h);
            }
            recheck = later;
        }
        if g == self.released_below {
            self.released_below += 1;
            while self.released_above.remove(&self.released_below) {
                self.released_below += 1;
            }
        } else {
            self.released_above.insert(g);
        }
        self.version += 1;
        let v = self.version;
        self.awaiting
            .extend(open.tokens.into_iter().chain(open.kept).map(|t| (v, t)));
        // Every member checked in at g, so every member has passed g - 1
        // (and anything before it): the notices on the other queue are
        // needed by nobody, and the participants about to wait at g + 1
        // poll that queue. Sweep it, unless nothing sent there can still
        // be alive.
        let other = g + 1;
        let parity = (other % 2) as usize;
        let fresh = self.notice_sent[parity].is_some_and(|t| now < t + NOTICE_LIFE)
            || self.started.is_none_or(|s| now < s + NOTICE_LIFE);
        // A member that left at g - 1 (or that this release went on
        // without: it may still wait at g - 1) checked in at g - 1 but not
        // at g, so nothing says it has read g - 1's notice: that one stays
        // (it brings the gathered data), and only older ones go.
        let lingering = g > 0
            && (0..self.roll.len()).any(|i| {
                let span = self.roll.span(i);
                span.end == Some(g) && span.from < g
            });
        let below = if lingering { g - 1 } else { other };
        if without.is_empty() {
            self.notify(g, body, now);
        } else {
            self.deferred.push((v, g, body));
        }
        if fresh {
            self.transmits.push_back(Transmit::Sweep {
                generation: other,
                below,
            });
        }
        self.events.push_back(Event::Released { generation: g });
        for h in recheck {
            self.check_complete(h, now);
        }
    }

    pub(super) fn abort(
        &mut self,
        token: T,
        body: &str,
        generation: Option<u64>,
        by: String,
        reason: String,
        now: Duration,
    ) {
        if let Some(g) = generation.filter(|g| *g > self.frontier() + MAX_AHEAD) {
            let reason = format!(
                "abort for generation {g}, more than {MAX_AHEAD} ahead of the barrier (at {})",
                self.frontier()
            );
            return self.reject(token, body, reason);
        }
        // The published state must stay small enough for the queue's tags.
        let by = truncate(by, MAX_BY);
        let reason = truncate(reason, MAX_REASON);
        if self.broken.is_none() {
            // A participant that aborts right after its generation was
            // released breaks the next one: that is where the others will wait.
            let mut from = generation.unwrap_or(self.released_below);
            while self.is_released(from) {
                from += 1;
            }
            self.break_from(from, BreakCause::Aborted { by, reason }, now);
        }
        let v = self.version;
        self.awaiting.push((v, token));
    }

    pub(super) fn break_from(&mut self, from: u64, cause: BreakCause, now: Duration) {
        let missing_idx: Vec<usize> = match self.open.get(&from) {
            Some(o) => self
                .roll
                .expected(from)
                .filter(|i| !o.arrived.contains(*i))
                .collect(),
            None => self.roll.expected(from).collect(),
        };
        let broken = BrokenState {
            from_gen: from,
            cause: cause.clone(),
            missing: missing_idx
                .iter()
                .take(MAX_NAMED_MISSING)
                .map(|&i| self.roll.name(i))
                .collect(),
            missing_count: missing_idx.len(),
        };
        self.version += 1;
        let v = self.version;
        let doomed: Vec<u64> = self.open.range(from..).map(|(g, _)| *g).collect();
        for g in doomed {
            let open = self.open.remove(&g).expect("listed above");
            let body = self.broken_notice(g, &broken);
            self.notify(g, body, now);
            self.awaiting
                .extend(open.tokens.into_iter().chain(open.kept).map(|t| (v, t)));
        }
        self.events.push_back(Event::Broken {
            from_gen: from,
            cause,
            missing: missing_idx.iter().map(|&i| self.roll.name(i)).collect(),
        });
        self.broken = Some(broken);
    }

    pub(super) fn reject(&mut self, token: T, body: &str, reason: String) {
        self.rejected += 1;
        self.version += 1;
        self.events.push_back(Event::Rejected {
            reason: reason.clone(),
        });
        self.transmits.push_back(Transmit::DeadLetter {
            token,
            body: body.to_owned(),
            reason,
        });
    }

    pub(super) fn notify(&mut self, generation: u64, body: String, now: Duration) {
        self.notice_sent[(generation % 2) as usize] = Some(now);
        self.transmits
            .push_back(Transmit::Notify { generation, body });
    }

    pub(super) fn broken_notice(&self, generation: u64, b: &BrokenState) -> String {
        Message::Broken {
            barrier: self.cfg.name.clone(),
            instance: self.cfg.instance.clone(),
            generation,
            from_gen: b.from_gen,
            cause: b.cause.clone(),
            missing: b.missing.clone(),
        }
        .encode()
    }
}
