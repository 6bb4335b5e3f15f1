//! `Barrier` and `Arrival`: a member's handle and a wait under way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;
use sqs_barrier::core::participant::ParticipantOptions;
use sqs_barrier::{Error, Released, WaitOptions};
use tokio::sync::watch;

use crate::{block_on, connect, errors, run, runtime, seconds};

/// The `Released` named tuple of the package for `r`.
fn released(py: Python<'_>, r: Released) -> PyResult<Py<PyAny>> {
    let class = py.import("sqs_barrier._types")?.getattr("Released")?;
    Ok(class
        .call1((r.generation, r.waited.as_secs_f64(), r.data, r.dropped))?
        .unbind())
}

/// The library's options for a wait from the keywords of wait() and
/// arrive(). A payload asks for everyone's too, as in the library.
fn wait_options(
    timeout: Option<f64>,
    payload: Option<String>,
    gather: bool,
    leave: bool,
) -> PyResult<WaitOptions> {
    let mut opts = WaitOptions::timeout(seconds(timeout, "timeout")?);
    if let Some(payload) = payload {
        opts = opts.with_data(payload);
    }
    if gather {
        opts = opts.gather();
    }
    if leave {
        opts = opts.leaving();
    }
    Ok(opts)
}

/// A member's handle on a barrier.
///
/// Barrier(name, member, *, endpoint_url=None, region=None, profile=None,
///         silence=60.0, status_interval=120.0)
///
/// Reads the barrier's configuration from SQS and checks that `member` is
/// one of its members. Keywords left out come from the standard AWS
/// configuration (AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, the shared
/// config and credentials files, the default credential chain), exactly as
/// for the `sqs-barrier` command.
///
/// `silence` and `status_interval` are those of `sqs-barrier wait`: a wait
/// raises CoordinatorSilent when the coordinator published nothing new for
/// `silence` seconds, and it reads the coordinator's published state every
/// `status_interval` seconds (the first read that long after arriving),
/// which also makes it send its check-in again if SQS lost it, and pass if
/// its phase was released while the release notice went missing.
///
/// Each wait() or arrive() arrives at the next phase (0 first). Raises
/// NotSetUp if the barrier does not exist, ConfigError if `member` is not
/// one of its members, EndpointError if SQS cannot be reached.
///
/// Barrier.join(name) makes a new member of a running barrier instead.
#[pyclass(module = "sqs_barrier", frozen)]
pub(crate) struct Barrier {
    inner: sqs_barrier::Barrier,
    /// The first phase that expects the member, for a handle from join().
    first_phase: Option<u64>,
}

impl Barrier {
    /// The library's `arrive`, in a task of its own, so that Ctrl-C during
    /// the check-in never drops it half done: the interrupted call returns
    /// at once, the task completes the arrival and drops the `Arrival`,
    /// which cancels the wait and frees the handle to arrive again.
    fn arrive_whole(&self, py: Python<'_>, opts: WaitOptions) -> PyResult<sqs_barrier::Arrival> {
        let barrier = self.inner.clone();
        let task = runtime().spawn(async move { barrier.arrive_with(opts).await });
        match block_on(py, task)? {
            Ok(arrived) => arrived.map_err(|e| errors::to_py(py, &e)),
            Err(_) => Err(errors::to_py(py, &Error::Cancelled)),
        }
    }
}

