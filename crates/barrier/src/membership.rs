//! Joining and leaving a barrier: the membership's driver.
//!
//! A leave is a check-in that says "this is my last phase": it counts as
//! the member's arrival there, and no later phase expects it. A join is a
//! request the coordinator answers in its published state: the joining
//! process sends it, then reads the state until the roll shows its join
//! (with its first phase, and on a numbered barrier its number).

use std::time::{Duration, Instant};

use sqs_barrier_core::participant::ParticipantOptions;
use sqs_barrier_core::roll::{JoinError, MAX_ELASTIC};
use sqs_barrier_core::wire::Message;
use sqs_barrier_core::{Participant, Roll};

use crate::admin;
use crate::checkin::send_checkin;
use crate::error::{Error, Result};
use crate::participant::Barrier;
use crate::sqs::Sqs;

/// How often a joining process reads the published state for its join.
const JOIN_POLL: Duration = Duration::from_millis(500);

/// A counted join.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Joined {
    /// The member's handle; its next [`Barrier::wait`] arrives at the
    /// member's first phase.
    pub barrier: Barrier,
    /// The member's name (on a numbered barrier, the number it was given).
    pub member: String,
    /// The first phase that expects it.
    pub first_phase: u64,
}

impl Barrier {
    /// Arrives at the next phase and leaves the barrier, without waiting
    /// for the others: the check-in counts as this member's arrival, and
    /// no later phase expects it. Returns the phase. To wait for that
    /// phase's release too, use [`Barrier::wait_with`] with
    /// [`crate::WaitOptions::leaving`].
    pub async fn leave(&self, data: Option<String>) -> Result<u64> {
        let inner = self.inner();
        let generation = {
            let ph = inner.phase.lock().expect("phase lock");
            if let Some((g, _)) = ph.waiting {
                return Err(
                    sqs_barrier_core::participant::ParticipantError::AlreadyWaiting(g).into(),
                );
            }
            if let Some(e) = self.not_expected(&ph) {
                return Err(e);
            }
            ph.next
        };
        let mut p = Participant::with_roll(
            &inner.info.config,
            inner.roll.clone(),
            &inner.member,
            format!("{}.leave", inner.session),
            ParticipantOptions::default(),
        )?;
        // Checks the data's size before anything is sent.
        p.leave(generation, data)?;
        while let Some(t) = p.poll_transmit() {
            if let sqs_barrier_core::participant::Transmit::Send(body) = t {
                let group = format!("{}.{generation}", inner.session);
                send_checkin(&inner.sqs, &inner.info, &body, &group).await?;
            }
        }
        let mut ph = inner.phase.lock().expect("phase lock");
        ph.left_after = Some(generation);
        ph.next = generation + 1;
        Ok(generation)
    }

    /// Joins barrier `name` as `member` (on a numbered barrier, `None`
    /// takes the next number): the member is expected from the first phase
    /// that has no arrival counted when the coordinator counts the join.
    /// Waits up to `timeout` for the coordinator to publish the join.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use sqs_barrier::{admin, Barrier, ClientOptions, Sqs, WaitOptions};
    ///
    /// # async fn f() -> Result<(), sqs_barrier::Error> {
    /// let sqs = Sqs::connect(&ClientOptions::default()).await?;
    /// let mut opts = admin::SetupOptions::new(3);
    /// opts.quorum = Some((2, Duration::from_secs(30)));            // 2 of 3 suffice, 30 s after the 2nd
    /// admin::setup(&sqs, "pool", &opts).await?;
    /// let joined = Barrier::join(&sqs, "pool", None, Duration::from_secs(30)).await?;  // member "3"
    /// let released = joined.barrier.wait_with(WaitOptions::timeout(None).with_data("shard-7")).await?;
    /// println!("{:?}", released.data);                              // every member's data, by name
    /// joined.barrier.leave(None).await?;                            // arrive at the next phase and go
    /// # Ok(()) }
    /// ```
    pub async fn join(
        sqs: &Sqs,
        name: &str,
        member: Option<&str>,
        timeout: Duration,
    ) -> Result<Joined> {
        Self::join_with(sqs, name, member, timeout, ParticipantOptions::default()).await
    }

