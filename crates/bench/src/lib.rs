//! The benchmarks of sqs-barrier.
//!
//! * `sqs-barrier bench` (module `bench`): the barrier's release latency,
//!   SQS requests and tagging actions per participant-episode, episodes per
//!   second and the cost of waiting, next to the endpoint's own hand-off
//!   time, fan-out floor and gather floor; with the hidden subcommands
//!   `bench-worker` (a group of participants, of the fan-out floor's
//!   receivers or of the gather floor's senders, in a process of its own)
//!   and `bench-report` (module `report`: `bench --json` lines to Markdown
//!   tables and SVG charts).
//! * [`loadgen`]: the embedded endpoint against moto, the `loadgen` binary
//!   of this crate.
//!
//! A binary offers the benchmark by flattening [`BenchCommand`] into its
//! subcommands (`#[command(flatten)]`) and calling [`run`]. `bench
//! --processes` and its floors start worker processes of the running
//! executable as `EXE [--endpoint-url URL] [--region R] [--profile P]
//! bench-worker ...`, so that binary must take those global options too: it
//! is the `sqs-barrier` binary.
//!
//! The commands print their output and their errors themselves (prefixed
//! `sqs-barrier bench:` or `sqs-barrier bench-report:`); [`run`] says how
//! one failed, [`Failed`], and the binary picks the exit code.

mod args;
mod bench;
pub mod loadgen;
mod report;

use sqs_barrier::ClientOptions;

pub use args::{BenchArgs, BenchCommand, BenchReportArgs, BenchWorkerArgs, CoordinatorKind};

/// How a benchmark command failed, once it has said why (on stderr; a
/// `bench-worker` on stdout, as its `FAIL why` line).
#[derive(Debug)]
#[non_exhaustive]
pub enum Failed {
    /// Wrong arguments, or a report with nothing to show.
    Usage,
    /// SQS or the embedded endpoint failed, or a file could not be written.
    Infrastructure,
    /// An episode took too long, or a participant failed.
    Timeout,
    /// A worker process or a task could not start or ended early.
    Internal,
    /// The barrier library failed.
    Barrier(Box<sqs_barrier::Error>),
}

/// Runs a benchmark command with the AWS configuration of `client` (its
/// endpoint URL, if any, is the endpoint measured; else `bench` starts the
/// embedded endpoint).
pub async fn run(command: BenchCommand, client: &ClientOptions) -> Result<(), Failed> {
    match command {
        BenchCommand::Bench(a) => bench::run(a, client).await,
        BenchCommand::BenchWorker(a) => bench::worker(a, client).await,
        BenchCommand::BenchReport(a) => report::report(a),
    }
}
