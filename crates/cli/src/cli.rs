//! The command line, as clap sees it.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sqs_barrier_bench::BenchCommand;
// `demo --coordinator` takes the same values as `bench --coordinator`.
pub use sqs_barrier_bench::CoordinatorKind;
use sqs_barrier_console::ConsoleOptions;

use crate::exit;

/// Distributed barriers over Amazon SQS.
///
/// N processes check in when they finish a phase; a coordinator counts
/// distinct check-ins and releases everyone; the barrier serves phase after
/// phase. SQS is the only shared infrastructure. Run `sqs-barrier demo` to
/// see it on an embedded SQS endpoint, with no AWS account.
///
/// SQS is reached with the standard AWS configuration (AWS_ENDPOINT_URL or
/// AWS_ENDPOINT_URL_SQS, AWS_REGION, AWS_PROFILE, the default credential
/// chain), overridden by the global options below.
#[derive(Parser, Debug)]
#[command(name = "sqs-barrier", version, after_help = exit::HELP)]
pub struct Cli {
    /// The SQS endpoint, e.g. http://127.0.0.1:9324 for `sqs-barrier local`.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The AWS region (default: from the AWS configuration; us-east-1 with
    /// a custom endpoint).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The AWS profile.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// More logging on stderr (-v, -vv); or set SQS_BARRIER_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the embedded SQS-compatible endpoint.
    Local(LocalArgs),
    /// Create a barrier's queues and store its configuration (idempotent).
    Setup(SetupArgs),
    /// Delete a barrier's queues.
    Teardown(BarrierArg),
    /// Run a barrier's coordinator until SIGINT or SIGTERM.
    Coordinator(CoordinatorArgs),
    /// Arrive at a phase and wait until everyone has.
    Wait(WaitArgs),
    /// Become a member: expected from the first phase that has no arrival
    /// counted when the coordinator counts the join. Prints the member's
    /// name (on a numbered barrier, the number it was given) and its first
    /// phase, separated by a space.
    Join(JoinArgs),
    /// Arrive at a phase and leave the barrier, without waiting: no later
    /// phase expects this member. (`wait --leave` waits for the release.)
    Leave(LeaveArgs),
    /// Break the barrier for everyone waiting at the current phase.
    Abort(AbortArgs),
    /// Show a barrier's generation, who has arrived, who is missing,
    /// whether a coordinator is alive, and (once members joined, left or
    /// were dropped) the members of every phase.
    Status(StatusArgs),
    /// List queues with the columns of the SQS console.
    Queues(QueuesArgs),
    /// Serve a live web console of the endpoint's queues and barriers
    /// (phase, arrivals, missing members, coordinator, dead letters, recent
    /// phases, abort) and their Prometheus metrics at /metrics.
    ///
    /// Open the address it prints (http://127.0.0.1:9325/ by default). The
    /// page reads the console's view every second: the queue table with the
    /// SQS console's columns (filter by name prefix), and for each barrier
    /// its phase, who has arrived and who is missing and for how long, the
    /// coordinator's liveness and heartbeat, the deadline, the broken state,
    /// the dead letters with the latest reasons, a chart of the recent
    /// phases and an abort button (a reason, then a confirmation; none with
    /// --read-only). It binds to loopback unless --allow-remote, answers
    /// only for its own address and --allowed-host names, and
    /// state-changing requests need the token of a page it served (valid
    /// for an hour; the page renews it). See docs/CONSOLE.md.
    Console(ConsoleArgs),
    /// Run N processes through K phases on the embedded endpoint and show
    /// that nobody started phase k+1 before everyone finished phase k.
    Demo(DemoArgs),
    /// One participant of the demo (started by `demo`).
    #[command(hide = true)]
    DemoWorker(DemoWorkerArgs),
    // `bench`, and the hidden `bench-worker` and `bench-report`: the bench
    // crate's subcommands.
    #[command(flatten)]
    Bench(BenchCommand),
}

#[derive(Args, Debug)]
pub struct BarrierArg {
    /// The barrier's name (1 to 64 of A-Z a-z 0-9 - _).
    #[arg(long, short)]
    pub barrier: String,
}

