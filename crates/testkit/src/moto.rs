//! A moto server (the Python AWS mock) as a child process, one per caller.
//!
//! moto is the reference implementation the conformance suite compares the
//! embedded endpoint against. It is installed into `.venv` by `scripts/test`,
//! which exports `SQS_BARRIER_MOTO_SERVER`. A missing moto is a hard failure:
//! a suite that silently skips half its targets would look green and test
//! nothing.
//!
//! moto has no tagging quota; SQS and the embedded endpoint have one. Clients
//! therefore reach moto through a [`QuotaProxy`] that applies it (see
//! [`crate::quota`]), so code meets the same quota on both targets.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::quota::QuotaProxy;

/// Environment variable naming the `moto_server` executable.
pub const MOTO_SERVER_ENV: &str = "SQS_BARRIER_MOTO_SERVER";

/// How long a freshly spawned moto may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a port is tried again when moto could not bind it.
const PORT_ATTEMPTS: usize = 5;

/// A running `moto_server` behind its [`QuotaProxy`], both stopped (moto
/// killed) when this value is dropped (also while a panicking test unwinds).
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// What clients talk to; `None` only while moto is starting.
    proxy: Option<QuotaProxy>,
}

impl MotoServer {
    /// The endpoint URL for SDK clients, like `http://127.0.0.1:PORT`: the
    /// proxy that applies SQS's tagging quota in front of moto.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.local_addr())
    }

    /// The address clients use: the quota proxy's.
    pub fn local_addr(&self) -> SocketAddr {
        self.proxy
            .as_ref()
            .map_or(self.addr, QuotaProxy::local_addr)
    }

    /// The file that receives moto's stdout and stderr (one line per request).
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // The proxy first: it stops accepting and drops its connections.
        self.proxy = None;
        // kill_on_drop would do this too; doing it here makes the intent plain
        // and lets us remove the log of a server that is gone.
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Starts a moto server on a free loopback port, waits until it accepts
/// connections, and puts a [`QuotaProxy`] (SQS's default tagging quota) in
/// front of it.
///
/// # Panics
/// If `SQS_BARRIER_MOTO_SERVER` is unset or does not name a file (run
/// `scripts/test`, which installs moto), or if moto does not come up in time.
pub async fn moto() -> MotoServer {
    let program = moto_program();
    let mut last_error = String::new();
    for _ in 0..PORT_ATTEMPTS {
        match start_on_free_port(&program).await {
            Ok(server) => return server,
            // Another process can take the port between our probe and moto's
            // bind; moto then exits at once and we try a fresh port.
            Err(error) => last_error = error,
        }
    }
    panic!("moto_server did not start after {PORT_ATTEMPTS} attempts: {last_error}");
}

fn moto_program() -> PathBuf {
    let hint = "run the tests through `scripts/test`, which installs moto into .venv \
                and exports SQS_BARRIER_MOTO_SERVER (or set it to a moto_server executable)";
    let Some(value) = std::env::var_os(MOTO_SERVER_ENV) else {
        panic!("{MOTO_SERVER_ENV} is not set: {hint}");
    };
    let program = PathBuf::from(value);
    if !program.is_file() {
        panic!(
            "{MOTO_SERVER_ENV}={} is not a file: {hint}",
            program.display()
        );
    }
    program
}

/// Asks the OS for a free port by binding port 0 and releasing it again.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

async fn start_on_free_port(program: &Path) -> Result<MotoServer, String> {
    let port = free_port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let log = std::env::temp_dir().join(format!(
        "sqs-barrier-moto-{}-{port}.log",
        std::process::id()
    ));
    let log_file = File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let log_file_err = log_file
        .try_clone()
        .map_err(|e| format!("clone log handle: {e}"))?;

    // Output goes to a file, not a pipe: nobody reads a pipe while the tests
    // run, and a full pipe would block moto on its request log.
    let child = Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_file_err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", program.display()))?;
    let mut server = MotoServer {
        child,
        addr,
        log,
        proxy: None,
    };

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Some(status) = server.child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!(
                "moto_server exited with {status} before serving on {addr}; its log:\n{}",
                read_log(&server.log)
            ));
        }
        if TcpStream::connect(addr).await.is_ok() {
            let proxy = QuotaProxy::start(addr)
                .map_err(|e| format!("start the quota proxy in front of moto: {e}"))?;
            server.proxy = Some(proxy);
            return Ok(server);
        }
        if Instant::now() > deadline {
            // Dropping `server` kills the child.
            return Err(format!(
                "moto_server did not accept connections on {addr} within {STARTUP_TIMEOUT:?}; \
                 its log:\n{}",
                read_log(&server.log)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read log: {e})"))
}