#[pymethods]
impl Barrier {
    #[new]
    #[pyo3(signature = (name, member, *, endpoint_url=None, region=None, profile=None, silence=60.0, status_interval=120.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: &str,
        member: &str,
        endpoint_url: Option<String>,
        region: Option<String>,
        profile: Option<String>,
        silence: f64,
        status_interval: f64,
    ) -> PyResult<Self> {
        let mut opts = ParticipantOptions::default();
        opts.silence_after = seconds(Some(silence), "silence")?.unwrap_or(opts.silence_after);
        opts.status_interval = seconds(Some(status_interval), "status_interval")?
            .unwrap_or(opts.status_interval)
            .max(Duration::from_millis(100));
        let sqs = connect(py, endpoint_url, region, profile)?;
        let inner = run(
            py,
            sqs_barrier::Barrier::connect_with(&sqs, name, member, opts),
        )?;
        Ok(Self {
            inner,
            first_phase: None,
        })
    }

    /// Joins barrier `name` as a new member and returns its handle.
    ///
    /// Barrier.join(name, member=None, *, timeout=30.0, endpoint_url=None,
    ///              region=None, profile=None) -> Barrier
    ///
    /// `member` is the name to join as; on a numbered barrier (members "0"
    /// .. "N-1") None takes the next number. The coordinator counts the
    /// join: the member is expected from the first phase that has no
    /// arrival counted by then, which is the handle's `phase` (and
    /// `first_phase`) when this returns; its `member` is the name it got.
    /// From that phase on the barrier waits for it.
    ///
    /// Blocks until the coordinator has published the join, at most
    /// `timeout` seconds. Raises JoinError if the name is a member already
    /// or unusable, if the barrier names its members and `member` is None,
    /// if the barrier has no room, or if no coordinator counted the join
    /// in time; NotSetUp or EndpointError as Barrier() does. Ctrl-C raises
    /// KeyboardInterrupt; a join already sent may still be counted.
    ///
    /// The handle uses the default `silence` and `status_interval`.
    #[staticmethod]
    #[pyo3(signature = (name, member=None, *, timeout=30.0, endpoint_url=None, region=None, profile=None))]
    fn join(
        py: Python<'_>,
        name: &str,
        member: Option<&str>,
        timeout: f64,
        endpoint_url: Option<String>,
        region: Option<String>,
        profile: Option<String>,
    ) -> PyResult<Self> {
        let timeout = seconds(Some(timeout), "timeout")?.unwrap_or_default();
        let sqs = connect(py, endpoint_url, region, profile)?;
        let joined = run(py, sqs_barrier::Barrier::join(&sqs, name, member, timeout))?;
        Ok(Self {
            inner: joined.barrier,
            first_phase: Some(joined.first_phase),
        })
    }

    /// The barrier's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.config().name.clone()
    }

    /// This member's name.
    #[getter]
    fn member(&self) -> String {
        self.inner.member().to_owned()
    }

    /// The barrier's members, in order.
    #[getter]
    fn members(&self) -> Vec<String> {
        let members = &self.inner.config().members;
        (0..members.len()).map(|i| members.name(i)).collect()
    }

    /// The phase the next wait() or arrive() arrives at (0 for a new
    /// handle). Set it to resume at a later phase after a restart.
    #[getter]
    fn next_phase(&self) -> u64 {
        self.inner.next_phase()
    }

    #[setter]
    fn set_next_phase(&self, phase: u64) {
        self.inner.set_next_phase(phase);
    }

    /// The first phase that expects this member, for a handle from
    /// Barrier.join(); None for one made by Barrier().
    #[getter]
    fn first_phase(&self) -> Option<u64> {
        self.first_phase
    }

    /// Arrives at the next phase and blocks until every member has arrived
    /// there, or until `timeout` seconds have passed (None: no limit).
    ///
    /// wait(timeout=None, *, payload=None, gather=False, leave=False)
    ///
    /// Returns Released(phase, waited), with the attribute data: the phase
    /// passed, the seconds waited, and the payloads the members brought,
    /// {member: payload}. Raises TimedOut (naming the missing members),
    /// Broken (the barrier was aborted or its deadline passed),
    /// CoordinatorSilent (no live coordinator), NotExpected (this member
    /// left, or a quorum release went on without it) or EndpointError. The
    /// GIL is released while it waits; Ctrl-C raises KeyboardInterrupt
    /// within a fraction of a second and cancels the wait (the check-in
    /// stays counted, as if the process had crashed; the same phase may be
    /// waited at again).
    ///
    /// `payload` (a str) is brought to the phase: every member's
    /// Released.data holds what each brought. It may take about
    /// (1 MiB - 16 KiB) / members bytes (as a JSON string with the
    /// member's name); a larger one raises PayloadTooLarge before anything
    /// is sent. `gather` (implied by a payload) raises GatherLost rather
    /// than pass with data None when the release notice that carries the
    /// payloads expired unread. `leave` makes this the member's last
    /// phase: the wait passes with the others, and no later phase expects
    /// this member (its next wait raises NotExpected).
    #[pyo3(signature = (timeout=None, *, payload=None, gather=false, leave=false))]
    fn wait(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        payload: Option<String>,
        gather: bool,
        leave: bool,
    ) -> PyResult<Py<PyAny>> {
        let opts = wait_options(timeout, payload, gather, leave)?;
        let arrival = self.arrive_whole(py, opts)?;
        // Interrupted, the Arrival is dropped: the wait is cancelled.
        let r = run(py, arrival)?;
        released(py, r)
    }

    /// Arrives at the next phase now (the check-in is sent before this
    /// returns) and returns an Arrival, to wait on later with
    /// Arrival.wait(): work that does not depend on the others may go on
    /// in between. Dropping the Arrival without waiting cancels the wait.
    ///
    /// arrive(timeout=None, *, payload=None, gather=False, leave=False):
    /// the keywords are those of wait(); a payload that is too large
    /// raises PayloadTooLarge here, before anything is sent.
    #[pyo3(signature = (timeout=None, *, payload=None, gather=false, leave=false))]
    fn arrive(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        payload: Option<String>,
        gather: bool,
        leave: bool,
    ) -> PyResult<Arrival> {
        let opts = wait_options(timeout, payload, gather, leave)?;
        Ok(Arrival::spawn(self.arrive_whole(py, opts)?))
    }

    /// wait() for asyncio programs: `released = await barrier.wait_async()`.
    ///
    /// wait_async(timeout=None, *, payload=None, gather=False, leave=False)
    ///
    /// The event loop is not blocked while it waits. Cancelling the task
    /// cancels the wait, as Ctrl-C does for wait().
    #[pyo3(signature = (timeout=None, *, payload=None, gather=false, leave=false))]
    fn wait_async<'py>(
        slf: &Bound<'py, Self>,
        timeout: Option<f64>,
        payload: Option<String>,
        gather: bool,
        leave: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        seconds(timeout, "timeout")?;
        py.import("sqs_barrier._aio")?
            .getattr("barrier_wait")?
            .call1((slf, timeout, payload, gather, leave))
    }

    /// Arrives at the next phase and leaves the barrier, without waiting
    /// for the others: the check-in counts as this member's arrival there,
    /// and no later phase expects it (a later wait raises NotExpected).
    /// Returns the phase arrived at.
    ///
    /// leave(payload=None) -> int
    ///
    /// `payload` is brought to that phase, as with wait(payload=...); one
    /// that is too large raises PayloadTooLarge before anything is sent.
    /// To wait for the phase's release too, use wait(leave=True).
    #[pyo3(signature = (payload=None))]
    fn leave(&self, py: Python<'_>, payload: Option<String>) -> PyResult<u64> {
        // In a task of its own, so that Ctrl-C never leaves it half done.
        let barrier = self.inner.clone();
        let task = runtime().spawn(async move { barrier.leave(payload).await });
        match block_on(py, task)? {
            Ok(left) => left.map_err(|e| errors::to_py(py, &e)),
            Err(_) => Err(errors::to_py(py, &Error::Cancelled)),
        }
    }

    /// Breaks the barrier for every member waiting at this member's current
    /// phase: their waits (and one of this handle under way) raise Broken,
    /// naming this member and `reason`.
    fn abort(&self, py: Python<'_>, reason: &str) -> PyResult<()> {
        run(py, self.inner.abort(reason))
    }

    fn __repr__(&self) -> String {
        format!(
            "Barrier({:?}, {:?}, phase={})",
            self.inner.config().name,
            self.inner.member(),
            self.inner.next_phase()
        )
    }
}

