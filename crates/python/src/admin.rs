//! The module's functions: setup, teardown, status, abort, run_coordinator.

use pyo3::prelude::*;
use sqs_barrier::core::ConfigError;
use sqs_barrier::{CoordinatorOptions, Error, admin};
use tokio::sync::oneshot;

use crate::{SIGNAL_SLICE, connect, errors, run, runtime, seconds};

/// Creates barrier `name` for `parties` members (idempotent).
///
/// Members are named "0" .. "parties-1" unless `members` names them. With
/// `deadline` (seconds), a phase breaks when that long has passed since its
/// first check-in and someone is still missing. `fifo` makes the check-in
/// queue a FIFO queue.
///
/// `quorum` (K) with `grace` (seconds), both or neither: a phase is
/// released once at least K members have arrived and `grace` seconds
/// have passed since the K-th, without the others. Those are named in the
/// release and are members no more: a late one's wait raises NotExpected
/// rather than pass (it may take part again with Barrier.join()).
///
/// Returns True if it was created, False if it already existed with the
/// same settings; raises BarrierError if it exists with other settings,
/// ConfigError for settings that cannot be.
#[pyfunction]
#[pyo3(signature = (name, parties, *, members=None, deadline=None, fifo=false, quorum=None, grace=None, endpoint_url=None, region=None, profile=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn setup(
    py: Python<'_>,
    name: &str,
    parties: usize,
    members: Option<Vec<String>>,
    deadline: Option<f64>,
    fifo: bool,
    quorum: Option<usize>,
    grace: Option<f64>,
    endpoint_url: Option<String>,
    region: Option<String>,
    profile: Option<String>,
) -> PyResult<bool> {
    let mut opts = admin::SetupOptions::new(parties);
    opts.members = members;
    opts.deadline = seconds(deadline, "deadline")?;
    opts.fifo = fifo;
    opts.quorum = match (quorum, seconds(grace, "grace")?) {
        (Some(min), Some(grace)) => Some((min, grace)),
        (None, None) => None,
        _ => {
            let e = Error::Config(ConfigError::Invalid(
                "quorum and grace go together: give both or neither".into(),
            ));
            return Err(errors::to_py(py, &e));
        }
    };
    let sqs = connect(py, endpoint_url, region, profile)?;
    let out = run(py, async move { admin::setup(&sqs, name, &opts).await })?;
    Ok(out.created)
}

/// Deletes barrier `name`'s queues; returns the names of the queues
/// deleted (empty if there was nothing to delete). SQS allows these names
/// again only 60 s after deletion.
#[pyfunction]
#[pyo3(signature = (name, *, endpoint_url=None, region=None, profile=None))]
pub(crate) fn teardown(
    py: Python<'_>,
    name: &str,
    endpoint_url: Option<String>,
    region: Option<String>,
    profile: Option<String>,
) -> PyResult<Vec<String>> {
    let sqs = connect(py, endpoint_url, region, profile)?;
    run(py, async move { admin::teardown(&sqs, name).await })
}

/// The status of barrier `name` as a dict, with the fields that
/// `sqs-barrier status --json` prints: phase ("generation"), who has
/// arrived and who is missing, whether a coordinator is alive, whether the
/// barrier is broken, the quorum ({"min", "grace_secs"} or None), and
/// "members_by_phase": who is expected from which phase on, as members
/// join, leave or are dropped by quorum releases, a list of
/// {"from_phase": int, "members": [str]} from the current phase on, the
/// last entry holding for every later phase. With `probe` (the default) it
/// asks the coordinator to answer, which takes up to 3 s; probe=False
/// judges by the heartbeat's age on this host's clock.
#[pyfunction]
#[pyo3(signature = (name, *, probe=true, endpoint_url=None, region=None, profile=None))]
pub(crate) fn status(
    py: Python<'_>,
    name: &str,
    probe: bool,
    endpoint_url: Option<String>,
    region: Option<String>,
    profile: Option<String>,
) -> PyResult<Py<PyAny>> {
    let sqs = connect(py, endpoint_url, region, profile)?;
    let st = run(
        py,
        async move { admin::status_with(&sqs, name, probe).await },
    )?;
    let text = st.to_json().to_string();
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// Aborts barrier `name` as an operator: every member waiting at the
/// current phase gets Broken, naming `by` and `reason`.
#[pyfunction]
#[pyo3(signature = (name, reason, *, by="operator", endpoint_url=None, region=None, profile=None))]
pub(crate) fn abort(
    py: Python<'_>,
    name: &str,
    reason: &str,
    by: &str,
    endpoint_url: Option<String>,
    region: Option<String>,
    profile: Option<String>,
) -> PyResult<()> {
    let sqs = connect(py, endpoint_url, region, profile)?;
    run(py, async move {
        sqs_barrier::abort_barrier(&sqs, name, by, reason).await
    })
}

/// Runs the coordinator of barrier `name` until it is stopped; blocks.
///
/// Stops cleanly, as `sqs-barrier coordinator` does on SIGINT or SIGTERM
/// (the check-ins it holds are handed back and a last state marked
/// "stopped" is published, so that a successor takes over at once), when
/// `stop` is set (any object with an is_set() method, e.g. a
/// threading.Event, looked at every 50 ms) and then returns None, or on
/// Ctrl-C in the main thread, after which it raises KeyboardInterrupt. A
/// second Ctrl-C during the clean stop abandons it.
///
/// Like the command it never refuses to start: while another coordinator
/// is active it stands by and takes over when that one is gone. `force`
/// takes over at once. Raises NotSetUp or EndpointError on a permanent
/// error.
#[pyfunction]
#[pyo3(signature = (name, *, stop=None, force=false, endpoint_url=None, region=None, profile=None))]
pub(crate) fn run_coordinator(
    py: Python<'_>,
    name: &str,
    stop: Option<Bound<'_, PyAny>>,
    force: bool,
    endpoint_url: Option<String>,
    region: Option<String>,
    profile: Option<String>,
) -> PyResult<()> {
    let sqs = connect(py, endpoint_url, region, profile)?;
    let mut opts = CoordinatorOptions::default();
    opts.force = force;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stop_rx.await;
    };
    let mut coordinator = std::pin::pin!(sqs_barrier::run_coordinator(
        &sqs, name, opts, None, shutdown
    ));
    let mut stop_tx = Some(stop_tx);
    let mut interrupted: Option<PyErr> = None;
    let result = loop {
        let slice = py.detach(|| {
            runtime()
                .block_on(async { tokio::time::timeout(SIGNAL_SLICE, coordinator.as_mut()).await })
        });
        if let Ok(result) = slice {
            break result;
        }
        let stop_now = match py.check_signals() {
            Err(signal) => {
                if stop_tx.is_none() {
                    // A second Ctrl-C: give up the clean stop.
                    return Err(signal);
                }
                interrupted = Some(signal);
                true
            }
            Ok(()) => match &stop {
                Some(stop) if stop_tx.is_some() => stop.call_method0("is_set")?.is_truthy()?,
                _ => false,
            },
        };
        if stop_now && let Some(tx) = stop_tx.take() {
            let _ = tx.send(());
        }
    };
    result.map_err(|e| errors::to_py(py, &e))?;
    match interrupted {
        Some(signal) => Err(signal),
        None => Ok(()),
    }
}
