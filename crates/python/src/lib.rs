//! `sqs_barrier._native`: the Python binding of the `sqs-barrier` library.
//!
//! A thin driver. Every protocol decision is the library's (and its core's);
//! this crate only converts arguments and results, runs the library's
//! futures on a shared tokio runtime without holding the GIL, and turns the
//! library's errors into the Python exceptions of `sqs_barrier._types`. The
//! Python package (`crates/python/python/sqs_barrier`) re-exports it.

mod admin;
mod errors;
mod local;
mod participant;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use sqs_barrier::{ClientOptions, Sqs};

/// How often a blocking call looks for signals (Ctrl-C) while it waits.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);

/// The runtime every future of the module runs on, started at first use.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("sqs-barrier")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime of sqs_barrier")
    })
}

/// Runs `fut` to completion on the runtime, without the GIL, looking for
/// signals every [`SIGNAL_SLICE`]. A signal handler that raises (Ctrl-C's
/// `KeyboardInterrupt`) ends the call with that exception and drops `fut`,
/// which cancels whatever it was doing. Other threads than the main one
/// receive no signals: there this simply waits.
fn block_on<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let mut fut = std::pin::pin!(fut);
    loop {
        let slice = py.detach(|| {
            runtime().block_on(async { tokio::time::timeout(SIGNAL_SLICE, fut.as_mut()).await })
        });
        if let Ok(out) = slice {
            return Ok(out);
        }
        py.check_signals()?;
    }
}

/// [`block_on`] for the library's fallible futures: its errors become the
/// package's exceptions.
fn run<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = sqs_barrier::Result<T>> + Send,
    T: Send,
{
    block_on(py, fut)?.map_err(|e| errors::to_py(py, &e))
}

/// Connects to SQS with the standard AWS configuration, overridden by the
/// keywords that are given: the CLI's `--endpoint-url`, `--region` and
/// `--profile`.
fn connect(
    py: Python<'_>,
    endpoint_url: Option<String>,
    region: Option<String>,
    profile: Option<String>,
) -> PyResult<Sqs> {
    let mut opts = ClientOptions::default();
    opts.endpoint_url = endpoint_url;
    opts.region = region;
    opts.profile = profile;
    run(py, async move { Sqs::connect(&opts).await })
}

/// Seconds from Python (`None`: no limit) as a duration.
fn seconds(value: Option<f64>, what: &str) -> PyResult<Option<Duration>> {
    value
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                PyValueError::new_err(format!(
                    "{what} must be a non-negative number of seconds, not {s}"
                ))
            })
        })
        .transpose()
}

/// The compiled part of the `sqs_barrier` package; import `sqs_barrier`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<participant::Barrier>()?;
    m.add_class::<participant::Arrival>()?;
    m.add_class::<local::LocalEndpoint>()?;
    m.add_function(wrap_pyfunction!(admin::setup, m)?)?;
    m.add_function(wrap_pyfunction!(admin::teardown, m)?)?;
    m.add_function(wrap_pyfunction!(admin::status, m)?)?;
    m.add_function(wrap_pyfunction!(admin::abort, m)?)?;
    m.add_function(wrap_pyfunction!(admin::run_coordinator, m)?)?;
    Ok(())
}
