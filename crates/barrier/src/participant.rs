//! Waiting at a barrier: the participant's driver.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use sqs_barrier_core::participant::{
    self as core_p, Notice, Outcome, ParticipantOptions, Transmit,
};
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::wire::{BreakCause, Message};
use sqs_barrier_core::{BarrierConfig, Participant, Roll};
use tokio::sync::watch;

use crate::admin::{self, BarrierInfo};
use crate::checkin::send_checkin;
use crate::clock::mono_now;
use crate::error::{Error, Result};
use crate::sqs::Sqs;

/// After an answer that held messages but nothing for this wait (an old
/// notice, read again until a sweep or its expiry removes it, or somebody
/// else's), the next receive waits this long, doubling up to
/// [`STALE_PAUSE_MAX`]: a visibility-0 receive returns visible messages at
/// once, and must not spin on them. The first answer that held only old
/// notices, which the participant deletes, is the exception: the next
/// receive goes at once.
const STALE_PAUSE: Duration = Duration::from_millis(100);
const STALE_PAUSE_MAX: Duration = Duration::from_secs(5);

/// A member's handle on a barrier. Cheap to clone; clones share the member's
/// phase counter and can [`abort`](Self::abort) a wait under way.
///
/// ```no_run
/// # async fn demo() -> Result<(), sqs_barrier::Error> {
/// use std::time::Duration;
/// use sqs_barrier::{Barrier, ClientOptions, Sqs};
///
/// let sqs = Sqs::connect(&ClientOptions::default()).await?;
/// let barrier = Barrier::connect(&sqs, "nightly-etl", "worker-3").await?;
/// // phase 0 work ...
/// barrier.wait(Some(Duration::from_secs(600))).await?; // everyone finished phase 0
/// // phase 1 work, split-phase: arrive now, await later.
/// let arrival = barrier.arrive(None).await?;
/// // ... work that does not depend on the others ...
/// arrival.await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Barrier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) sqs: Sqs,
    pub(crate) info: BarrierInfo,
    pub(crate) member: String,
    pub(crate) session: String,
    /// Who is expected where, as the handle last learnt it: the
    /// configuration, or the published state for a member that joined.
    pub(crate) roll: Roll,
    pub(crate) opts: ParticipantOptions,
    /// The next generation to arrive at, and the one being waited at.
    pub(crate) phase: Mutex<Phase>,
    /// Waits started by this handle.
    waits: AtomicU64,
    abort_tx: watch::Sender<Option<String>>,
}

#[derive(Debug, Default)]
pub(crate) struct Phase {
    pub(crate) next: u64,
    /// The generation waited at, and which wait of this handle it is.
    pub(crate) waiting: Option<(u64, u64)>,
    /// The last generation of a member that left through this handle.
    pub(crate) left_after: Option<u64>,
}

/// A released wait.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Released {
    /// The generation (phase) released.
    pub generation: u64,
    /// How long this participant waited.
    pub waited: Duration,
    /// The data members brought to the generation, by member (empty if
    /// nobody brought any). `None` if the wait passed on the coordinator's
    /// published state without reading the release notice (a wait that
    /// asked to [`gather`](WaitOptions::gather) fails then instead).
    pub data: Option<BTreeMap<String, String>>,
    /// The members a quorum release went on without (empty if it dropped
    /// nobody): they are members no more, and every member learns the same
    /// list. `None` if the wait passed on the published state without
    /// reading the release notice.
    pub dropped: Option<Vec<String>>,
}

/// What a wait brings and asks for besides the arrival.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitOptions {
    /// Give up after this long.
    pub timeout: Option<Duration>,
    /// Data for the others: every member receives what each brought with
    /// the release ([`Released::data`]). Its size in the notice is limited
    /// to what SQS's largest message leaves each member
    /// ([`sqs_barrier_core::wire::data_limit`]); a larger one fails before
    /// anything is sent.
    pub data: Option<String>,
    /// Fail with [`Error::GatherLost`] rather than pass without the
    /// gathered data.
    pub gather: bool,
    /// This is the member's last phase: no later phase expects it.
    pub leave: bool,
}

