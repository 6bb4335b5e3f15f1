//! The library's errors as the package's exceptions (`sqs_barrier._types`).
//!
//! The message is always the library's own text, the one the CLI prints;
//! the attributes carry its fields for programs.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sqs_barrier::Error;
use sqs_barrier::core::participant::ParticipantError;
use sqs_barrier::core::wire::BreakCause;

/// The Python exception for `e`.
pub(crate) fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    let message = e.to_string();
    match build(py, e, &message) {
        Ok(err) => err,
        // Only if the package itself is broken (its Python part missing).
        Err(import_failed) => {
            let err = PyRuntimeError::new_err(message);
            err.set_cause(py, Some(import_failed));
            err
        }
    }
}

fn build(py: Python<'_>, e: &Error, message: &str) -> PyResult<PyErr> {
    let kw = PyDict::new(py);
    let class = match e {
        Error::TimedOut {
            barrier,
            generation,
            timeout,
            missing,
        } => {
            kw.set_item("barrier", barrier)?;
            kw.set_item("phase", generation)?;
            kw.set_item("timeout", timeout.as_secs_f64())?;
            kw.set_item("missing", missing.clone())?;
            "TimedOut"
        }
        Error::Broken {
            barrier,
            generation,
            cause,
            missing,
        } => {
            kw.set_item("barrier", barrier)?;
            kw.set_item("phase", generation)?;
            kw.set_item("missing", missing.clone())?;
            match cause {
                BreakCause::Aborted { by, reason } => {
                    kw.set_item("by", by)?;
                    kw.set_item("reason", reason)?;
                }
                other => kw.set_item("reason", other.to_string())?,
            }
            "Broken"
        }
        Error::CoordinatorSilent {
            barrier,
            generation,
            silent_for,
            ..
        } => {
            kw.set_item("barrier", barrier)?;
            kw.set_item("phase", generation)?;
            kw.set_item("silent_for", silent_for.as_secs_f64())?;
            "CoordinatorSilent"
        }
        Error::NotSetUp { barrier, endpoint } => {
            kw.set_item("barrier", barrier)?;
            kw.set_item("endpoint", endpoint)?;
            "NotSetUp"
        }
        Error::Unreachable { endpoint, .. }
        | Error::AccessDenied { endpoint, .. }
        | Error::Sqs { endpoint, .. } => {
            kw.set_item("endpoint", endpoint)?;
            "EndpointError"
        }
        Error::NotExpected {
            barrier,
            member,
            generation,
            since,
        } => {
            kw.set_item("barrier", barrier)?;
            kw.set_item("phase", generation)?;
            kw.set_item("member", member)?;
            kw.set_item("since", since)?;
            "NotExpected"
        }
        Error::GatherLost {
            barrier,
            generation,
        } => {
            kw.set_item("barrier", barrier)?;
            kw.set_item("phase", generation)?;
            "GatherLost"
        }
        Error::Join { barrier, detail } => {
            kw.set_item("barrier", barrier)?;
            kw.set_item("detail", detail)?;
            "JoinError"
        }
        Error::Participant(ParticipantError::DataTooLarge {
            size,
            limit,
            members,
        }) => {
            kw.set_item("size", size)?;
            kw.set_item("limit", limit)?;
            kw.set_item("members", members)?;
            "PayloadTooLarge"
        }
        Error::NoCredentials { .. } | Error::NoRegion => "EndpointError",
        Error::Config(_) | Error::Participant(_) => "ConfigError",
        Error::Conflict { barrier, .. } | Error::Corrupt { barrier, .. } => {
            kw.set_item("barrier", barrier)?;
            "BarrierError"
        }
        _ => "BarrierError",
    };
    let class = py.import("sqs_barrier._types")?.getattr(class)?;
    Ok(PyErr::from_value(class.call((message,), Some(&kw))?))
}
