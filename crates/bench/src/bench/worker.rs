//! Worker processes (`bench --processes`): each runs a group of participants
//! and reports to the bench process on its stdout, one line per report:
//!
//! * `EP k first before released`: every participant of the group has
//!   finished episode `k` (microseconds since the Unix epoch: the first and
//!   the last check-in, the last release);
//! * `WAIT {"episodes": .., "waited_us": .., "checkin": {"SendMessage": ..},
//!   "requests": {"Operation": count, ...}}`: what the group's waits cost
//!   during the measured episodes (participant-episodes, microseconds
//!   waited, the check-ins' requests and the requests made while waiting, by
//!   operation; see `stats::Waiting`); before `REQ`;
//! * `ERRORS {"Operation": count, ...}`: the group's failed request attempts
//!   during the measured episodes, by operation; just before `REQ`;
//! * `REQ {"Operation": count, ...}`: the group's requests during the
//!   measured episodes; the last line of a worker that succeeded;
//! * `FAIL why`: the group failed; the last line.
//!
//! With `--gated` (`bench --duration`) a worker starts an episode only when
//! its stdin has permitted it: `PERMIT k` (episodes up to k may start) and
//! `LAST k` (episode k is the last one), one per line.
//!
//! With `--fanout-url URL` a worker runs a group of the fan-out floor's
//! receivers instead, with `--gather-url URL` a group of the gather floor's
//! senders, over line protocols of their own (see `probes`, `fanout` and
//! `gather`).

use std::process::Stdio;
use std::sync::Arc;

use sqs_barrier::{ClientOptions, Sqs};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use super::baseline::BaselineQueues;
use super::group::{Gate, Msg, Permit, Plan, Work, connect_members, run_group};
use super::{Failure, Target, seconds, work_seconds};
use crate::Failed;
use crate::args::{BenchArgs, BenchWorkerArgs};

