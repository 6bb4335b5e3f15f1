//! One function per subcommand.

use std::io::Write as _;
use std::time::Duration;

use sqs_barrier::core::participant::ParticipantOptions;
use sqs_barrier::{Barrier, ClientOptions, CoordinatorOptions, Error, Sqs, WaitOptions, admin};
use sqs_barrier_console::{Console, ConsoleOptions, OptionsError};

use crate::cli::*;
use crate::{advice, demo, exit, table};

/// Runs the command; returns the process exit code.
pub async fn run(args: Cli) -> u8 {
    let mut client = ClientOptions::default();
    client.endpoint_url = args.endpoint_url.clone();
    client.region = args.region.clone();
    client.profile = args.profile.clone();
    let result = match args.command {
        Command::Local(a) => return local(a).await,
        Command::Demo(a) => return demo::run(a, args.endpoint_url.as_deref()).await,
        Command::DemoWorker(a) => return demo::worker(a, &client).await,
        Command::Bench(c) => return bench(c, &client).await,
        Command::Console(a) => return console(a, &client).await,
        cmd => match Sqs::connect(&client).await {
            Ok(sqs) => dispatch(cmd, &sqs).await,
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(()) => exit::OK,
        Err(Failed::Barrier(e)) => {
            eprintln!("sqs-barrier: {}", advice::message(&e));
            exit::of(&e)
        }
        Err(Failed::Listen { what, addr, source }) => {
            eprintln!("sqs-barrier: {what}: cannot listen on {addr}: {source}");
            exit::INFRA
        }
    }
}

/// Why a command failed: the library says why, or a local resource the
/// command needs could not be had.
enum Failed {
    Barrier(Error),
    /// A port to listen on (taken, or not allowed): an infrastructure
    /// error (exit 6), as SQS unreachable is.
    Listen {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Failed::Barrier(e)
    }
}

async fn dispatch(cmd: Command, sqs: &Sqs) -> Result<(), Failed> {
    match cmd {
        Command::Setup(a) => setup(a, sqs).await?,
        Command::Teardown(a) => {
            let deleted = admin::teardown(sqs, &a.barrier).await?;
            if deleted.is_empty() {
                println!("barrier {}: nothing to tear down", a.barrier);
            } else {
                println!(
                    "barrier {}: deleted {}; SQS allows these names again 60 s after deletion",
                    a.barrier,
                    deleted.join(", ")
                );
            }
        }
        Command::Coordinator(a) => return coordinator(a, sqs).await,
        Command::Wait(a) => wait(a, sqs).await?,
        Command::Join(a) => join(a, sqs).await?,
        Command::Leave(a) => leave(a, sqs).await?,
        Command::Abort(a) => {
            let by =
                a.by.unwrap_or_else(|| format!("operator@{}", sqs_barrier::admin::hostname()));
            sqs_barrier::abort_barrier(sqs, &a.barrier.barrier, &by, &a.reason).await?;
            println!(
                "barrier {}: abort sent ({by}: {})",
                a.barrier.barrier, a.reason
            );
        }
        Command::Status(a) => status(a, sqs).await?,
        Command::Queues(a) => {
            let rows = admin::list_queues(sqs, a.prefix.as_deref()).await?;
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("rows serialise")
                );
            } else {
                print!("{}", table::queues(&rows));
            }
        }
        Command::Local(_)
        | Command::Demo(_)
        | Command::DemoWorker(_)
        | Command::Bench(_)
        | Command::Console(_) => unreachable!(),
    }
    Ok(())
}

/// `bench`, `bench-worker`, `bench-report`: the bench crate's, which says
/// itself why it failed; the exit code.
async fn bench(command: sqs_barrier_bench::BenchCommand, client: &ClientOptions) -> u8 {
    use sqs_barrier_bench::Failed;
    match sqs_barrier_bench::run(command, client).await {
        Ok(()) => exit::OK,
        Err(Failed::Usage) => exit::USAGE,
        Err(Failed::Infrastructure) => exit::INFRA,
        Err(Failed::Timeout) => exit::TIMEOUT,
        Err(Failed::Barrier(e)) => exit::of(&e),
        Err(Failed::Internal) => exit::INTERNAL,
        Err(_) => exit::INTERNAL,
    }
}