    /// [`Self::join`] with the participant tunables of the joined handle.
    pub async fn join_with(
        sqs: &Sqs,
        name: &str,
        member: Option<&str>,
        timeout: Duration,
        opts: ParticipantOptions,
    ) -> Result<Joined> {
        let info = admin::open(sqs, name).await?;
        let cfg = info.config.clone();
        let refuse = |detail: String| Error::Join {
            barrier: name.to_owned(),
            detail,
        };
        // What can be told before asking: the coordinator checks again.
        let roll = match admin::read_state(sqs, &info).await? {
            Some(st) => st.roll(&cfg.members),
            None => Roll::new(cfg.members.clone()),
        };
        if let Some(n) = member {
            sqs_barrier_core::config::validate_member_name(n).map_err(|e| refuse(e.to_string()))?;
            if let Some(i) = roll.index_of(n)
                && roll.span(i).end.is_none()
            {
                return Err(refuse(JoinError::AlreadyMember(n.to_owned()).to_string()));
            }
        }
        if roll.len() >= MAX_ELASTIC {
            return Err(refuse(JoinError::Full.to_string()));
        }
        let barrier = Barrier::from_parts(sqs, info, roll, member.unwrap_or(""), opts);
        let inner = barrier.inner();
        let session = inner.session.clone();
        let body = Message::Join {
            barrier: cfg.name.clone(),
            instance: cfg.instance.clone(),
            member: member.map(str::to_owned),
            session: session.clone(),
        }
        .encode();
        send_checkin(sqs, &inner.info, &body, &format!("join.{session}")).await?;
        let started = Instant::now();
        loop {
            tokio::time::sleep(JOIN_POLL).await;
            let st = admin::read_state(sqs, &inner.info).await?;
            let roll = st.as_ref().map(|s| s.roll(&cfg.members));
            match roll.as_ref().and_then(|r| r.join_of(&session)) {
                Some(Some(position)) => {
                    let roll = roll.expect("matched above");
                    let name = roll.name(position);
                    // A span that began below the release frontier is
                    // published as the default; the first phase is then
                    // the frontier (a phase that expects the joiner is not
                    // released without it).
                    let below = st.as_ref().map_or(0, |s| s.released_below);
                    let span = roll.span(position);
                    let first_phase = span.from.max(below);
                    // Counted, then dropped before it could arrive: a
                    // quorum release went on without it at the phase it
                    // was placed at. It is not a member from here on.
                    if let Some(end) = span.end.filter(|e| *e <= first_phase) {
                        return Err(Error::NotExpected {
                            barrier: name.to_owned(),
                            member: roll.name(position),
                            generation: first_phase,
                            since: end,
                        });
                    }
                    let joined = Barrier::from_parts(
                        sqs,
                        inner.info.clone(),
                        roll,
                        &name,
                        inner.opts.clone(),
                    );
                    joined.set_next_phase(first_phase);
                    return Ok(Joined {
                        barrier: joined,
                        member: name,
                        first_phase,
                    });
                }
                Some(None) => {
                    return Err(refuse(format!(
                        "the coordinator refused it ({}, an unusable name, or a barrier with no room: at most {MAX_ELASTIC} members)",
                        match member {
                            Some(n) => format!("{n:?} is already a member"),
                            None => "this barrier's members have names: join with one".into(),
                        }
                    )));
                }
                None if started.elapsed() >= timeout => {
                    return Err(refuse(format!(
                        "the coordinator did not count the join within {timeout:.0?}; is one running for barrier {name:?}?"
                    )));
                }
                None => {}
            }
        }
    }
}
