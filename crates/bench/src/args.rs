//! The benchmark's command line, as clap sees it: its subcommands, which a
//! binary flattens into its own.

use clap::{Args, Subcommand, ValueEnum};

/// The benchmark's subcommands: `bench` and the hidden `bench-worker` and
/// `bench-report`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Measure release latency, SQS requests and tagging actions per
    /// participant-episode, tagging actions per barrier-minute and episodes
    /// per second, against the endpoint's own hand-off time, the fan-out
    /// floor (one message to N parked long polls) and the gather floor (N
    /// messages at once to one consumer's parked long polls); with --work,
    /// the cost of waiting.
    Bench(BenchArgs),
    /// A group of benchmark participants (started by `bench --processes`).
    #[command(hide = true)]
    BenchWorker(BenchWorkerArgs),
    /// Turn `bench --json` lines into a Markdown table and an SVG chart.
    #[command(hide = true)]
    BenchReport(BenchReportArgs),
}

/// `sqs-barrier bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The number of participants (N).
    #[arg(long, short)]
    pub(crate) parties: usize,
    /// The number of measured episodes (E); one warm-up episode runs first
    /// and is reported separately.
    #[arg(
        long,
        short,
        required_unless_present = "duration",
        conflicts_with = "duration"
    )]
    pub(crate) episodes: Option<u64>,
    /// Instead of a number of episodes: run measured episodes back to back
    /// for this many seconds (counted from the end of the warm-up); the
    /// episodes already under way when the time is up are finished.
    #[arg(long, value_name = "SECS")]
    pub(crate) duration: Option<f64>,
    /// Every SECS seconds during the run, read the approximate message
    /// counts (visible, in flight, delayed) of the barrier's six queues
    /// with GetQueueAttributes, on a client of its own (not counted), and
    /// add the time series to the figures (`queue_series` in --json;
    /// `bench-report --svg-queues` plots it).
    #[arg(long, value_name = "SECS")]
    pub(crate) sample_queues: Option<f64>,
    /// Spread the participants over this many OS processes (default: all
    /// are tasks of this process).
    #[arg(long)]
    pub(crate) processes: Option<usize>,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Run the course handout's protocol (a counting monitor polling every
    /// second, participants short-polling every second) instead.
    #[arg(long)]
    pub(crate) baseline: bool,
    /// Fail if an episode takes longer than this many seconds (plus
    /// --work).
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub(crate) episode_timeout: f64,
    /// Before each measured episode, every participant works (sleeps) a
    /// random time uniform in [0, SECS], so that most participants wait for
    /// the slowest. The cost of waiting is reported apart: the participants'
    /// requests per minute of waiting (from the check-in sent until the
    /// wait returned; the check-in itself reported on its own) and the
    /// coordinator's requests per minute, while a generation was open and
    /// while none was.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub(crate) work: f64,
    /// The seed of the work times (default: random, printed with the
    /// figures); participant i draws from a generator seeded with SEED + i.
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
    /// Samples of the endpoint's send-to-long-poll hand-off.
    #[arg(long, default_value_t = 200)]
    pub(crate) handoff_samples: usize,
    /// Concurrent long polls of the coordinator on the check-in queue
    /// (default: the library's, by party count); the gather floor's
    /// consumer has as many.
    #[arg(long)]
    pub(crate) receivers: Option<usize>,
    /// Who coordinates (see `demo --help`); with `lambda` the figures add
    /// invocations per episode and races lost between invocations.
    #[arg(long, value_enum, default_value_t = CoordinatorKind::Process, conflicts_with = "baseline")]
    pub(crate) coordinator: CoordinatorKind,
    /// With `--coordinator lambda`: the mapping's maximum concurrency
    /// (invocations at once; Lambda's minimum is 2).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub(crate) lambda_concurrency: usize,
    /// Every participant brings B bytes of data to every episode, and each
    /// release hands every participant everyone's (gathered data; a process
    /// coordinator only): the figures then show what gathering costs.
    #[arg(
        long,
        default_value_t = 0,
        value_name = "B",
        conflicts_with = "baseline"
    )]
    pub(crate) data_bytes: usize,
}

/// `sqs-barrier bench-worker`.
#[derive(Args, Debug)]
pub struct BenchWorkerArgs {
    /// The barrier (or, with --baseline, the queue name prefix).
    #[arg(long)]
    pub(crate) barrier: String,
    /// The first member index of this group.
    #[arg(long)]
    pub(crate) first: usize,
    /// How many members this group runs.
    #[arg(long)]
    pub(crate) count: usize,
    /// Episodes in all, warm-up included.
    #[arg(long)]
    pub(crate) episodes: u64,
    /// Start an episode only when permitted on stdin (`PERMIT k`: up to
    /// episode k; `LAST k`: episode k is the last), for `bench --duration`.
    #[arg(long)]
    pub(crate) gated: bool,
    #[arg(long)]
    pub(crate) episode_timeout: f64,
    #[arg(long)]
    pub(crate) baseline: bool,
    /// The longest work before a measured episode, in seconds.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) work: f64,
    /// The seed of the work times.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Bytes of data each participant brings to every episode.
    #[arg(long, default_value_t = 0)]
    pub(crate) data_bytes: usize,
    /// Instead of participants: run `--count` receivers of the fan-out
    /// floor on this queue, as told on stdin.
    #[arg(long, value_name = "URL")]
    pub(crate) fanout_url: Option<String>,
    /// Instead of participants: run `--count` senders of the gather floor
    /// on this queue, as told on stdin.
    #[arg(long, value_name = "URL", conflicts_with = "fanout_url")]
    pub(crate) gather_url: Option<String>,
}

/// `sqs-barrier bench-report`.
#[derive(Args, Debug)]
pub struct BenchReportArgs {
    /// Files of `bench --json` output (non-JSON lines are skipped).
    #[arg(required = true)]
    pub(crate) files: Vec<std::path::PathBuf>,
    /// Write an SVG chart here.
    #[arg(long)]
    pub(crate) svg: Option<std::path::PathBuf>,
    /// Write an SVG chart of the queue counts over time of the runs with
    /// `bench --sample-queues` here (one row of panels per run).
    #[arg(long, value_name = "FILE")]
    pub(crate) svg_queues: Option<std::path::PathBuf>,
}

/// Who coordinates a demo or benchmark barrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CoordinatorKind {
    /// A long-running coordinator (`sqs-barrier coordinator`).
    Process,
    /// The Lambda function's handler (`sqs_barrier::lambda`), invoked in
    /// this process by an emulated SQS event source mapping (batches of up
    /// to 10, two invocations at once, partial batch failures, redelivery
    /// after the check-in queue's 30 s visibility timeout) and by a
    /// schedule every 60 s.
    Lambda,
}