impl WaitOptions {
    /// Options with a timeout.
    pub fn timeout(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            ..Self::default()
        }
    }

    /// Brings `data` to the barrier (and asks for everyone's).
    pub fn with_data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self.gather = true;
        self
    }

    /// Asks for the data the others bring, bringing none.
    pub fn gather(mut self) -> Self {
        self.gather = true;
        self
    }

    /// Leaves the barrier after this phase's release.
    pub fn leaving(mut self) -> Self {
        self.leave = true;
        self
    }
}

impl Barrier {
    /// Connects `member` to barrier `name`, reading its configuration.
    pub async fn connect(sqs: &Sqs, name: &str, member: &str) -> Result<Self> {
        Self::connect_with(sqs, name, member, ParticipantOptions::default()).await
    }

    /// [`Self::connect`] with explicit participant tunables.
    pub async fn connect_with(
        sqs: &Sqs,
        name: &str,
        member: &str,
        opts: ParticipantOptions,
    ) -> Result<Self> {
        let info = admin::open(sqs, name).await?;
        // Validate membership now, not at the first wait. A member that
        // joined is in the published roll, not in the configuration.
        let roll = match &info.state {
            Some(st) => st.roll(&info.config.members),
            None => Roll::new(info.config.members.clone()),
        };
        Participant::with_roll(&info.config, roll.clone(), member, "", opts.clone())?;
        Ok(Self::from_parts(sqs, info, roll, member, opts))
    }