/// A group of participants in its own process (`bench --processes`).
/// Prints `EP` lines, then `WAIT`, `ERRORS` and `REQ`; `FAIL why` on error.
/// With `--fanout-url`, a group of the fan-out floor's receivers instead
/// (see `fanout`); with `--gather-url`, of the gather floor's senders (see
/// `gather`). Says why it failed on stdout too (`FAIL why`).
pub(crate) async fn worker(a: BenchWorkerArgs, client: &ClientOptions) -> Result<(), Failed> {
    if let Some(url) = &a.fanout_url {
        return super::fanout::serve(&a, client, url).await;
    }
    if let Some(url) = &a.gather_url {
        return super::gather::serve(&a, client, url).await;
    }
    let result = async {
        let plan = Plan {
            episodes: a.episodes,
            timeout: seconds(a.episode_timeout, "--episode-timeout")?,
            work: Work {
                max_secs: work_seconds(a.work)?,
                seed: a.seed,
            },
            data_bytes: a.data_bytes,
        };
        let sqs = Sqs::connect(client).await?;
        let queues = if a.baseline {
            Some(Arc::new(BaselineQueues::open(&sqs, &a.barrier).await?))
        } else {
            None
        };
        let members = connect_members(&sqs, &a.barrier, a.first, a.count, queues).await?;
        // The sender stays here, so that the gate stays open after the last
        // permit until the group is done.
        let permits = Arc::new(watch::channel(Permit::default()).0);
        let gate = a.gated.then(|| {
            let p = permits.clone();
            std::thread::spawn(move || read_permits(&p));
            permits.subscribe()
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(run_group(sqs, members, plan, gate, tx));
        while let Some(m) = rx.recv().await {
            match m {
                Msg::Episode {
                    k,
                    first,
                    before,
                    released,
                } => println!("EP {k} {first} {before} {released}"),
                Msg::Waiting(w) => {
                    println!("WAIT {}", serde_json::to_string(&w).expect("waiting"));
                }
                Msg::Errors(c) => {
                    println!("ERRORS {}", serde_json::to_string(&c).expect("counts"));
                }
                Msg::Requests(c) => {
                    println!("REQ {}", serde_json::to_string(&c).expect("counts"));
                    return Ok(());
                }
                Msg::Failed(e) => return Err(Failure::new(Failed::Timeout, e)),
            }
        }
        Err(Failure::new(Failed::Internal, "the participants stopped"))
    }
    .await;
    result.map_err(|f| {
        println!("FAIL {}", f.msg);
        f.failed
    })
}

/// Reads `PERMIT k` and `LAST k` lines from stdin into `permits` (on a
/// thread of its own: a blocking read).
fn read_permits(permits: &watch::Sender<Permit>) {
    for l in std::io::stdin().lines() {
        let Ok(l) = l else { return };
        if let Some(p) = parse_permit(&l) {
            permits.send_modify(|q| {
                q.upto = q.upto.max(p.upto);
                q.last |= p.last;
            });
        }
    }
}

fn parse_permit(l: &str) -> Option<Permit> {
    let (word, k) = l.split_once(' ')?;
    let upto = k.trim().parse().ok()?;
    match word {
        "PERMIT" => Some(Permit { upto, last: false }),
        "LAST" => Some(Permit { upto, last: true }),
        _ => None,
    }
}

/// Sends a worker the permits of `gate` on its stdin as they change, until
/// the last one.
async fn send_permits(mut stdin: tokio::process::ChildStdin, mut gate: Gate) {
    loop {
        let p = *gate.borrow_and_update();
        let word = if p.last { "LAST" } else { "PERMIT" };
        let line = format!("{word} {}\n", p.upto);
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
        if p.last || gate.changed().await.is_err() {
            return;
        }
    }
}

/// One line of a worker's stdout (`None` for anything else).
fn parse_line(l: &str) -> Option<Msg> {
    if let Some(rest) = l.strip_prefix("EP ") {
        let v: Vec<u64> = rest
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        return match v[..] {
            [k, first, before, released] => Some(Msg::Episode {
                k,
                first,
                before,
                released,
            }),
            _ => None,
        };
    }
    if let Some(rest) = l.strip_prefix("WAIT ") {
        return serde_json::from_str(rest).ok().map(Msg::Waiting);
    }
    if let Some(rest) = l.strip_prefix("ERRORS ") {
        return serde_json::from_str(rest).ok().map(Msg::Errors);
    }
    if let Some(rest) = l.strip_prefix("REQ ") {
        return serde_json::from_str(rest).ok().map(Msg::Requests);
    }
    l.strip_prefix("FAIL ").map(|e| Msg::Failed(e.to_owned()))
}

/// A worker process of this executable on `target`, its stdout piped.
pub(super) fn child(exe: &std::path::Path, target: &Target) -> Command {
    let mut c = Command::new(exe);
    c.arg("--endpoint-url").arg(&target.url);
    if let Some(r) = &target.client.region {
        c.arg("--region").arg(r);
    }
    if let Some(p) = &target.client.profile {
        c.arg("--profile").arg(p);
    }
    if target.embedded {
        c.env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE");
    }
    c.stdout(Stdio::piped()).kill_on_drop(true);
    c
}

/// Starts `--processes` worker processes, each with its share of the
/// participants, and forwards their reports to `tx` (and the permits of
/// `gate` to them); the number of workers.
pub(super) fn spawn(
    a: &BenchArgs,
    target: &Target,
    name: &str,
    plan: Plan,
    gate: Option<&Gate>,
    tx: &mpsc::UnboundedSender<Msg>,
) -> Result<usize, Failure> {
    let n = a.parties;
    let p = a.processes.unwrap_or(1);
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(Failed::Internal, format!("my own executable: {e}")))?;
    let mut first = 0;
    for g in 0..p {
        let count = n / p + usize::from(g < n % p);
        let mut c = child(&exe, target);
        c.args(["bench-worker", "--barrier", name])
            .args(["--first", &first.to_string()])
            .args(["--count", &count.to_string()])
            .args(["--episodes", &plan.episodes.to_string()])
            .args(["--episode-timeout", &a.episode_timeout.to_string()])
            .args(["--work", &plan.work.max_secs.to_string()])
            .args(["--seed", &plan.work.seed.to_string()])
            .args(["--data-bytes", &plan.data_bytes.to_string()]);
        if a.baseline {
            c.arg("--baseline");
        }
        if gate.is_some() {
            c.arg("--gated").stdin(Stdio::piped());
        } else {
            c.stdin(Stdio::null());
        }
        first += count;
        let mut ch = c
            .spawn()
            .map_err(|e| Failure::new(Failed::Internal, format!("cannot start worker {g}: {e}")))?;
        if let (Some(gate), Some(stdin)) = (gate, ch.stdin.take()) {
            tokio::spawn(send_permits(stdin, gate.clone()));
        }
        let out = ch.stdout.take().expect("piped");
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            let mut ended = false;
            while let Ok(Some(l)) = lines.next_line().await {
                if let Some(m) = parse_line(&l) {
                    ended |= matches!(m, Msg::Requests(_) | Msg::Failed(_));
                    let _ = tx.send(m);
                }
            }
            let status = ch.wait().await;
            if !ended {
                let _ = tx.send(Msg::Failed(format!(
                    "worker process {g} ended without a report ({status:?})"
                )));
            }
        });
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_lines_round_trip() {
        assert!(matches!(
            parse_line("EP 3 5 10 20"),
            Some(Msg::Episode {
                k: 3,
                first: 5,
                before: 10,
                released: 20
            })
        ));
        assert!(
            matches!(parse_line("REQ {\"SendMessage\":4}"), Some(Msg::Requests(c)) if c["SendMessage"] == 4)
        );
        assert!(
            matches!(parse_line("FAIL episode 2: x"), Some(Msg::Failed(e)) if e == "episode 2: x")
        );
        let w = r#"WAIT {"episodes":4,"waited_us":90,"checkin":{"SendMessage":4},"requests":{"ReceiveMessage":5}}"#;
        assert!(
            matches!(parse_line(w), Some(Msg::Waiting(w)) if w.episodes == 4 && w.waited_us == 90 && w.requests["ReceiveMessage"] == 5)
        );
        assert!(parse_line("WAIT {}").is_none());
        assert!(
            matches!(parse_line("ERRORS {\"TagQueue\":2}"), Some(Msg::Errors(c)) if c["TagQueue"] == 2)
        );
        assert!(matches!(parse_line("ERRORS {}"), Some(Msg::Errors(c)) if c.is_empty()));
        assert!(parse_line("EP 1 2 3").is_none());
        assert!(parse_line("noise").is_none());
    }

    #[test]
    fn permit_lines() {
        assert_eq!(
            parse_permit("PERMIT 7"),
            Some(Permit {
                upto: 7,
                last: false
            })
        );
        assert_eq!(
            parse_permit("LAST 9"),
            Some(Permit {
                upto: 9,
                last: true
            })
        );
        assert_eq!(parse_permit("LAST x"), None);
        assert_eq!(parse_permit("STOP 1"), None);
    }
}