fn secs(s: f64, what: &str) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        Error::Config(sqs_barrier::core::ConfigError::Invalid(format!(
            "{what} must be a non-negative number of seconds, not {s}"
        )))
    })
}

async fn setup(a: SetupArgs, sqs: &Sqs) -> Result<(), Error> {
    let mut opts = admin::SetupOptions::new(a.parties);
    opts.members = a.members;
    opts.deadline = a.deadline.map(|d| secs(d, "--deadline")).transpose()?;
    opts.fifo = a.fifo;
    if let (Some(k), Some(g)) = (a.quorum, a.grace) {
        opts.quorum = Some((k, secs(g, "--grace")?));
    }
    let out = admin::setup(sqs, &a.barrier.barrier, &opts).await?;
    let cfg = &out.info.config;
    println!(
        "barrier {}: {} ({} members{}{}{}; check-in queue {})",
        cfg.name,
        if out.created {
            "created"
        } else {
            "already set up"
        },
        cfg.members.len(),
        cfg.deadline
            .map(|d| format!(", deadline {:.1} s", d.as_secs_f64()))
            .unwrap_or_default(),
        if cfg.fifo { ", FIFO" } else { "" },
        quorum_text(cfg),
        out.info.urls.checkin
    );
    Ok(())
}

async fn coordinator(a: CoordinatorArgs, sqs: &Sqs) -> Result<(), Failed> {
    let mut opts = CoordinatorOptions::default();
    opts.force = a.force;
    let heartbeat = secs(a.heartbeat, "--heartbeat")?;
    if !(0.1..=300.0).contains(&a.heartbeat) {
        return Err(Error::Config(sqs_barrier::core::ConfigError::Invalid(
            "--heartbeat must be between 0.1 and 300 seconds".into(),
        ))
        .into());
    }
    opts.core.heartbeat = heartbeat;
    if !(1..=3600).contains(&a.visibility) {
        return Err(Error::Config(sqs_barrier::core::ConfigError::Invalid(
            "--visibility must be between 1 and 3600 seconds".into(),
        ))
        .into());
    }
    opts.visibility = Duration::from_secs(a.visibility);
    let mut events = None;
    if let Some(addr) = a.metrics_bind {
        let (gauges, tx, local) = sqs_barrier_console::serve_coordinator(
            addr,
            &a.barrier.barrier,
            sqs.requests().clone(),
        )
        .await
        .map_err(|source| Failed::Listen {
            what: "--metrics-bind",
            addr,
            source,
        })?;
        opts.gauges = Some(gauges);
        events = Some(tx);
        eprintln!("sqs-barrier: metrics at http://{local}/metrics");
    }
    eprintln!(
        "sqs-barrier: coordinator of barrier {} at {} (stop with Ctrl-C); it stands by while another is active",
        a.barrier.barrier,
        sqs.endpoint()
    );
    Ok(
        sqs_barrier::run_coordinator(sqs, &a.barrier.barrier, opts, events, shutdown_signal())
            .await?,
    )
}