#[derive(Args, Debug)]
pub struct LocalArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:9324")]
    pub bind: SocketAddr,
    /// Allow an address other than loopback. The endpoint has no
    /// authentication: anyone who can reach it can read and write queues.
    #[arg(long)]
    pub allow_remote: bool,
    /// Inject faults SQS is allowed to make, e.g.
    /// receive.duplicate=0.05,any.error=0.01,any.delay_ms=0-20
    ///
    /// SPEC is a comma-separated list of SCOPE[FILTERS].FAULT=PROB[:MS-MS]
    /// rules. PROB is 0..1 or a percentage (5%), MS-MS a range of milliseconds.
    /// Scopes: any, send, receive, delete, visibility, admin (a scope's rule
    /// overrides any). [FILTERS] is optional: [F;F...] with F one of
    /// queue=SUFFIX (the queue name ends with it), key=AKID (signed with this
    /// access key id), from=SECS, to=SECS (seconds after start, from
    /// inclusive, to exclusive); the rule applies only to requests matching
    /// all. E.g. a partition of one client from one kind of queue:
    /// 'any[queue=-state;key=coordA;from=20;to=50].error=1'. A matching rule
    /// with filters beats one without, then a scope's beats any, then the
    /// first written. Faults: throttle (400 RequestThrottled), error (500 or
    /// 503 before the operation takes effect), error_after (500 or 503 after
    /// it did: an SDK retry of a send adds a copy), slow[:MS-MS] (latency,
    /// default 10-100), delay_ms=MS-MS (= slow=1:MS-MS), send.late[:MS-MS]
    /// (visible only after a delay, default 100-2000), receive.duplicate (an
    /// in-flight or recently deleted message delivered again), receive.reorder
    /// (not oldest first), receive.empty[:MS-MS] (an empty answer although
    /// messages exist, early). See docs/ENDPOINT.md, "Fault injection".
    #[arg(long, value_name = "SPEC", verbatim_doc_comment)]
    pub chaos: Option<sqs_barrier_local::ChaosSpec>,
    /// Seed of the fault decisions (default: random, printed at start).
    #[arg(long, value_name = "N", requires = "chaos")]
    pub chaos_seed: Option<u64>,
    /// Lower the in-flight quota (received, not yet deleted messages per
    /// queue, standard and FIFO) from SQS's 120,000 to N. At the quota a
    /// short-poll receive on a standard queue fails with OverLimit; long polls
    /// and FIFO queues get no messages and no error.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_in_flight: Option<u64>,
    /// Add a delay to every response, modelling one in-region round trip to
    /// SQS: a fixed delay such as 10ms, or a range such as 5ms..20ms (uniform).
    /// Units: us, ms, s. Long polls wait their full time, then answer this
    /// much later. Not modelled: bandwidth, server-side queueing, tail
    /// latency, throttling.
    #[arg(long, value_name = "SPEC")]
    pub latency: Option<sqs_barrier_local::LatencySpec>,
    /// Serve at most N connections at once; further connections wait (in the
    /// listen backlog) until one closes, and a warning is logged.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Close a connection that has not sent a complete request head within
    /// SECS seconds (an idle keep-alive connection too).
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout: u64,
    /// Allow N tagging actions (TagQueue, UntagQueue and ListQueueTags
    /// together) per second for the whole endpoint, with a burst of N, as
    /// SQS's per-account quota; over it they fail with RequestThrottled
    /// (HTTP 400, "Rate exceeded"), which the SDKs retry. CreateQueue with
    /// tags and all other operations are not limited. 0 turns the quota off,
    /// for people who use the endpoint for other things. See
    /// docs/ENDPOINT.md, "Quotas".
    #[arg(long, value_name = "N", default_value_t = sqs_barrier_local::DEFAULT_TAGGING_TPS)]
    pub tagging_tps: u32,
}