type Outcome = Result<Released, Arc<Error>>;

#[derive(Default)]
struct State {
    outcome: Option<Outcome>,
    /// Called (with no arguments) once the outcome is known.
    callbacks: Vec<Py<PyAny>>,
}

struct Shared {
    state: Mutex<State>,
    done: watch::Sender<bool>,
}

impl Shared {
    /// Records the outcome (the first one wins) and calls the callbacks.
    fn finish(&self, outcome: Outcome) {
        let callbacks = {
            let mut st = self.state.lock().expect("arrival lock");
            if st.outcome.is_some() {
                return;
            }
            st.outcome = Some(outcome);
            std::mem::take(&mut st.callbacks)
        };
        self.done.send_replace(true);
        if !callbacks.is_empty() {
            // Not at all while the interpreter shuts down.
            Python::try_attach(|py| {
                for cb in callbacks {
                    if let Err(e) = cb.call0(py) {
                        e.write_unraisable(py, None);
                    }
                }
            });
        }
    }
}

/// A wait under way, from Barrier.arrive().
///
/// The wait runs in the background from the moment of arrival, so waiting
/// late loses nothing. Dropping the Arrival (or cancel()) before the wait
/// ends cancels it, as a crash of the member would: the check-in stays
/// counted.
#[pyclass(module = "sqs_barrier", frozen)]
pub(crate) struct Arrival {
    phase: u64,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Arrival {
    fn spawn(arrival: sqs_barrier::Arrival) -> Self {
        let phase = arrival.generation();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            done: watch::Sender::new(false),
        });
        let in_task = shared.clone();
        let task = runtime().spawn(async move {
            let outcome = arrival.await.map_err(Arc::new);
            in_task.finish(outcome);
        });
        Self {
            phase,
            shared,
            task,
        }
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        // Drops the library's Arrival inside the task: the wait is cancelled.
        self.task.abort();
    }
}

