//! The `sqs-barrier` web console and the Prometheus metrics, on a small
//! HTTP/1.1 server (hyper).
//!
//! [`Console`] is a live view of an endpoint's queues and barriers. One page
//! (server-rendered HTML with a small script, no build step) polls
//! `/api/state` every second; the state comes from a poller that reads SQS
//! every [`ConsoleOptions::interval`]. Every state-changing request (an
//! abort: `POST /api/abort`) goes through one gate (`guard.rs`): refused
//! when the console is read-only, from another site, not JSON, or without
//! a valid page token in the `X-Console-Token` header (a signed, expiring
//! token the server put into the page it served; nothing is stored, so no
//! number of page loads pushes one out). A request from another site can
//! neither read the page nor send that header without a CORS preflight,
//! which the console never grants. Whatever the bind address, it refuses
//! requests whose `Host` is not its own address, a loopback name (bound to
//! loopback) or an allowed host name (DNS rebinding). Its metrics are at
//! `/metrics`.
//!
//! [`serve_coordinator`] serves a coordinator's metrics (`sqs-barrier
//! coordinator --metrics-bind`). The metric names are listed in
//! docs/CONSOLE.md.
//!
//! ```no_run
//! # async fn run(sqs: sqs_barrier::Sqs) -> std::io::Result<()> {
//! use sqs_barrier_console::{Console, ConsoleOptions};
//!
//! let options = ConsoleOptions::default();
//! let listener = tokio::net::TcpListener::bind(options.bind).await?;
//! let console = Console::new(sqs, options, listener.local_addr()?).expect("valid options");
//! console.serve(listener, std::future::pending()).await;
//! # Ok(())
//! # }
//! ```

mod console;
mod guard;
mod http;
mod metrics;
mod queues;
mod watch;

pub use console::{Console, ConsoleOptions, OptionsError};
pub use metrics::serve_coordinator;
