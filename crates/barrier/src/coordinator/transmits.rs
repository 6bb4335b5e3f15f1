//! What the active coordinator does for the core: the transmits carried
//! out (notices, sweeps, check-in deletes, dead letters, state writes
//! beside the loop), what those requests came to, the copy of the state in
//! tags, the last state at a clean stop, the visibility of held check-ins,
//! and the core's events logged and passed on.

use std::sync::atomic::Ordering;
use std::time::Instant;

use sqs_barrier_core::coordinator::{Event, Transmit};
use tokio::task::JoinSet;

use super::{Done, Driver};
use crate::admin;
use crate::clock::{mono_now, wall_now};
use crate::error::{Error, Result};
use crate::notices;
use crate::published;
use crate::sqs::Sqs;

impl Driver {
    /// Carries out everything the core asks for, until it asks nothing more.
    pub(super) async fn carry_out(&mut self) -> Result<()> {
        self.publish_events();
        while let Some(t) = self.core.poll_transmit() {
            if self.resting.is_some() {
                // Resting, the core is fed nothing but timers that decide
                // nothing: only heartbeats (and the deletes a write makes
                // possible) can come of them.
                if !matches!(t, Transmit::WriteState { .. } | Transmit::Delete(_)) {
                    debug_assert!(false, "a decision while resting: {t:?}");
                    tracing::error!("a decision asked for without the lease; not carried out");
                    continue;
                }
            } else if !self.holds_lease() {
                // What is left is not done; the loop stands down.
                return Ok(());
            }
            match t {
                Transmit::Notify { generation, body } => {
                    let url = self.info.urls.release_for(generation);
                    notices::send_notice(&self.sqs, url, &body).await?;
                }
                Transmit::Sweep { generation, below } => {
                    // Off the coordinator's path: a release does not wait
                    // for it, and an empty queue costs its 1 s long poll.
                    tokio::spawn(notices::sweep(
                        self.sqs.clone(),
                        self.info.urls.release_for(generation).to_owned(),
                        self.info.config.clone(),
                        below,
                    ));
                }
                Transmit::Delete(receipts) => {
                    for r in &receipts {
                        self.held.remove(r);
                    }
                    let (sqs, url) = (self.sqs.clone(), self.info.urls.checkin.clone());
                    self.background
                        .spawn(async move { Done::Delete(delete(&sqs, &url, receipts).await) });
                }
                Transmit::DeadLetter {
                    token,
                    body,
                    reason,
                } => {
                    self.dead_letter(&body, &reason).await?;
                    if let Some(g) = &self.opts.gauges {
                        g.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    }
                    self.held.remove(&token);
                    delete(&self.sqs, &self.info.urls.checkin, vec![token]).await?;
                }
                Transmit::WriteState { version, mut state } => {
                    // The core runs on the monotonic clock; people read the
                    // wall clock's time in the state.
                    state.stamp_wall(wall_now());
                    let (sqs, info) = (self.sqs.clone(), self.info.clone());
                    let until = self.lease_until();
                    self.last_written = Some(state.clone());
                    self.background.spawn(async move {
                        let mut config = None;
                        if state.needed_version() >= 2 {
                            match admin::mark_extended(&sqs, &info).await {
                                Ok(c) => config = Some(c),
                                Err(e) => {
                                    return Done::Write {
                                        version,
                                        outcome: Err(e),
                                        config,
                                    };
                                }
                            }
                        }
                        let cfg = config.as_ref().unwrap_or(&info.config);
                        let outcome = published::write_state(&sqs, &info, cfg, &state, until).await;
                        if matches!(outcome, Ok(None)) {
                            return Done::Write {
                                version,
                                outcome: Ok(None),
                                config: Some(cfg.clone()).filter(|_| config.is_some()),
                            };
                        }
                        Done::Write {
                            version,
                            outcome,
                            config,
                        }
                    });
                }
            }
        }
        self.publish_events();
        Ok(())
    }

    /// Logs the core's events and passes them on, in the order they
    /// happened: before the requests they lead to (a release is reported
    /// before its notice goes out) where possible.
    fn publish_events(&mut self) {
        while let Some(e) = self.core.poll_event() {
            log_event(&e);
            if let Some(tx) = &self.events {
                let _ = tx.send(e);
            }
        }
    }

