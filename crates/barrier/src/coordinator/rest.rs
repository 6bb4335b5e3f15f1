//! Resting: the active coordinator gives the lease back while it has
//! nothing to decide, and takes it again for its next decision
//! (docs/PROTOCOL.md, "The lease", "Resting"). Keeping a lease costs a
//! request every 2 s; a barrier whose members work for minutes between
//! phases needs it for a moment per phase.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Driver;
use crate::clock::mono_now;
use crate::error::Result;
use crate::lease::{self, Retaken};
use crate::published;

impl Driver {
    /// Whether it should rest now: resting is on, it holds the lease, no
    /// check-in came for `rest_after`, everything it decided is published,
    /// it holds nothing, no request is under way, and no decision is due
    /// within `rest_after` or the visibility timeout, whichever is longer.
    /// (A coordinator that woke for a decision waits the visibility timeout
    /// for it, its restart grace again: resting meanwhile, it would wake
    /// for it and put it off again, for ever.)
    pub(super) fn may_rest(&self, last_batch: Option<Instant>) -> bool {
        let Some(after) = self.opts.rest_after else {
            return false;
        };
        let horizon = after.max(self.opts.visibility);
        self.resting.is_none()
            // A lease that ran out is not given back: the token may be
            // somebody else's by now.
            && self.holds_lease()
            && last_batch.is_none_or(|t| t.elapsed() >= after)
            && self.held.is_empty()
            && self.background.is_empty()
            && self.core.is_settled()
            && self
                .core
                .poll_decision_timeout()
                .is_none_or(|t| t > mono_now() + horizon)
    }

    /// Gives the lease back: a standby may take it at once from now on.
    pub(super) async fn rest(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let token = lease.release().await;
        self.resting = Some(token);
        if let Some(g) = &self.opts.gauges {
            g.rests.fetch_add(1, Ordering::Relaxed);
            g.resting.store(true, Ordering::Relaxed);
        }
        tracing::debug!(
            barrier = %self.info.config.name,
            "nothing to decide: lease given back until the next check-in or decision"
        );
    }

    /// Takes the lease again to decide: `None` once it holds it and goes
    /// on, or why another coordinator may have decided since it rested
    /// (then it stands down). It goes on only if nobody else received the
    /// token since it gave it back and the published state is still its
    /// own; what waits for a restart grace waits for it again (see
    /// `Coordinator::handle_resumed`).
    pub(super) async fn wake(&mut self) -> Result<Option<String>> {
        // Its heartbeat under way lands first: the read below must find it.
        while let Some(done) = self.background.join_next().await {
            self.finished(done)?;
        }
        if let Some(by) = self.core.superseded() {
            return Ok(Some(format!("coordinator {by} published a newer state")));
        }
        if let Some(tx) = &self.events {
            let _ = tx.send(sqs_barrier_core::coordinator::Event::Waking);
        }
        let given_back = self.resting.clone().flatten();
        let keeper =
            match lease::take_again(&self.sqs, &self.info.urls.lease, given_back.as_ref()).await? {
                Retaken::Held(k) => k,
                Retaken::Elsewhere(why, again) => {
                    self.resting = Some(again);
                    return Ok(Some(why));
                }
            };
        // The last holder's writes (if any) landed before its lease ran
        // out, and so before this read.
        let newest = match published::read_state(&self.sqs, &self.info).await {
            Ok(s) => s,
            Err(e) => {
                self.resting = Some(keeper.release().await);
                return Err(e);
            }
        };
        match newest {
            Some(s) if s.coordinator == self.core.id() => {}
            other => {
                self.resting = Some(keeper.release().await);
                return Ok(Some(match other {
                    Some(s) => format!("coordinator {} published since", s.coordinator),
                    None => "its published state was not found".to_owned(),
                }));
            }
        }
        self.core.handle_resumed(mono_now(), self.opts.visibility);
        self.lease = Some(keeper);
        self.resting = None;
        if let Some(g) = &self.opts.gauges {
            g.resumes.fetch_add(1, Ordering::Relaxed);
            g.resting.store(false, Ordering::Relaxed);
        }
        tracing::debug!(barrier = %self.info.config.name, "lease taken again");
        Ok(None)
    }
}