/// Serves the web console (crate `sqs-barrier-console`) until SIGINT or
/// SIGTERM; returns the exit code.
async fn console(a: ConsoleArgs, client: &ClientOptions) -> u8 {
    let options = ConsoleOptions::from(a);
    let bind = options.bind;
    if let Err(e) = options.check() {
        match e {
            OptionsError::NotLoopback(_) => eprintln!(
                "sqs-barrier: refusing to serve the console on {bind} (not loopback): it has no login and can abort barriers; pass --allow-remote to do it anyway"
            ),
            OptionsError::NoAllowedHost(_) => eprintln!(
                "sqs-barrier: serving the console on {bind} (not loopback) needs --allowed-host NAME: the name (or address) browsers will use to reach it; requests for any other name are refused so that no web page can reach the console through DNS rebinding"
            ),
            OptionsError::AllowedHost(why) => eprintln!("sqs-barrier: --allowed-host {why}"),
            OptionsError::Interval(_) => {
                if options.is_remote() {
                    warn_remote(bind, options.read_only);
                }
                eprintln!("sqs-barrier: --interval must be between 0.2 and 60 seconds");
            }
            e @ OptionsError::TokenLifetime(_) => eprintln!("sqs-barrier: {e}"),
        }
        return exit::USAGE;
    }
    if options.is_remote() {
        warn_remote(bind, options.read_only);
    }
    let sqs = match Sqs::connect(client).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sqs-barrier: {}", advice::message(&e));
            return exit::of(&e);
        }
    };
    let listener = match tokio::net::TcpListener::bind(bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sqs-barrier: cannot listen on {bind}: {e}");
            return exit::INFRA;
        }
    };
    let local = listener.local_addr().unwrap_or(bind);
    let console = match Console::new(sqs, options, local) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sqs-barrier: {e}");
            return exit::USAGE;
        }
    };
    let url = format!("http://{local}/");
    println!(
        "sqs-barrier console: {url} (SQS endpoint {}; metrics at {url}metrics; stop with Ctrl-C)",
        console.endpoint()
    );
    let _ = std::io::stdout().flush();
    console.serve(listener, shutdown_signal()).await;
    eprintln!("sqs-barrier console: shutting down");
    exit::OK
}

fn warn_remote(bind: std::net::SocketAddr, read_only: bool) {
    if read_only {
        eprintln!(
            "sqs-barrier: WARNING: serving the console on {bind}: anyone who can reach it sees every queue"
        );
    } else {
        eprintln!(
            "sqs-barrier: WARNING: serving the console on {bind}: anyone who can reach it sees every queue and can abort barriers (--read-only to take no actions)"
        );
    }
}

/// Resolves on SIGINT or SIGTERM.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    // The handlers are installed now, not when the future is first polled:
    // a signal that comes while a command is still starting (a coordinator
    // reading the barrier's state) is not lost, nor does it kill the process.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            async fn recv(s: &mut Option<Signal>) {
                match s.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = recv(&mut term) => {}
                _ = recv(&mut interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn wait(a: WaitArgs, sqs: &Sqs) -> Result<(), Error> {
    let mut opts = ParticipantOptions::default();
    opts.silence_after = secs(a.silence, "--silence")?;
    opts.status_interval =
        secs(a.status_interval, "--status-interval")?.max(Duration::from_millis(100));
    let timeout = a.timeout.map(|t| secs(t, "--timeout")).transpose()?;
    let mut wait = WaitOptions::timeout(timeout);
    if let Some(path) = &a.data {
        wait = wait.with_data(read_data(path)?);
    }
    if a.gather {
        wait = wait.gather();
    }
    if a.leave {
        wait = wait.leaving();
    }
    let barrier = Barrier::connect_with(sqs, &a.barrier.barrier, &a.id, opts).await?;
    barrier.set_next_phase(a.phase);
    let released = barrier.wait_with(wait).await?;
    if a.gather {
        let data = released.data.unwrap_or_default();
        println!(
            "{}",
            serde_json::to_string(&data).expect("a map of strings serialises")
        );
        return Ok(());
    }
    // A quorum release names whom it went on without: every member's line
    // says the same.
    let without = match released.dropped.as_deref() {
        Some(d) if !d.is_empty() => format!("; without {} (members no more)", d.join(", ")),
        _ => String::new(),
    };
    println!(
        "barrier {}: phase {} released for {} after {:.3} s{without}{}",
        a.barrier.barrier,
        released.generation,
        a.id,
        released.waited.as_secs_f64(),
        if a.leave { "; left the barrier" } else { "" }
    );
    Ok(())
}

/// Reads `--data FILE` (`-`: standard input) as UTF-8 text.
fn read_data(path: &std::path::Path) -> Result<String, Error> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map(|_| b)
    } else {
        std::fs::read(path)
    }
    .map_err(|e| {
        Error::Config(sqs_barrier::core::ConfigError::Invalid(format!(
            "--data {}: {e}",
            path.display()
        )))
    })?;
    String::from_utf8(bytes).map_err(|_| {
        Error::Config(sqs_barrier::core::ConfigError::Invalid(format!(
            "--data {}: not UTF-8 text; encode binary data (base64) first",
            path.display()
        )))
    })
}