#[derive(Args, Debug)]
pub struct SetupArgs {
    #[command(flatten)]
    pub barrier: BarrierArg,
    /// The number of members.
    #[arg(long, short)]
    pub parties: usize,
    /// Member names, comma-separated (default: 0, 1, ..., N-1).
    #[arg(long, value_delimiter = ',')]
    pub members: Option<Vec<String>>,
    /// Break a phase that is not complete this many seconds after its first
    /// check-in, naming the missing members.
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<f64>,
    /// Use a FIFO check-in queue.
    #[arg(long)]
    pub fifo: bool,
    /// Release a phase once at least K members have arrived and --grace
    /// seconds have passed since the K-th, without the others: they are
    /// named in the release, are members no more, and a late one's wait
    /// fails (exit code 7) rather than pass. At most 2048 parties.
    #[arg(long, value_name = "K", requires = "grace")]
    pub quorum: Option<usize>,
    /// With --quorum: seconds to wait for the others once K have arrived.
    #[arg(long, value_name = "SECS", requires = "quorum")]
    pub grace: Option<f64>,
}

#[derive(Args, Debug)]
pub struct JoinArgs {
    #[command(flatten)]
    pub barrier: BarrierArg,
    /// The name to join as (a roster barrier); a numbered barrier gives the
    /// next number when this is left out.
    #[arg(long)]
    pub id: Option<String>,
    /// Give up if the coordinator has not counted the join after this many
    /// seconds.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub timeout: f64,
}

