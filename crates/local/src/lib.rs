//! An embedded SQS-compatible endpoint: run the project (and its tests) on one machine
//! with no AWS account, using the unchanged AWS SDK clients.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = sqs_barrier_local::Server::bind("127.0.0.1:0".parse().unwrap()).await?;
//! let url = server.endpoint_url(); // give this to aws-sdk-sqs / boto3 as endpoint URL
//! # let _ = url;
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Architecture
//!
//! ```text
//!  TCP ──► server (hyper HTTP/1.1, one task per connection)
//!            │ headers checked, body read with a size limit
//!            ▼
//!          ops::decode_request(target, body) ─► ops::Request   (pure, fuzzed)
//!            │
//!            ▼
//!          ops::<group>::apply ──► service (registry: RwLock<name ─► QueueSlot>)
//!                                     │  QueueSlot = Mutex<model::Queue> + Notify
//!                                     ▼
//!                                   model::Queue  (pure state machine, `now` argument)
//! ```
//!
//! * [`model`] is SQS's semantics with no IO, no locks and no clock: every input takes
//!   `now`, and [`model::Queue::next_event`] says when the queue changes by itself.
//!   Unit tests step a virtual clock through visibility timeouts, delays, retention,
//!   FIFO deduplication and redrive.
//! * [`ops`] decodes the AWS JSON 1.0 bodies (one file per group of operations, each
//!   with its input type and its `apply`, as in mini-redis's `cmd/`).
//! * `service` holds the queues; each model is behind its own short-held mutex, so
//!   different queues are served in parallel and no lock is held across an `.await`.
//! * `moves` holds the message-move tasks (dead-letter redrive) and runs each in a
//!   background tokio task that moves messages between queues through the model, one
//!   queue lock at a time, at the task's rate.
//! * `server` is the hyper front: it reads the clock, drives the model, and implements
//!   long polling by waiting on the queue's `Notify` and a timer armed at the model's
//!   next event, never by polling in a loop. It adds the [`latency`] model's delay to
//!   each response, caps connections and closes those that do not send a request head
//!   in time.
//!
//! SQS's documented quotas (in flight, batch and message sizes, attributes, tags,
//! names, ranges, name reuse after delete, purge rate, tagging rate) are enforced where
//! they belong: the model for queue state, [`model::RecentlyDeleted`] for names, `ops`
//! for request shapes, [`throttle`]'s token bucket (one per server, fed a monotonic
//! clock by the server) for the tagging actions per second.
//!
//! # What this crate does not do
//!
//! It does not verify signatures or credentials, enforce policies, encrypt, throttle
//! anything but the tagging actions (unless told to inject faults: [`chaos`]) or
//! persist anything; counts are exact rather than approximate.
//! `docs/ENDPOINT.md` lists every known difference from AWS.
#![forbid(unsafe_code)]

pub mod chaos;
pub mod error;
pub mod latency;
pub mod model;
mod moves;
pub mod ops;
mod server;
mod service;
pub mod throttle;

pub use chaos::{ChaosCounts, ChaosSpec, ChaosSpecError};
pub use error::{ErrorCode, SqsError};
pub use latency::{LatencySpec, LatencySpecError};
pub use ops::{Request, decode_request};
pub use server::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, MAX_REQUEST_BYTES, Options, Server,
};
pub use throttle::{DEFAULT_TAGGING_TPS, TokenBucket};
