//! A reusable distributed barrier over Amazon SQS.
//!
//! N processes that work in phases check in at the barrier when they finish
//! a phase; a coordinator counts distinct check-ins and releases everyone;
//! the barrier serves phase after phase. SQS is the only shared
//! infrastructure, and the barrier is correct whatever SQS does (duplicates,
//! reordering, approximate counts): see docs/PROTOCOL.md.
//!
//! * [`admin::setup`] creates a barrier's queues; [`admin::teardown`] removes
//!   them; [`admin::status`] tells who has arrived.
//! * [`Barrier`] is a member's handle: [`Barrier::wait`], split-phase
//!   [`Barrier::arrive`] + `.await`, [`Barrier::abort`]; data gathered at
//!   the barrier ([`Barrier::wait_with`] and [`WaitOptions`]); membership
//!   changes ([`Barrier::join`], [`Barrier::leave`]).
//! * [`run_coordinator`] runs the coordinator, in its own process or inside
//!   one participant's.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sqs_barrier::Error> {
//! use sqs_barrier::{admin, Barrier, ClientOptions, CoordinatorOptions, Sqs};
//!
//! // Standard AWS configuration: AWS_ENDPOINT_URL, AWS_REGION, profiles...
//! let sqs = Sqs::connect(&ClientOptions::default()).await?;
//! admin::setup(&sqs, "etl", &admin::SetupOptions::new(2)).await?;
//!
//! // Member 0 also runs the coordinator, in a task of its own.
//! let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
//! let coord_sqs = sqs.clone();
//! let coordinator = tokio::spawn(async move {
//!     let stop = async { let _ = stop_rx.await; };
//!     sqs_barrier::run_coordinator(&coord_sqs, "etl", CoordinatorOptions::default(), None, stop).await
//! });
//!
//! let me = Barrier::connect(&sqs, "etl", "0").await?;
//! me.wait(None).await?; // returns once member "1" has arrived too
//! let _ = stop_tx.send(());
//! # let _ = coordinator.await;
//! # Ok(()) }
//! ```
//!
//! This crate drives the pure state machines of `sqs-barrier-core` over the
//! AWS SDK; it holds no protocol logic of its own.
#![forbid(unsafe_code)]

pub mod admin;
mod checkin;
pub mod clock;
mod coordinator;
mod error;
mod info;
pub mod lambda;
mod lease;
mod membership;
mod notices;
mod participant;
mod published;
mod sqs;

pub use coordinator::{CoordinatorGauges, CoordinatorOptions, run_coordinator};
pub use error::{Error, Result};
pub use membership::Joined;
pub use participant::{Arrival, Barrier, Released, WaitOptions, abort_barrier};
pub use sqs::{ClientOptions, RequestCounter, Sqs};
pub use sqs_barrier_core as core;
