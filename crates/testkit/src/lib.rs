//! Test support for sqs-barrier: SQS endpoints to test against and SDK
//! clients for them.
//!
//! Two endpoints exist: the project's embedded one ([`embedded`]) and moto
//! ([`moto`]), an independent implementation used as the reference. Both apply
//! SQS's tagging quota (5 tagging actions per second per account): the
//! embedded endpoint by default, moto through a [`QuotaProxy`] in front of it.
//! [`Target`] and [`start`] let one test body run against either:
//!
//! ```no_run
//! # async fn demo() {
//! use sqs_barrier_testkit::{Target, start};
//! for target in Target::ALL {
//!     let endpoint = start(target).await;
//!     let client = endpoint.client();
//!     client.create_queue().queue_name("q").send().await.unwrap();
//! }
//! # }
//! ```
//!
//! The `harness` feature adds the module `harness`, the soak harness: barrier
//! members and coordinators under faults, and a checker of their history.

#[cfg(feature = "harness")]
pub mod harness;
mod moto;
pub mod quota;
pub mod runtime_api;

use std::fmt;
use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};

pub use moto::{MOTO_SERVER_ENV, MotoServer, moto};
pub use quota::QuotaProxy;

/// The region every test client uses.
pub const REGION: &str = "us-east-1";

/// An upper bound for one SDK call including a long poll (at most 20 s), so a
/// hung endpoint fails a test instead of hanging the whole run.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the embedded endpoint on a free loopback port, with its default
/// options (SQS's quotas, the tagging quota included).
///
/// # Panics
/// If the server cannot bind.
pub async fn embedded() -> sqs_barrier_local::Server {
    sqs_barrier_local::Server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("start the embedded SQS endpoint on 127.0.0.1:0")
}

/// An SQS client for a local plain-HTTP endpoint.
///
/// It uses static test credentials and region us-east-1 and does not consult
/// aws-config's default chain, so nothing on the machine (profiles, IMDS,
/// environment) changes what a test does. Retries are off: a test must see
/// exactly what the endpoint answered, not a retried success (a retried
/// SendMessage could also add a second copy of a message).
pub fn sdk_client(endpoint_url: &str) -> aws_sdk_sqs::Client {
    let http_client = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client)
        .credentials_provider(Credentials::new("test", "test", None, None, "testkit"))
        .region(Region::new(REGION))
        .endpoint_url(endpoint_url)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Generates `mod embedded` and `mod moto`, each with a tokio test per
/// name that runs `super::name(Target)`: one test body, both endpoints.
#[macro_export]
macro_rules! both_endpoints {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::Target::Embedded).await } )*
        }
        mod moto {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::Target::Moto).await } )*
        }
    };
}

/// A command for the `sqs-barrier` binary at `bin` (a test's
/// `env!("CARGO_BIN_EXE_sqs-barrier")`), pointed at `url` with placeholder
/// credentials and nothing of the caller's AWS configuration.
pub fn cli_command(bin: &str, url: &str) -> std::process::Command {
    let mut c = std::process::Command::new(bin);
    c.arg("--endpoint-url")
        .arg(url)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(std::process::Stdio::null());
    c
}

/// Which SQS implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The embedded endpoint of `sqs-barrier-local`.
    Embedded,
    /// A moto server (reference implementation) behind the tagging quota's
    /// proxy, see [`moto`].
    Moto,
}

impl Target {
    /// Every target, for tests that loop over them.
    pub const ALL: [Target; 2] = [Target::Embedded, Target::Moto];
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Embedded => "embedded",
            Target::Moto => "moto",
        })
    }
}

/// A running endpoint of either [`Target`]; it stops when dropped.
pub enum TestEndpoint {
    /// The embedded endpoint.
    Embedded(sqs_barrier_local::Server),
    /// A moto child process (boxed: it is much larger than the embedded handle).
    Moto(Box<MotoServer>),
}

impl TestEndpoint {
    /// Which implementation this is.
    pub fn target(&self) -> Target {
        match self {
            TestEndpoint::Embedded(_) => Target::Embedded,
            TestEndpoint::Moto(_) => Target::Moto,
        }
    }

    /// The endpoint URL, like `http://127.0.0.1:PORT`.
    pub fn endpoint_url(&self) -> String {
        match self {
            TestEndpoint::Embedded(server) => server.endpoint_url(),
            TestEndpoint::Moto(server) => server.endpoint_url(),
        }
    }

    /// A fresh SDK client for this endpoint (see [`sdk_client`]).
    pub fn client(&self) -> aws_sdk_sqs::Client {
        sdk_client(&self.endpoint_url())
    }
}

impl fmt::Debug for TestEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TestEndpoint({} at {})",
            self.target(),
            self.endpoint_url()
        )
    }
}

/// Starts a fresh endpoint of the given kind.
///
/// # Panics
/// As [`embedded`] and [`moto`] do.
pub async fn start(target: Target) -> TestEndpoint {
    match target {
        Target::Embedded => TestEndpoint::Embedded(embedded().await),
        Target::Moto => TestEndpoint::Moto(Box::new(moto().await)),
    }
}