#[pymethods]
impl Arrival {
    /// The phase arrived at.
    #[getter]
    fn phase(&self) -> u64 {
        self.phase
    }

    /// Whether the wait has ended (wait() will not block).
    fn done(&self) -> bool {
        self.shared
            .state
            .lock()
            .expect("arrival lock")
            .outcome
            .is_some()
    }

    /// Blocks until the phase is released and returns Released(phase,
    /// waited) with its data, or raises what Barrier.wait() raises. Ctrl-C raises
    /// KeyboardInterrupt and cancels the wait. May be called again: it
    /// returns (or raises) the same outcome.
    fn wait(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut done = self.shared.done.subscribe();
        if let Err(interrupted) = block_on(py, async move {
            let _ = done.wait_for(|d| *d).await;
        }) {
            self.cancel();
            return Err(interrupted);
        }
        let outcome = self
            .shared
            .state
            .lock()
            .expect("arrival lock")
            .outcome
            .clone()
            .unwrap_or_else(|| Err(Arc::new(Error::Cancelled)));
        match outcome {
            Ok(r) => released(py, r),
            Err(e) => Err(errors::to_py(py, &e)),
        }
    }

    /// wait() for asyncio programs: `released = await arrival.wait_async()`.
    /// Cancelling the task cancels the wait.
    fn wait_async<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("sqs_barrier._aio")?
            .getattr("arrival_wait")?
            .call1((slf,))
    }

    /// Cancels the wait if it has not ended: wait() then raises
    /// BarrierError ("the wait was cancelled"). The check-in stays counted.
    fn cancel(&self) {
        self.task.abort();
        self.shared.finish(Err(Arc::new(Error::Cancelled)));
    }

    /// Calls `callback()` (from another thread) once the wait has ended, or
    /// at once if it has. For the asyncio glue.
    fn _add_done_callback(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        {
            let mut st = self.shared.state.lock().expect("arrival lock");
            if st.outcome.is_none() {
                st.callbacks.push(callback);
                return Ok(());
            }
        }
        callback.call0(py).map(drop)
    }

    fn __repr__(&self) -> String {
        format!("Arrival(phase={}, done={})", self.phase, self.done())
    }
}
