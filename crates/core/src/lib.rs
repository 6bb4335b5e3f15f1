//! The sqs-barrier protocol as pure state machines.
//!
//! This crate holds everything that decides *what* a barrier participant or
//! coordinator does, and nothing that does it: no network IO, no async
//! runtime, no clock reads. Time is always an argument (`now`, a
//! [`Duration`](std::time::Duration) since the Unix epoch, or since any
//! epoch the driver picks, as long as it is the same one throughout), and
//! every effect is an output the driver pulls and carries out against SQS.
//!
//! ```text
//!            handle_*  (messages received, timers fired, writes done)
//!   driver ───────────────────────────────────────────────▶ state machine
//!   (SQS,   ◀─────────────────────────────────────────────  (this crate)
//!   tokio)   poll_transmit / poll_event / poll_timeout
//! ```
//!
//! * [`participant::Participant`]: one member waiting at the barrier, one
//!   generation (phase) at a time.
//! * [`coordinator::Coordinator`]: counts distinct check-ins per generation
//!   against the [`config::Membership`] and releases or breaks generations.
//!   It can be fed by a long-running process or by a stateless function
//!   invoked with batches of SQS messages (an AWS Lambda handler): every
//!   message it has not yet told the driver to delete must stay in the queue.
//! * [`standby::Standby`]: a coordinator standing by, which watches the
//!   active one on its own clock and takes over when it is gone.
//! * [`lambda::LambdaRound`]: one invocation of the coordinator as an AWS
//!   Lambda function: it rebuilds the coordinator from the published state
//!   for a batch (or a scheduled tick), writes, checks that the write
//!   stood, starts again when another invocation won the race, and says
//!   which records go back to the queue.
//! * [`lease::Lease`]: the holder's side of the lease that lets one
//!   coordinator at a time decide, on the holder's own clock.
//! * [`wire`]: the versioned JSON format of every message on the barrier's
//!   queues, [`state`]: the coordinator's published state, and [`record`]:
//!   how it travels on the barrier's state queue.
//!
//! What this crate does **not** do: it sends nothing, sleeps on nothing and
//! never reads a clock. The `sqs-barrier` crate drives these machines over
//! the AWS SDK; the simulation tests drive them over a model of SQS with
//! virtual time. docs/PROTOCOL.md is the specification they implement.
#![forbid(unsafe_code)]

pub mod config;
pub mod coordinator;
pub mod lambda;
pub mod lease;
pub mod members;
pub mod names;
pub mod participant;
pub mod record;
pub mod roll;
pub mod standby;
pub mod state;
pub mod tags;
pub mod wire;

pub use config::{BarrierConfig, ConfigError, Membership, Quorum};
pub use coordinator::Coordinator;
pub use participant::Participant;
pub use roll::Roll;
