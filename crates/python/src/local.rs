//! The embedded SQS endpoint, in-process, for tests.

use std::net::SocketAddr;
use std::sync::Mutex;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use sqs_barrier_local::Server;

use crate::block_on;

/// The embedded SQS-compatible endpoint (`sqs-barrier local`), running in
/// this process until stop(). Prefer the context manager
/// `sqs_barrier.local()`.
///
/// LocalEndpoint(bind="127.0.0.1:0"): a loopback address; port 0 picks a
/// free port.
#[pyclass(module = "sqs_barrier", frozen)]
pub(crate) struct LocalEndpoint {
    url: String,
    server: Mutex<Option<Server>>,
}

#[pymethods]
impl LocalEndpoint {
    #[new]
    #[pyo3(signature = (bind="127.0.0.1:0"))]
    fn new(py: Python<'_>, bind: &str) -> PyResult<Self> {
        let addr: SocketAddr = bind
            .parse()
            .map_err(|e| PyValueError::new_err(format!("bind {bind:?}: {e}")))?;
        if !addr.ip().is_loopback() {
            return Err(PyValueError::new_err(format!(
                "refusing to listen on {addr} (not loopback): the endpoint has no authentication"
            )));
        }
        let server = block_on(py, Server::bind(addr))?
            .map_err(|e| PyOSError::new_err(format!("cannot listen on {addr}: {e}")))?;
        Ok(Self {
            url: server.endpoint_url(),
            server: Mutex::new(Some(server)),
        })
    }

    /// The endpoint's URL, `http://127.0.0.1:PORT`.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// Stops the endpoint (waiting long polls end at once); its queues are
    /// gone. Calling it again does nothing.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let server = self.server.lock().expect("endpoint lock").take();
        if let Some(server) = server {
            block_on(py, server.shutdown())?;
        }
        Ok(())
    }

    fn __repr__(&self) -> String {
        let running = self.server.lock().expect("endpoint lock").is_some();
        format!(
            "LocalEndpoint({:?}, {})",
            self.url,
            if running { "running" } else { "stopped" }
        )
    }
}