async fn join(a: JoinArgs, sqs: &Sqs) -> Result<(), Error> {
    let timeout = secs(a.timeout, "--timeout")?;
    let joined = Barrier::join(sqs, &a.barrier.barrier, a.id.as_deref(), timeout).await?;
    eprintln!(
        "sqs-barrier: joined barrier {} as {}; its first phase is {}",
        a.barrier.barrier, joined.member, joined.first_phase
    );
    println!("{} {}", joined.member, joined.first_phase);
    Ok(())
}

async fn leave(a: LeaveArgs, sqs: &Sqs) -> Result<(), Error> {
    let data = a.data.as_deref().map(read_data).transpose()?;
    let barrier = Barrier::connect(sqs, &a.barrier.barrier, &a.id).await?;
    barrier.set_next_phase(a.phase);
    let g = barrier.leave(data).await?;
    println!(
        "barrier {}: {} arrived at phase {g} and left; no later phase expects it",
        a.barrier.barrier, a.id
    );
    Ok(())
}

fn quorum_text(cfg: &sqs_barrier::core::BarrierConfig) -> String {
    cfg.quorum
        .map(|q| {
            format!(
                ", quorum {} with {:.1} s grace",
                q.min,
                q.grace.as_secs_f64()
            )
        })
        .unwrap_or_default()
}

async fn status(a: StatusArgs, sqs: &Sqs) -> Result<(), Error> {
    let st = admin::status_with(sqs, &a.barrier.barrier, !a.no_probe).await?;
    if a.json {
        println!("{}", st.to_json());
        return Ok(());
    }
    let cfg = &st.config;
    let members = &cfg.members;
    let open = st.state.as_ref().and_then(|s| s.open.as_ref());
    let arrived = st.arrived();
    let missing = st.missing().unwrap_or_default();
    println!(
        "barrier {}: {} members{}{}{}",
        cfg.name,
        members.len(),
        if cfg.fifo {
            ", FIFO check-in queue"
        } else {
            ""
        },
        cfg.deadline
            .map(|d| format!(", deadline {:.1} s", d.as_secs_f64()))
            .unwrap_or_default(),
        quorum_text(cfg)
    );
    match (&st.state, st.heartbeat_age) {
        (Some(s), Some(age)) => {
            println!(
                "coordinator: {} ({}; {}; last heartbeat {:.1} s ago by this host's clock)",
                if st.coordinator_alive() {
                    "alive"
                } else if s.stopped {
                    "STOPPED"
                } else {
                    "SILENT"
                },
                s.coordinator,
                st.check,
                age.as_secs_f64()
            );
            if !s.standbys.is_empty() {
                println!("standing by: {}", s.standbys.join(", "));
            }
        }
        _ => println!(
            "coordinator: none has run yet (start `sqs-barrier coordinator --barrier {}`)",
            cfg.name
        ),
    }
    if let Some(s) = &st.state {
        println!("released: every phase below {}", s.released_below);
        match open {
            Some(o) => {
                println!(
                    "phase {}: {} of {} arrived",
                    o.generation,
                    arrived.len(),
                    arrived.len() + missing.len()
                );
                println!("  arrived: {}", list(&arrived));
                println!("  missing: {}", list(&missing));
            }
            None => println!("phase {}: nobody has arrived yet", s.released_below),
        }
        if s.roll.is_some() {
            let by_phase = st.members_by_phase();
            let last = by_phase.len() - 1;
            for (k, (from, names)) in by_phase.iter().enumerate() {
                let when = if k == last {
                    format!("from phase {from} on")
                } else if by_phase[k + 1].0 - 1 == *from {
                    format!("phase {from}")
                } else {
                    format!("phases {from} to {}", by_phase[k + 1].0 - 1)
                };
                println!("members, {when}: {} ({})", list(names), names.len());
            }
        }
        if let Some(b) = &s.broken {
            println!(
                "BROKEN from phase {}: {}; missing then: {}",
                b.from_gen,
                b.cause,
                list(&b.missing)
            );
        }
        println!(
            "rejected messages: {} (dead-letter queue holds {})",
            s.rejected,
            st.dead_letters.map_or("?".into(), |n| n.to_string())
        );
    }
    Ok(())
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "-".into()
    } else if names.len() <= 50 {
        names.join(", ")
    } else {
        format!("{}, ... ({} in all)", names[..50].join(", "), names.len())
    }
}

