//! `sqs-barrier-quota-proxy --upstream HOST:PORT [--tagging-tps N]`: SQS's
//! tagging quota in front of an SQS endpoint that has none (moto), as a
//! process, for test suites that do not run under cargo (tests/python).
//!
//! It listens on a free loopback port, prints `quota proxy listening on
//! http://127.0.0.1:PORT (upstream HOST:PORT, N tagging actions per second)`
//! as its first line of stdout, and serves until it is killed (SIGTERM).
//! See `sqs_barrier_testkit::quota` for what it does.

use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use sqs_barrier_local::DEFAULT_TAGGING_TPS;
use sqs_barrier_testkit::QuotaProxy;

const USAGE: &str = "usage: sqs-barrier-quota-proxy --upstream HOST:PORT [--tagging-tps N]";

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let (upstream, tagging_tps) = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("sqs-barrier-quota-proxy: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let proxy = match QuotaProxy::start_with(upstream, tagging_tps) {
        Ok(proxy) => proxy,
        Err(error) => {
            eprintln!("sqs-barrier-quota-proxy: cannot listen: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "quota proxy listening on {} (upstream {upstream}, {tagging_tps} tagging actions per second)",
        proxy.endpoint_url()
    );
    let _ = out.flush();
    drop(out);
    proxy.run_forever();
    ExitCode::SUCCESS
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(SocketAddr, u32), String> {
    let mut upstream = None;
    let mut tagging_tps = DEFAULT_TAGGING_TPS;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--upstream" => {
                let text = value("--upstream")?;
                let addr = text
                    .to_socket_addrs()
                    .map_err(|e| format!("--upstream {text}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("--upstream {text}: no address"))?;
                upstream = Some(addr);
            }
            "--tagging-tps" => {
                let text = value("--tagging-tps")?;
                tagging_tps = text
                    .parse()
                    .map_err(|e| format!("--tagging-tps {text}: {e}"))?;
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let upstream = upstream.ok_or("--upstream is required")?;
    Ok((upstream, tagging_tps))
}