#[derive(Args, Debug)]
pub struct LeaveArgs {
    #[command(flatten)]
    pub barrier: BarrierArg,
    /// This member's name (or number).
    #[arg(long)]
    pub id: String,
    /// The phase arrived at: the member's last.
    #[arg(long)]
    pub phase: u64,
    /// Bring the contents of FILE (`-`: standard input, UTF-8 text) to the
    /// phase's gathered data.
    #[arg(long, value_name = "FILE")]
    pub data: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct CoordinatorArgs {
    #[command(flatten)]
    pub barrier: BarrierArg,
    /// Take over as soon as the coordinator lease is free, without first
    /// checking whether another coordinator is alive (only the lease holder
    /// decides: a live one keeps its lease while it has something to
    /// decide, and stands down if this one took the lease while it rested).
    /// Without it, a coordinator started while another one is alive stands
    /// by and takes over when that one is gone.
    #[arg(long)]
    pub force: bool,
    /// Seconds between heartbeats (state writes when nothing changes) while
    /// a phase is open; twice as long when the barrier is idle, and every
    /// 2 s while a standby watches. 0.1 to 300.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub heartbeat: f64,
    /// Whole seconds a received check-in stays hidden until a state write
    /// records it (held ones are extended before it lapses); if this
    /// coordinator dies, a successor sees the check-ins it held after at
    /// most this long. 1 to 3600.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub visibility: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (arrivals, releases,
    /// release latency, held check-ins, rejects, SQS requests and errors,
    /// takeovers; see docs/CONSOLE.md), e.g. 127.0.0.1:9326.
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[command(flatten)]
    pub barrier: BarrierArg,
    /// This member's name (or index, for barriers without a roster).
    #[arg(long)]
    pub id: String,
    /// The phase (generation) arrived at. Re-running the same phase after a
    /// crash is safe.
    #[arg(long)]
    pub phase: u64,
    /// Give up after this many seconds (exit code 3).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Fail with exit code 5 if the coordinator publishes nothing new for
    /// this many seconds (and for twice its heartbeat interval), by this
    /// host's clock.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub silence: f64,
    /// Read the coordinator's state every this many seconds while waiting
    /// (the first time this long after arriving): it tells whether to send
    /// the check-in again (SQS lost it), whether the phase was released
    /// although the release notice went missing, and whether a coordinator
    /// is alive.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub status_interval: f64,
    /// Bring the contents of FILE (`-`: standard input; UTF-8 text) to the
    /// phase: every member receives what each brought with the release.
    /// Each member may bring what SQS's largest message (1 MiB) leaves it
    /// beside the others: about (1 MiB - 16 KiB) / N bytes, counted as a
    /// JSON string with the member's name; a larger one fails at once.
    #[arg(long, value_name = "FILE")]
    pub data: Option<std::path::PathBuf>,
    /// On release, print the data every member brought as one JSON object
    /// ({"member": "data", ...}) on stdout, instead of the usual line. Exit
    /// code 8 if the release notice that carried it expired unread.
    #[arg(long)]
    pub gather: bool,
    /// This is the member's last phase: wait for its release, then no
    /// later phase expects this member.
    #[arg(long)]
    pub leave: bool,
}

#[derive(Args, Debug)]
pub struct AbortArgs {
    #[command(flatten)]
    pub barrier: BarrierArg,
    /// Why (shown to every waiter).
    #[arg(long)]
    pub reason: String,
    /// Who aborts (default: operator@HOST, the host's name).
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub barrier: BarrierArg,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Do not probe the coordinator (a message it answers with a new
    /// heartbeat, up to 3 s); judge it by its heartbeat's age on this host's
    /// clock instead, which is right only if the hosts' clocks agree.
    #[arg(long)]
    pub no_probe: bool,
}

#[derive(Args, Debug)]
pub struct QueuesArgs {
    /// Only queues whose name starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Print JSON (an array of rows).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// The address to serve the console on.
    #[arg(long, default_value = "127.0.0.1:9325")]
    pub bind: SocketAddr,
    /// Allow an address other than loopback (it also needs
    /// --allowed-host). The console has no login: anyone who can reach it
    /// sees the queues and barriers and can abort barriers (with the SQS
    /// permissions of this process), unless --read-only.
    #[arg(long)]
    pub allow_remote: bool,
    /// A Host name the console answers for besides its own address
    /// (repeatable): a host name or an IP address (IPv6 in brackets),
    /// optionally with :PORT (without one, any port), no scheme, path or
    /// wildcard; e.g. console.example.com or 10.0.0.5:9325. Requests for
    /// any other name are refused (421), whatever --allow-remote says, so
    /// that a web page cannot reach the console by pointing a name of its
    /// own at it (DNS rebinding). Bound to loopback, localhost, 127.0.0.1
    /// and [::1] with its port are always accepted; another address needs
    /// at least one.
    #[arg(long = "allowed-host", value_name = "NAME[:PORT]")]
    pub allowed_hosts: Vec<String>,
    /// Take no actions: the page shows no abort, and every state-changing
    /// request is refused.
    #[arg(long)]
    pub read_only: bool,
    /// Watch only queues (and barriers) whose name starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Seconds between reads of SQS (0.2 to 60). Each read lists the
    /// queues, gets each one's attributes and reads each barrier's state:
    /// against real SQS that is about (queues + barriers + 1) requests per
    /// read, billed.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub interval: f64,
}

impl From<ConsoleArgs> for ConsoleOptions {
    /// The console's options. An `--interval` outside 0.2 to 60 seconds
    /// (negative, not a number) becomes zero, which the console's check
    /// refuses.
    fn from(a: ConsoleArgs) -> Self {
        let range = ConsoleOptions::INTERVALS;
        let secs = range.start().as_secs_f64()..=range.end().as_secs_f64();
        ConsoleOptions {
            bind: a.bind,
            allow_remote: a.allow_remote,
            allowed_hosts: a.allowed_hosts,
            read_only: a.read_only,
            prefix: a.prefix,
            interval: if secs.contains(&a.interval) {
                Duration::from_secs_f64(a.interval)
            } else {
                Duration::ZERO
            },
            ..ConsoleOptions::default()
        }
    }
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The number of participant processes.
    #[arg(long, short, default_value_t = 4)]
    pub parties: usize,
    /// The number of phases each goes through.
    #[arg(long, short = 'k', default_value_t = 3)]
    pub phases: u64,
    /// The longest random phase work, in milliseconds.
    #[arg(long, default_value_t = 400)]
    pub max_work_ms: u64,
    /// The random seed of the work lengths (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Who coordinates: a `sqs-barrier coordinator` process, or the Lambda
    /// function's handler invoked by an emulated event source mapping.
    #[arg(long, value_enum, default_value_t = CoordinatorKind::Process)]
    pub coordinator: CoordinatorKind,
}

#[derive(Args, Debug)]
pub struct DemoWorkerArgs {
    #[arg(long)]
    pub barrier: String,
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub phases: u64,
    #[arg(long)]
    pub max_work_ms: u64,
    #[arg(long)]
    pub seed: u64,
}
