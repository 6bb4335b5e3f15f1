//! `sqs-barrier`: distributed barriers over Amazon SQS, from the shell.
//!
//! A thin binary: argument parsing and output here, everything else in the
//! `sqs-barrier` library, the embedded endpoint crate, the console crate
//! (the web console and the metrics) and the bench crate (`bench`).

mod advice;
mod cli;
mod commands;
mod demo;
mod exit;
mod table;

use std::io::IsTerminal as _;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let filter = match args.verbose {
        // A coordinator says what it is doing: standing by, taking over,
        // releasing.
        // (The SDK's credential chain warns of every provider that gave
        // nothing, with HTTP dumps: the error says what was tried; -v
        // shows them.)
        0 if matches!(args.command, cli::Command::Coordinator(_)) => {
            "warn,aws_config=error,sqs_barrier::coordinator=info"
        }
        // A console logs every action and every refusal.
        0 if matches!(args.command, cli::Command::Console(_)) => {
            "warn,aws_config=error,sqs_barrier_console=info"
        }
        0 => "warn,aws_config=error",
        1 => "info,aws=warn",
        _ => "debug,aws=info,hyper=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SQS_BARRIER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: logs piped to a file or a journal
        // stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sqs-barrier: cannot start the async runtime: {e}");
            return exit::INTERNAL.into();
        }
    };
    let code = rt.block_on(commands::run(args));
    // Don't wait for background tasks (pending long polls) on the way out.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    code.into()
}
