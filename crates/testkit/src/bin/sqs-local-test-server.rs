//! Runs the embedded SQS endpoint for tests written in other languages (the
//! boto3 suite in `tests/python`).
//!
//! Protocol: the first stdout line is `LISTENING http://127.0.0.1:PORT`; the
//! server runs until stdin reaches EOF (the parent went away or closed the
//! pipe) or SIGTERM/SIGINT arrives, then shuts down and exits 0.

use std::io::Write;

use tokio::io::AsyncReadExt;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let server = sqs_barrier_local::Server::bind("127.0.0.1:0".parse().unwrap()).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "LISTENING {}", server.endpoint_url())?;
        stdout.flush()?;
    }

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = stdin_closed() => {}
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}

/// Completes when stdin reaches EOF or fails; input itself is ignored.
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}