    /// Takes in what a request run beside the loop came to. Errors that
    /// end the run (permanent ones) are returned.
    pub(super) fn finished(
        &mut self,
        done: std::result::Result<Done, tokio::task::JoinError>,
    ) -> Result<()> {
        let done = done.map_err(|e| Error::Sqs {
            endpoint: self.sqs.endpoint().into(),
            operation: "a background request",
            detail: e.to_string(),
        })?;
        match done {
            Done::Write {
                version,
                outcome: Ok(None),
                config,
            } => {
                if let Some(c) = config {
                    self.info.config = c;
                }
                self.core.handle_state_written(version);
                if let Some(g) = &self.opts.gauges {
                    g.state_writes.fetch_add(1, Ordering::Relaxed);
                }
                self.copy_to_tags();
            }
            Done::Backstop(Ok(())) => self.backstop.writing = false,
            Done::Backstop(Err(e)) => {
                self.backstop.failed();
                tracing::warn!(error = %e, "could not copy the state into tags; trying again later");
            }
            Done::Write {
                outcome: Ok(Some(other)),
                config,
                ..
            } => {
                if let Some(c) = config {
                    self.info.config = c;
                }
                self.core.handle_state_observed(&other, mono_now())
            }
            Done::Write {
                outcome: Err(e), ..
            } if e.is_transient() => {
                tracing::warn!(error = %e, "could not publish the coordinator state; retrying");
                self.core.handle_state_write_failed();
            }
            // Harmless: a check-in not deleted comes back and is recognised
            // as counted.
            Done::Delete(Err(e)) if e.is_transient() => {
                tracing::warn!(error = %e, "could not delete counted check-ins; they come back and are recognised");
            }
            Done::Write {
                outcome: Err(e), ..
            }
            | Done::Delete(Err(e)) => return Err(e),
            Done::Delete(Ok(())) => {}
        }
        Ok(())
    }

    /// After a write: copies the state into tags if that is due (see
    /// `published`), beside the loop.
    fn copy_to_tags(&mut self) {
        let Some(state) = self.last_written.take() else {
            return;
        };
        if !self.backstop.due(&state) {
            return;
        }
        self.backstop.record(&state);
        let (sqs, info) = (self.sqs.clone(), self.info.clone());
        self.background.spawn(async move {
            Done::Backstop(published::write_backstop(&sqs, &info, &state).await)
        });
    }

    /// On a clean stop: publishes the last state, marked `stopped`, unless
    /// another coordinator has published a newer one; and its copy in tags.
    pub(super) async fn write_final_state(&mut self) -> Result<()> {
        let mut state = self.core.final_snapshot(mono_now());
        state.stamp_wall(wall_now());
        let until = self.lease_until();
        let other =
            published::write_state(&self.sqs, &self.info, &self.info.config, &state, until).await?;
        if other.is_none() {
            published::write_backstop(&self.sqs, &self.info, &state).await?;
        }
        Ok(())
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<()> {
        notices::send_dead_letter(&self.sqs, &self.info, body, reason).await
    }

    pub(super) async fn extend_visibility(&mut self) -> Result<()> {
        let due = self.opts.visibility / 2;
        let stale: Vec<String> = self
            .held
            .iter()
            .filter(|(_, t)| t.elapsed() >= due)
            .map(|(r, _)| r.clone())
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let secs = self.opts.visibility.as_secs() as i32;
        self.change_visibility(&stale, secs).await?;
        let now = Instant::now();
        for r in stale {
            if let Some(t) = self.held.get_mut(&r) {
                *t = now;
            }
        }
        Ok(())
    }

    pub(super) async fn change_visibility(&self, receipts: &[String], secs: i32) -> Result<()> {
        self.sqs
            .change_visibility(&self.info.urls.checkin, receipts, secs)
            .await
    }
}

/// `DeleteMessageBatch` requests of the check-in queue in flight at once.
const DELETES_IN_FLIGHT: usize = 8;

/// Deletes counted check-ins (their receipt handles) from the check-in
/// queue `url`.
async fn delete(sqs: &Sqs, url: &str, receipts: Vec<String>) -> Result<()> {
    // The batches go out several at a time: one after another, the
    // check-ins of a large barrier would take N / 10 round trips.
    let mut chunks = receipts.chunks(10).map(<[String]>::to_vec);
    let mut running = JoinSet::new();
    loop {
        while running.len() < DELETES_IN_FLIGHT {
            let Some(chunk) = chunks.next() else { break };
            let (sqs, url) = (sqs.clone(), url.to_owned());
            running.spawn(async move { sqs.delete_batch(&url, &chunk).await });
        }
        let Some(done) = running.join_next().await else {
            return Ok(());
        };
        done.map_err(|e| Error::Sqs {
            endpoint: sqs.endpoint().into(),
            operation: "DeleteMessageBatch",
            detail: e.to_string(),
        })??;
    }
}

fn log_event(e: &Event) {
    match e {
        Event::Arrived {
            generation,
            member,
            count,
            of,
        } => tracing::debug!(generation, %member, count, of, "arrived"),
        Event::Released { generation } => tracing::info!(generation, "released"),
        Event::Broken {
            from_gen,
            cause,
            missing,
        } => tracing::warn!(from_gen, %cause, missing = ?missing, "barrier broken"),
        Event::Rejected { reason } => tracing::warn!(%reason, "message rejected"),
        Event::Watched { by } => tracing::info!(standby = %by, "a standby is watching"),
        Event::Superseded { by } => {
            tracing::warn!(other = %by, "another coordinator wrote the state after us")
        }
        Event::Joined { member, from } => tracing::info!(%member, from, "member joined"),
        Event::JoinRefused { member, reason } => {
            tracing::warn!(member = ?member, %reason, "join refused")
        }
        Event::Left { member, generation } => tracing::info!(%member, generation, "member left"),
        Event::Dropped {
            generation,
            members,
        } => {
            tracing::warn!(generation, members = ?members, "released on a quorum without these members, who are dropped")
        }
        _ => {}
    }
}