async fn local(a: LocalArgs) -> u8 {
    if !a.bind.ip().is_loopback() {
        if !a.allow_remote {
            eprintln!(
                "sqs-barrier: refusing to listen on {} (not loopback): the endpoint has no authentication; pass --allow-remote to do it anyway",
                a.bind
            );
            return exit::USAGE;
        }
        eprintln!(
            "sqs-barrier: WARNING: listening on {}: anyone who can reach it can read and write every queue",
            a.bind
        );
    }
    let mut options = sqs_barrier_local::Options::default()
        .with_max_connections(usize::try_from(a.max_connections).unwrap_or(usize::MAX))
        .with_header_read_timeout(std::time::Duration::from_secs(a.header_read_timeout))
        .with_tagging_tps(a.tagging_tps);
    if let Some(spec) = a.chaos {
        options = options.with_chaos(spec, a.chaos_seed);
    }
    if let Some(limit) = a.max_in_flight {
        options = options.with_max_in_flight(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    if let Some(latency) = a.latency {
        options = options.with_latency(latency);
    }
    let server = match sqs_barrier_local::Server::bind_with(a.bind, options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sqs-barrier: cannot listen on {}: {e}", a.bind);
            return exit::INFRA;
        }
    };
    let url = server.endpoint_url();
    // Whoever reads our stdout may stop reading (a script that took the URL):
    // the endpoint keeps serving all the same.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "sqs-barrier local: SQS endpoint listening on {url}");
    let _ = writeln!(
        out,
        "  export AWS_ENDPOINT_URL={url} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
    );
    if let (Some(spec), Some(seed)) = (server.chaos_spec(), server.chaos_seed()) {
        let _ = writeln!(
            out,
            "  injecting faults: {spec} (--chaos-seed {seed} repeats the decisions)"
        );
    }
    if let Some(latency) = a.latency {
        let _ = writeln!(out, "  adding {latency} of latency to every response");
    }
    if let Some(limit) = a.max_in_flight {
        let _ = writeln!(
            out,
            "  in-flight quota lowered to {limit} messages per queue"
        );
    }
    if a.tagging_tps == 0 {
        let _ = writeln!(out, "  tagging quota off (--tagging-tps 0)");
    } else if a.tagging_tps != sqs_barrier_local::DEFAULT_TAGGING_TPS {
        let _ = writeln!(
            out,
            "  tagging quota set to {} actions per second",
            a.tagging_tps
        );
    }
    let _ = out.flush();
    drop(out);
    shutdown_signal().await;
    if let Some(counts) = server.chaos_counts() {
        eprintln!("sqs-barrier local: faults injected: {counts}");
    }
    eprintln!("sqs-barrier local: shutting down");
    server.shutdown().await;
    exit::OK
}
