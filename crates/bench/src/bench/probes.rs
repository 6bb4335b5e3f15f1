//! Worker processes of the endpoint's floors (with `bench --processes`):
//! each runs its group's share of a floor's clients, grouped as the
//! participants are (the fan-out floor's receivers, `bench-worker
//! --fanout-url URL`; the gather floor's senders, `bench-worker
//! --gather-url URL`). A worker is told what to do on its stdin, one line
//! per step of a sample (`WORD i`, `i` the sample), and answers on its
//! stdout, one line per step (`WORD i numbers...`; the words are those of
//! `fanout` and `gather`), or `FAIL why` as its last line. A worker ends
//! when its stdin is closed.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;

use super::{Failure, Target};
use crate::Failed;

/// Samples of a floor: 11 (the gather floor's after a round 0 that opens
/// connections), but none is begun once the measurement has taken
/// [`BUDGET`] (the first always is). At N = 1,000 a sample takes well
/// under a second on the embedded endpoint.
pub(super) const SAMPLES: usize = 11;
pub(super) const BUDGET: Duration = Duration::from_secs(60);

/// How long a sample may take: for every long poll's attempt to be counted
/// (a worker process's first sample includes its start), and then for the
/// messages to arrive.
pub(super) const PARK_LIMIT: Duration = Duration::from_secs(30);
pub(super) const DELIVERY_LIMIT: Duration = Duration::from_secs(30);

/// A worker process running a group of a floor's clients.
pub(super) struct Probe {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Probe {
    /// Writes `line` (and a newline) to the worker's stdin.
    async fn tell(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("a worker's stdin is closed")?;
        let e = |e: std::io::Error| format!("a worker process: {e}");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(e)?;
        stdin.flush().await.map_err(e)
    }

    /// The next line of the worker that starts with `word`, with the
    /// rest; fails on `FAIL`, at the end of its output and after `until`.
    pub(super) async fn expect(
        &mut self,
        word: &str,
        until: tokio::time::Instant,
    ) -> Result<String, String> {
        loop {
            let line = tokio::time::timeout_at(until, self.lines.next_line())
                .await
                .map_err(|_| format!("a worker process did not answer {word} in time"))?
                .map_err(|e| format!("a worker process: {e}"))?
                .ok_or_else(|| "a worker process ended".to_owned())?;
            if let Some(rest) = line.strip_prefix(word) {
                return Ok(rest.trim().to_owned());
            }
            if let Some(why) = line.strip_prefix("FAIL ") {
                return Err(why.to_owned());
            }
        }
    }
}

/// Tells every worker `line`.
pub(super) async fn tell_all(ws: &mut [Probe], line: &str) -> Result<(), String> {
    for w in ws.iter_mut() {
        w.tell(line).await?;
    }
    Ok(())
}

/// Starts `p` worker processes running the `n` clients of a floor (`what`,
/// for messages) on queue `url` (given as `flag URL`), shared out as the
/// participants are.
pub(super) fn start(
    target: &Target,
    name: &str,
    (flag, url): (&str, &str),
    n: usize,
    p: usize,
    what: &str,
) -> Result<Vec<Probe>, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(Failed::Internal, format!("my own executable: {e}")))?;
    let mut out = Vec::with_capacity(p);
    let mut first = 0;
    for g in 0..p {
        let count = n / p + usize::from(g < n % p);
        let mut c = super::worker::child(&exe, target);
        c.args(["bench-worker", "--barrier", name])
            .args(["--first", &first.to_string()])
            .args(["--count", &count.to_string()])
            .args(["--episodes", "0", "--episode-timeout", "1"])
            .args([flag, url])
            .stdin(Stdio::piped());
        first += count;
        let mut child = c.spawn().map_err(|e| {
            Failure::new(
                Failed::Internal,
                format!("cannot start {what} worker {g}: {e}"),
            )
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        out.push(Probe {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        });
    }
    Ok(out)
}

/// Ends the worker processes (their stdin closed), killing those that do
/// not end within 5 s.
pub(super) async fn close(ws: Vec<Probe>) {
    for mut w in ws {
        drop(w.stdin.take());
        if tokio::time::timeout(Duration::from_secs(5), w.child.wait())
            .await
            .is_err()
        {
            let _ = w.child.kill().await;
        }
    }
}

/// A worker's side: the lines of its stdin (read on a thread of its own, a
/// blocking read); the channel closes with stdin.
pub(super) fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for l in std::io::stdin().lines() {
            let Ok(l) = l else { return };
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

/// The sample `i` of a command line `WORD i`.
pub(super) fn command(line: &str, word: &str) -> Option<usize> {
    line.strip_prefix(word)?
        .strip_prefix(' ')?
        .trim()
        .parse()
        .ok()
}

/// The numbers of a worker's answer `i a b ...` for sample `i`: `a b
/// ...`, or none if the answer is for another sample or not all numbers.
pub(super) fn numbers(rest: &str, i: usize) -> Option<Vec<u64>> {
    let v: Vec<u64> = rest
        .split(' ')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match v.split_first() {
        Some((&k, tail)) if k == i as u64 => Some(tail.to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        assert_eq!(command("PARK 3", "PARK"), Some(3));
        assert_eq!(command("PARK 3 ", "PARK"), Some(3));
        assert_eq!(command("PARKED 3", "PARK"), None);
        assert_eq!(command("SEND x", "SEND"), None);
        assert_eq!(command("SEND", "SEND"), None);
    }

    #[test]
    fn answers_of_a_sample() {
        assert_eq!(numbers("3 5 0", 3), Some(vec![5, 0]));
        assert_eq!(numbers("3", 3), Some(vec![]));
        assert_eq!(numbers("3 5 0", 4), None);
        assert_eq!(numbers("x 5 0", 3), None);
        assert_eq!(numbers("3 5 y", 3), None);
        assert_eq!(numbers("", 3), None);
    }
}