    pub(crate) fn from_parts(
        sqs: &Sqs,
        info: BarrierInfo,
        roll: Roll,
        member: &str,
        opts: ParticipantOptions,
    ) -> Self {
        let (abort_tx, _) = watch::channel(None);
        Self {
            inner: Arc::new(Inner {
                sqs: sqs.clone(),
                info,
                member: member.to_owned(),
                session: format!("{:016x}", rand::random::<u64>()),
                roll,
                opts,
                phase: Mutex::new(Phase::default()),
                waits: AtomicU64::new(0),
                abort_tx,
            }),
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The barrier's configuration.
    pub fn config(&self) -> &BarrierConfig {
        &self.inner.info.config
    }

    /// This member's name.
    pub fn member(&self) -> &str {
        &self.inner.member
    }

    /// The generation the next [`wait`](Self::wait) or
    /// [`arrive`](Self::arrive) arrives at (0 for a new handle).
    pub fn next_phase(&self) -> u64 {
        self.inner.phase.lock().expect("phase lock").next
    }

    /// Sets the next generation, e.g. to resume after a restart.
    pub fn set_next_phase(&self, generation: u64) {
        self.inner.phase.lock().expect("phase lock").next = generation;
    }

    /// Arrives at the next generation and waits until everyone has, or
    /// until `timeout`.
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<Released> {
        self.arrive(timeout).await?.await
    }

    /// [`Self::wait`] bringing data, leaving, or asking for the data the
    /// others bring (see [`WaitOptions`]).
    pub async fn wait_with(&self, opts: WaitOptions) -> Result<Released> {
        self.arrive_with(opts).await?.await
    }

    /// Arrives at the next generation now (the check-in is sent when this
    /// returns) and returns a future that resolves when the generation is
    /// released. See [`Self::arrive_with`].
    pub async fn arrive(&self, timeout: Option<Duration>) -> Result<Arrival> {
        self.arrive_with(WaitOptions::timeout(timeout)).await
    }

    /// Arrives at the next generation now (the check-in is sent when this
    /// returns) and returns a future that resolves when the generation is
    /// released. The wait runs in a background task from here on, so
    /// awaiting the [`Arrival`] late loses nothing; dropping it cancels the
    /// wait.
    pub async fn arrive_with(&self, opts: WaitOptions) -> Result<Arrival> {
        let WaitOptions {
            timeout,
            data,
            gather,
            leave,
        } = opts;
        // Each wait is a session of its own: a wait re-run after a timeout or
        // a crash is then told from a redelivery of the earlier check-in.
        let waits = self.inner.waits.fetch_add(1, Ordering::Relaxed);
        let generation = {
            let mut ph = self.inner.phase.lock().expect("phase lock");
            if let Some((g, _)) = ph.waiting {
                return Err(
                    sqs_barrier_core::participant::ParticipantError::AlreadyWaiting(g).into(),
                );
            }
            if let Some(e) = self.not_expected(&ph) {
                return Err(e);
            }
            ph.waiting = Some((ph.next, waits));
            ph.next
        };
        // Ends the wait on this handle however it ends: an error here, this
        // future dropped while the check-in is sent, the task returning, or
        // the task aborted because the `Arrival` was dropped.
        let mut guard = WaitGuard {
            barrier: self.clone(),
            generation,
            wait: waits,
            released: false,
        };
        let started = Instant::now();
        let mut p = Participant::with_roll(
            &self.inner.info.config,
            self.inner.roll.clone(),
            &self.inner.member,
            format!("{}.{waits}", self.inner.session),
            self.inner.opts.clone(),
        )?;
        let arrival = core_p::ArrivalExtras { leave, data };
        p.arrive_with(generation, timeout, arrival, mono_now())?;
        // The check-in goes out before `arrive` returns.
        flush(&self.inner, &mut p).await?;
        let abort_rx = self.inner.abort_tx.subscribe();
        let task = tokio::spawn(async move {
            let r = drive(&guard.barrier.inner, &mut p, generation, timeout, abort_rx).await;
            guard.released = r.is_ok();
            if r.is_ok() && leave {
                guard
                    .barrier
                    .inner
                    .phase
                    .lock()
                    .expect("phase lock")
                    .left_after = Some(generation);
            }
            drop(guard);
            let (generation, data, dropped) = r?;
            if gather && data.is_none() {
                return Err(Error::GatherLost {
                    barrier: p.barrier().to_owned(),
                    generation,
                });
            }
            Ok(Released {
                generation,
                waited: started.elapsed(),
                data,
                dropped,
            })
        });
        Ok(Arrival {
            generation,
            wait: waits,
            barrier: self.clone(),
            task,
        })
    }

    /// Why the next phase does not expect this member, if it does not: it
    /// left, or a quorum release dropped it, as the handle knows (the
    /// published state read when it connected, or its own leave). A phase
    /// that does not expect it would not wait for it, so passing it would
    /// be no barrier at all.
    pub(crate) fn not_expected(&self, ph: &Phase) -> Option<Error> {
        let roll = &self.inner.roll;
        let gone = roll
            .index_of(&self.inner.member)
            .filter(|i| !roll.expects(*i, ph.next))
            .map(|i| roll.span(i).end.unwrap_or(ph.next));
        let since = ph.left_after.map(|l| l + 1).or(gone)?;
        Some(Error::NotExpected {
            barrier: self.inner.info.config.name.clone(),
            member: self.inner.member.clone(),
            generation: ph.next,
            since,
        })
    }

    /// Ends wait number `wait` (at `generation`) on this handle, unless it
    /// was ended already (a dropped `Arrival` ends its wait at once).
    fn finish(&self, generation: u64, wait: u64, released: bool) {
        let mut ph = self.inner.phase.lock().expect("phase lock");
        if ph.waiting == Some((generation, wait)) {
            ph.waiting = None;
            if released {
                ph.next = generation + 1;
            }
        }
    }

    /// Breaks the barrier for everyone waiting at this member's current
    /// generation (or its next one, if it is not waiting). A wait of this
    /// handle under way ends with [`Error::Broken`].
    pub async fn abort(&self, reason: &str) -> Result<()> {
        let generation = {
            let ph = self.inner.phase.lock().expect("phase lock");
            ph.waiting.map_or(ph.next, |(g, _)| g)
        };
        let cfg = &self.inner.info.config;
        let body = Message::Abort {
            barrier: cfg.name.clone(),
            instance: cfg.instance.clone(),
            generation: Some(generation),
            by: self.inner.member.clone(),
            reason: reason.to_owned(),
        }
        .encode();
        send_checkin(&self.inner.sqs, &self.inner.info, &body, "abort").await?;
        self.inner.abort_tx.send_replace(Some(reason.to_owned()));
        Ok(())
    }
}

/// Aborts barrier `name` as an operator (not a member): everyone waiting at
/// the current generation gets [`Error::Broken`] naming `by` and `reason`.
pub async fn abort_barrier(sqs: &Sqs, name: &str, by: &str, reason: &str) -> Result<()> {
    let info = admin::open(sqs, name).await?;
    let body = Message::Abort {
        barrier: info.config.name.clone(),
        instance: info.config.instance.clone(),
        generation: None,
        by: by.to_owned(),
        reason: reason.to_owned(),
    }
    .encode();
    send_checkin(sqs, &info, &body, "abort").await
}

/// Marks the end of a wait on its handle when dropped.
struct WaitGuard {
    barrier: Barrier,
    generation: u64,
    wait: u64,
    released: bool,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.barrier
            .finish(self.generation, self.wait, self.released);
    }
}

/// A wait under way; resolves when its generation is released.
///
/// The wait runs in a background task, so awaiting the `Arrival` late loses
/// nothing. Dropping it cancels the wait, as a crash of the member would:
/// the check-in stays counted, the member takes no notice copy, and the
/// handle can arrive at the same generation again (see
/// [`Barrier::set_next_phase`]).
#[derive(Debug)]
#[must_use = "dropping an arrival cancels the wait"]
pub struct Arrival {
    generation: u64,
    wait: u64,
    barrier: Barrier,
    task: tokio::task::JoinHandle<Result<Released>>,
}

impl Drop for Arrival {
    fn drop(&mut self) {
        // A wait that has ended is unaffected; one under way stops at its
        // next await point (an unfinished long poll is abandoned, so it takes
        // no notice copy from the others), and the handle may arrive again
        // at once.
        self.task.abort();
        self.barrier.finish(self.generation, self.wait, false);
    }
}

impl Arrival {
    /// The generation arrived at.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the wait has ended (awaiting it will not block).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Future for Arrival {
    type Output = Result<Released>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Cancelled)))
    }
}

