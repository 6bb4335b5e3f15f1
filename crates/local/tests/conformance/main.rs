//! SQS conformance suite: one set of test bodies, run through the real
//! `aws-sdk-sqs` client against the embedded endpoint and against moto.
//!
//! The expected behaviour is what the AWS documentation states, not what
//! either implementation happens to do. Where moto departs from AWS, the test
//! says so at that spot (`if ctx.target == Moto { /* moto differs: ... */ }`)
//! with the AWS page that documents the real behaviour; the embedded endpoint
//! gets no such exceptions.
//!
//! Every test gets its own server (moto takes about half a second to start),
//! so tests are isolated even when they list or purge queues. Timeouts are
//! kept small (visibility 1-2 s, waits of 1-2 s) to keep the run short.
//!
//! The tests are grouped by operation, one module each; every group lists its
//! test bodies in the test kit's `both_endpoints!`, which runs each on both
//! targets (`GROUP::embedded::NAME` and `GROUP::moto::NAME`). The exceptions are
//! `moves` (message-move tasks) and `attempts` (FIFO receives deduplicated by
//! `ReceiveRequestAttemptId`), which moto does not implement: they run on the
//! embedded endpoint only (`embedded_only!`).
//!
//! Run one target with `cargo test -p sqs-barrier-local --test conformance moto::`
//! (or `embedded::`), one group with `fifo::` (say). moto comes from
//! `scripts/test`, which sets `SQS_BARRIER_MOTO_SERVER`.

#[macro_use]
mod support;

mod attempts;
mod delete;
mod fifo;
mod limits;
mod moves;
mod queues;
mod receive;
mod send;
mod tags;
