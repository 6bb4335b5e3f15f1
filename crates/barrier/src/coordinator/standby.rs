//! The coordinator while it is not active: opening the barrier at its
//! start, and standing by (the core's [`Standby`] machine driven over SQS)
//! until it should take over.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use sqs_barrier_core::standby::{Event as StandbyEvent, Standby, Transmit as StandbyTransmit};
use sqs_barrier_core::state::PublishedState;

use super::CoordinatorOptions;
use crate::admin::{self, BarrierInfo};
use crate::checkin::send_checkin;
use crate::clock::mono_now;
use crate::error::Result;
use crate::lease::Keeper;
use crate::published;
use crate::sqs::Sqs;

/// How long a coordinator that cannot reach SQS at its start tries again
/// before it gives up: a supervisor that starts it with the network, or
/// right after a brief outage, should not see it fail.
const START_PATIENCE: Duration = Duration::from_secs(10);

/// `op`, tried again with backoff for up to [`START_PATIENCE`] while the
/// failure is transient; `what` names it in the log.
async fn patiently<T, F, Fut>(what: &str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        match op().await {
            Err(e) if e.is_transient() && started.elapsed() + backoff < START_PATIENCE => {
                tracing::warn!(error = %e, retry_in = ?backoff, "could not {what}; trying again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// [`admin::open_stored`], [`patiently`].
pub(super) async fn open_patiently(sqs: &Sqs, name: &str) -> Result<BarrierInfo> {
    patiently("open the barrier", || admin::open_stored(sqs, name)).await
}

/// How long a coordinator that takes over waits for the lease token before
/// it puts a new one: the lease's term (a dead holder's token comes back
/// by then) and a margin. A token put while another coordinator holds one
/// changes nothing (see [`crate::lease`]).
const TOKEN_MISSING_AFTER: Duration = Duration::from_secs(15);

/// Takes the lease: waits until the token is received (a live holder's
/// lease must run out first), or `None` on shutdown.
pub(super) async fn take_lease<S: Future<Output = ()>>(
    sqs: &Sqs,
    info: &BarrierInfo,
    mut shutdown: Pin<&mut S>,
) -> Result<Option<Keeper>> {
    let url = &info.urls.lease;
    let base = format!("token-{}", info.config.instance);
    // At once if nobody holds it.
    let quick = crate::lease::wait_for(sqs, url, Some(Duration::ZERO), None, &base);
    if let Some(k) = quick.await? {
        return Ok(Some(k));
    }
    tracing::info!(
        barrier = %info.config.name,
        "waiting for the coordinator lease: the last coordinator's runs out within 10 s of its last extension"
    );
    tokio::select! {
        _ = shutdown.as_mut() => Ok(None),
        k = crate::lease::wait_for(sqs, url, None, Some(TOKEN_MISSING_AFTER), &base) => k,
    }
}

/// The published state, read [`patiently`].
pub(super) async fn read_patiently(
    sqs: &Sqs,
    info: &BarrierInfo,
) -> Result<Option<PublishedState>> {
    patiently("read the published state", || {
        published::read_state(sqs, info)
    })
    .await
}

/// Stands by until this process should coordinate: returns the published
/// state to start from, or `None` on shutdown.
pub(super) async fn stand_by<S: Future<Output = ()>>(
    sqs: &Sqs,
    info: &BarrierInfo,
    id: &str,
    opts: &CoordinatorOptions,
    force: bool,
    mut shutdown: Pin<&mut S>,
) -> Result<Option<Option<PublishedState>>> {
    let name = &info.config.name;
    let mut sopts = opts.standby.clone();
    sopts.force = force;
    let mut sb = Standby::new(&info.config, id, sopts, mono_now());
    let mut best: Option<PublishedState> = None;
    loop {
        while let Some(t) = sb.poll_transmit() {
            match t {
                StandbyTransmit::ReadState => match published::read_state(sqs, info).await {
                    Ok(state) => {
                        // The newest state ever read: a read that found
                        // nothing (a writer replacing the records) must not
                        // make a successor start from nothing, below a term
                        // readers have seen.
                        if let Some(s) = &state
                            && best.as_ref().is_none_or(|b| s.order() > b.order())
                        {
                            best = Some(s.clone());
                        }
                        sb.handle_state(state, mono_now())
                    }
                    Err(e) if e.is_transient() => {
                        tracing::warn!(error = %e, "standby: could not read the coordinator's state");
                        sb.handle_read_failed(mono_now());
                    }
                    Err(e) => return Err(e),
                },
                StandbyTransmit::Probe(body) => {
                    let group = format!("probe.{id}");
                    match send_checkin(sqs, info, &body, &group).await {
                        Ok(()) => {}
                        Err(e) if e.is_transient() => {
                            tracing::warn!(error = %e, "standby: could not send a probe")
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        while let Some(e) = sb.poll_event() {
            match e {
                StandbyEvent::StandingBy { active } => tracing::info!(
                    barrier = %name,
                    coordinator = %id,
                    %active,
                    "standing by: another coordinator is alive; taking over when it is gone"
                ),
                StandbyEvent::TakeOver {
                    reason,
                    from,
                    state,
                } => {
                    tracing::info!(
                        barrier = %name,
                        coordinator = %id,
                        from = from.as_deref().unwrap_or("-"),
                        %reason,
                        "coordinator active"
                    );
                    let state = match (state.map(|s| *s), best.take()) {
                        (Some(s), Some(b)) => Some(if b.order() > s.order() { b } else { s }),
                        (s, b) => s.or(b),
                    };
                    return Ok(Some(state));
                }
                _ => {}
            }
        }
        let wake = sb
            .poll_timeout()
            .map_or(Duration::from_secs(1), |t| t.saturating_sub(mono_now()));
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(None),
            _ = tokio::time::sleep(wake) => {}
        }
        sb.handle_timeout(mono_now());
    }
}