/// Sends the check-ins (and aborts) the core asks for. Returns whether it
/// also asks for a status read, which the caller runs beside its long poll.
async fn flush(inner: &Inner, p: &mut Participant) -> Result<bool> {
    let mut query = false;
    while let Some(t) = p.poll_transmit() {
        match t {
            Transmit::Send(body) => {
                let generation = p.waiting_at().unwrap_or(0);
                let group = format!("{}.{generation}", inner.session);
                send_checkin(&inner.sqs, &inner.info, &body, &group).await?;
                tracing::trace!(member = %inner.member, generation, "check-in sent");
            }
            Transmit::QueryStatus => query = true,
        }
    }
    Ok(query)
}

/// A status read under way beside a long poll.
type StatusRead<'a> = Pin<Box<dyn Future<Output = Result<Option<PublishedState>>> + Send + 'a>>;

/// Feeds the result of a status read to the core.
fn status_read(p: &mut Participant, read: Result<Option<PublishedState>>) -> Result<()> {
    match read {
        Ok(state) => p.handle_status(state.as_ref(), mono_now()),
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, "could not read the coordinator's state");
            p.handle_status_failed(mono_now());
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// What a released wait learned: the generation, the data gathered, the
/// members dropped (see [`Released`]).
type Passed = (u64, Option<BTreeMap<String, String>>, Option<Vec<String>>);

async fn drive(
    inner: &Inner,
    p: &mut Participant,
    generation: u64,
    timeout: Option<Duration>,
    mut abort_rx: watch::Receiver<Option<String>>,
) -> Result<Passed> {
    let cfg = &inner.info.config;
    let queue = inner.info.urls.release_for(generation).to_owned();
    // Transient SQS failures are retried while the wait lasts, but not for
    // longer than a coordinator may stay silent: then the error is reported.
    let mut failing_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(100);
    let mut pause: Option<Duration> = None;
    loop {
        let step = wait_step(inner, p, &queue, &mut abort_rx, &mut pause).await;
        match step {
            Ok(Some(outcome)) => {
                return outcome_to_result(cfg, &inner.member, outcome, timeout);
            }
            Ok(None) => {
                failing_since = None;
                backoff = Duration::from_millis(100);
            }
            Err(e) if e.is_transient() => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                // Throttling says the endpoint works, only not this fast:
                // it is retried for as long as the wait's own timeout
                // allows (the core ends the wait then). Other failures end
                // it once a coordinator could have been judged silent.
                if since.elapsed() >= inner.opts.silence_after && !e.is_throttled() {
                    return Err(e);
                }
                // Full jitter: waits throttled together retry apart.
                let pause = backoff.mul_f64(rand::random::<f64>());
                tracing::warn!(error = %e, retry_in = ?pause, "SQS request failed while waiting");
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                p.handle_timeout(mono_now());
            }
            Err(Error::Cancelled) => {
                let reason = abort_rx.borrow().clone().unwrap_or_default();
                return Err(Error::Broken {
                    barrier: cfg.name.clone(),
                    generation,
                    cause: BreakCause::Aborted {
                        by: inner.member.clone(),
                        reason,
                    },
                    missing: Vec::new(),
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// One round of the wait: send what is due, long-poll once (reading the
/// published state beside the poll when a status read is due), fire
/// timers. `Ok(Some(_))` when the wait has ended; `Err(Error::Cancelled)`
/// on abort.
///
/// The long poll lasts 20 s (SQS's longest) unless the wait's own timeout
/// comes first: status reads never cut it short, so a waiting participant
/// costs three receives a minute plus its status reads. It reads with a
/// visibility timeout of 0, up to ten messages: the notice it waits for is
/// read by every participant and hidden from none. `pause` is the wait
/// before the next receive after answers with nothing for this wait.
async fn wait_step(
    inner: &Inner,
    p: &mut Participant,
    queue: &str,
    abort_rx: &mut watch::Receiver<Option<String>>,
    pause: &mut Option<Duration>,
) -> Result<Option<Outcome>> {
    let query = flush(inner, p).await?;
    if let Some(outcome) = p.poll_event() {
        return Ok(Some(outcome));
    }
    let now = mono_now();
    if p.poll_timeout().is_some_and(|t| t <= now) && !query {
        p.handle_timeout(now);
        return Ok(None);
    }
    if p.is_timing_out()
        || p.poll_deadline()
            .is_some_and(|t| t <= now + Duration::from_secs(1))
    {
        // Timing out (or about to): no new long poll, only the status read
        // that names the missing members, bounded by the core's grace.
        if query {
            let read = admin::read_state(&inner.sqs, &inner.info).await;
            status_read(p, read)?;
        } else if let Some(t) = p.poll_deadline() {
            tokio::time::sleep(t.saturating_sub(now)).await;
        }
        p.handle_timeout(mono_now());
        return Ok(p.poll_event());
    }
    let wait = p
        .poll_deadline()
        .map_or(20, |t| t.saturating_sub(now).as_secs().clamp(1, 20)) as i32;
    let paused = *pause;
    let receive = async {
        if let Some(d) = paused.filter(|d| !d.is_zero()) {
            tokio::time::sleep(d).await;
        }
        inner
            .sqs
            .client()
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(wait)
            .send()
            .await
    };
    tokio::pin!(receive);
    let read_state = || -> StatusRead<'_> { Box::pin(admin::read_state(&inner.sqs, &inner.info)) };
    let mut reading = query.then(read_state);
    // Status reads run beside the receive, each when it is due; a re-send
    // one calls for goes out at once. Nothing is taken from the queue, so
    // the receive may be abandoned whenever the wait ends.
    let out = loop {
        let now = mono_now();
        let next_timer = p
            .poll_timeout()
            .map_or(Duration::from_secs(20), |t| t.saturating_sub(now));
        tokio::select! {
            r = &mut receive => break r.map_err(|e| inner.sqs.error("ReceiveMessage", e))?,
            read = async { reading.as_mut().expect("guarded").await }, if reading.is_some() => {
                reading = None;
                status_read(p, read)?;
                if p.waiting_at().is_none() {
                    // The state ended the wait (released, broken, or no
                    // coordinator): report it now rather than after the poll.
                    return Ok(p.poll_event());
                }
                if flush(inner, p).await? {
                    reading = Some(read_state());
                }
            }
            _ = tokio::time::sleep(next_timer), if reading.is_none() => {
                p.handle_timeout(mono_now());
                if flush(inner, p).await? {
                    reading = Some(read_state());
                }
            }
            _ = abort_rx.changed() => return Err(Error::Cancelled),
        }
    };
    let messages = out.messages.unwrap_or_default();
    let mut old = Vec::new();
    let mut accepted = false;
    for m in &messages {
        let body = m.body.as_deref().unwrap_or_default();
        tracing::trace!(member = %inner.member, %body, "notice read");
        let verdict = p.handle_notice(body);
        if let Notice::Foreign(why) = &verdict {
            tracing::warn!(queue = %queue, %why, "deleting a foreign message on a release queue");
        }
        accepted |= verdict == Notice::Accepted;
        if verdict.deletable()
            && let Some(h) = &m.receipt_handle
        {
            old.push(h.clone());
        }
    }
    *pause = if messages.is_empty() || accepted {
        None
    } else if paused.is_none() && old.len() == messages.len() {
        // Only old notices, deleted just below, after an answer that was
        // not like this: the usual case is a receive sent right after this
        // member's previous release, before the coordinator's sweep of this
        // queue. Receive again at once; should they come back (SQS ignored
        // the delete), pause from then on.
        Some(Duration::ZERO)
    } else {
        // Only messages for others: do not spin on them.
        Some(paused.map_or(STALE_PAUSE, |d| (d * 2).clamp(STALE_PAUSE, STALE_PAUSE_MAX)))
    };
    if !old.is_empty() && !accepted {
        // Nobody needs them (the coordinator's sweep should have removed
        // them; this one raced it, or the sweep missed). Best effort: SQS
        // may ignore a delete whose receipt handle is not the latest.
        delete_old(inner, queue, old).await;
    }
    p.handle_timeout(mono_now());
    Ok(p.poll_event())
}

/// Deletes messages nobody needs from a release queue; failures are only
/// logged (they expire within 60 s).
async fn delete_old(inner: &Inner, queue: &str, mut handles: Vec<String>) {
    handles.truncate(10);
    if let Err(e) = inner.sqs.delete_batch(queue, &handles).await {
        tracing::debug!(queue = %queue, error = %e, "could not delete an old notice");
    }
}

fn outcome_to_result(
    cfg: &BarrierConfig,
    member: &str,
    o: Outcome,
    timeout: Option<Duration>,
) -> Result<Passed> {
    let barrier = cfg.name.clone();
    match o {
        Outcome::Released {
            generation,
            data,
            dropped,
        } => Ok((generation, data, dropped)),
        Outcome::Dropped { generation, since } => Err(Error::NotExpected {
            barrier,
            member: member.to_owned(),
            generation,
            since,
        }),
        Outcome::Broken {
            generation,
            cause,
            missing,
            ..
        } => Err(Error::Broken {
            barrier,
            generation,
            cause,
            missing,
        }),
        Outcome::TimedOut {
            generation,
            missing,
            ..
        } => Err(Error::TimedOut {
            barrier,
            generation,
            timeout: timeout.unwrap_or_default(),
            missing,
        }),
        Outcome::CoordinatorSilent {
            generation,
            last_heartbeat_ms,
            silent_for,
        } => Err(Error::CoordinatorSilent {
            barrier,
            generation,
            last_heartbeat_ms,
            silent_for,
        }),
        _ => Err(Error::Cancelled),
    }
}
