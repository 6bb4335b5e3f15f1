//! The SQS client: configuration, request accounting and error mapping.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_sqs::config::Region;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::error::{Error, Result};

/// How to reach SQS. Everything left `None` comes from the standard AWS
/// configuration: `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SQS`, `AWS_REGION`,
/// `AWS_PROFILE`, the shared config files and the default credential chain.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The SQS endpoint, e.g. `http://127.0.0.1:9324`.
    pub endpoint_url: Option<String>,
    /// The AWS region.
    pub region: Option<String>,
    /// The profile of the shared config files.
    pub profile: Option<String>,
}

impl ClientOptions {
    /// Options with an explicit endpoint.
    pub fn with_endpoint(endpoint_url: impl Into<String>) -> Self {
        Self {
            endpoint_url: Some(endpoint_url.into()),
            ..Self::default()
        }
    }
}

/// Counts of SQS requests by operation, retries included: what SQS bills;
/// and of the attempts among them that failed.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter(
    Arc<Mutex<BTreeMap<String, u64>>>,
    Arc<Mutex<BTreeMap<String, u64>>>,
);

impl RequestCounter {
    /// A snapshot of the counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("counter lock").clone()
    }

    /// The total so far.
    pub fn total(&self) -> u64 {
        self.0.lock().expect("counter lock").values().sum()
    }

    /// The attempts that failed so far, by operation: no response (a
    /// connection or timeout error) or an HTTP status other than 2xx. Each
    /// retry that failed counts.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.1.lock().expect("counter lock").clone()
    }

    fn add(map: &Mutex<BTreeMap<String, u64>>, op: &str) {
        *map.lock()
            .expect("counter lock")
            .entry(op.to_owned())
            .or_default() += 1;
    }
}

#[derive(Debug)]
struct CountRequests(RequestCounter);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_attempt(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg.load::<Metadata>().map_or("unknown", |m| m.name());
        RequestCounter::add(&self.0.0, op);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let ok = ctx.response().is_some_and(|r| r.status().is_success());
        if !ok {
            let op = cfg.load::<Metadata>().map_or("unknown", |m| m.name());
            RequestCounter::add(&self.0.1, op);
        }
        Ok(())
    }
}

/// An SQS client with request accounting and this crate's error mapping.
/// Cheap to clone.
#[derive(Clone)]
pub struct Sqs {
    client: aws_sdk_sqs::Client,
    counter: RequestCounter,
    endpoint: Arc<str>,
}

impl fmt::Debug for Sqs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sqs")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// Long polls last up to 20 s; an attempt may take that long plus the
/// network's share.
/// What the SDK's default credential chain tries, in order: what a
/// "no credentials" error says was tried (the chain's own answer, every
/// provider's failure, is logged at debug level).
const CHAIN_TRIED: &str = "tried environment variables, the shared config and credentials files (profile, SSO, web identity), the container credentials endpoint and the EC2 instance metadata service";

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Sqs {
    /// Connects with the standard AWS configuration, overridden by `opts`.
    ///
    /// Fails early and clearly when there is no region or no credentials.
    pub async fn connect(opts: &ClientOptions) -> Result<Self> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &opts.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(u) = &opts.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let shared = loader.load().await;
        let endpoint = shared
            .endpoint_url()
            .map(str::to_owned)
            .or_else(|| {
                shared
                    .region()
                    .map(|r| format!("https://sqs.{r}.amazonaws.com"))
            })
            .unwrap_or_else(|| "SQS".into());
        let mut builder = aws_sdk_sqs::config::Builder::from(&shared);
        if shared.region().is_none() {
            // A custom endpoint (a local server) needs a region only to sign.
            if shared.endpoint_url().is_some() {
                builder = builder.region(Region::new("us-east-1"));
            } else {
                return Err(Error::NoRegion);
            }
        }
        let Some(creds) = shared.credentials_provider() else {
            return Err(Error::NoCredentials {
                detail: "no credential provider configured".into(),
            });
        };
        if let Err(e) = creds.provide_credentials().await {
            // The chain's full answer (each provider's failure, HTTP
            // details of the instance metadata) is for those who ask.
            tracing::debug!(error = %DisplayErrorContext(&e), "no provider of the credential chain gave credentials");
            return Err(Error::NoCredentials {
                detail: CHAIN_TRIED.into(),
            });
        }
        Ok(Self::from_builder(builder, endpoint))
    }

    /// A client for a local endpoint (the embedded one, or a test server)
    /// with fixed placeholder credentials: nothing to configure.
    pub fn local(endpoint_url: &str) -> Self {
        let http = aws_smithy_http_client::Builder::new().build_http();
        let builder = aws_sdk_sqs::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint_url)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "sqs-barrier",
            ))
            .http_client(http);
        Self::from_builder(builder, endpoint_url.to_owned())
    }

    fn from_builder(builder: aws_sdk_sqs::config::Builder, endpoint: String) -> Self {
        let counter = RequestCounter::default();
        let conf = builder
            .interceptor(CountRequests(counter.clone()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .build();
        Self {
            client: aws_sdk_sqs::Client::from_conf(conf),
            counter,
            endpoint: endpoint.into(),
        }
    }

    /// The SDK client.
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    /// The requests made through this client (and its clones).
    pub fn requests(&self) -> &RequestCounter {
        &self.counter
    }

    /// A client on the same connections and configuration whose requests
    /// are also counted apart: the returned client's
    /// [`requests`](Self::requests) counts only the requests made through it
    /// (and its clones), and this client's counter goes on counting them too.
    pub fn with_own_counter(&self) -> Self {
        let counter = RequestCounter::default();
        let conf = self
            .client
            .config()
            .to_builder()
            .interceptor(CountRequests(counter.clone()))
            .build();
        Self {
            client: aws_sdk_sqs::Client::from_conf(conf),
            counter,
            endpoint: self.endpoint.clone(),
        }
    }

    /// Deletes up to ten messages of the queue `url` by their receipt
    /// handles in one `DeleteMessageBatch`; returns how many were deleted.
    /// Entries the queue refused (an outdated handle, a message already
    /// gone) are logged at debug, not errors: a message not deleted comes
    /// back and is recognised.
    pub async fn delete_batch(&self, url: &str, receipts: &[String]) -> Result<usize> {
        debug_assert!(receipts.len() <= 10, "at most ten entries a batch");
        if receipts.is_empty() {
            return Ok(0);
        }
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .build()
                    .expect("id and handle set")
            })
            .collect();
        let out = self
            .client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| self.error("DeleteMessageBatch", e))?;
        for f in &out.failed {
            tracing::debug!(queue = %url, code = %f.code, "a delete in a batch failed");
        }
        Ok(out.successful.len())
    }

    /// Sets the visibility timeout of the messages of the queue `url` with
    /// these receipt handles to `secs` (0: visible again at once), in
    /// batches of ten (`ChangeMessageVisibilityBatch`). Entries the queue
    /// refused (an outdated handle, a message gone) are logged at debug.
    pub async fn change_visibility(&self, url: &str, receipts: &[String], secs: i32) -> Result<()> {
        for chunk in receipts.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .visibility_timeout(secs)
                        .build()
                        .expect("id and handle set")
                })
                .collect();
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error("ChangeMessageVisibilityBatch", e))?;
            for f in &out.failed {
                tracing::debug!(queue = %url, code = %f.code, "a visibility change in a batch failed");
            }
        }
        Ok(())
    }

    /// The endpoint, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Maps an SDK error of `operation` to this crate's error.
    pub(crate) fn error<E, R>(&self, operation: &'static str, err: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let endpoint = self.endpoint.to_string();
        match &err {
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => Error::Unreachable {
                endpoint,
                detail: root_cause(&err),
            },
            SdkError::TimeoutError(_) => Error::Unreachable {
                endpoint,
                detail: "the request timed out".into(),
            },
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().unwrap_or("Unknown").to_owned();
                let message = e.message().unwrap_or("").to_owned();
                if is_auth_code(&code) {
                    Error::AccessDenied {
                        endpoint,
                        operation,
                        code,
                        message,
                    }
                } else {
                    Error::Sqs {
                        endpoint,
                        operation,
                        detail: format!("{code}: {message}"),
                    }
                }
            }
            _ => {
                let detail = DisplayErrorContext(&err).to_string();
                if detail.contains("credentials") {
                    tracing::debug!(error = %detail, "no credentials for {operation}");
                    Error::NoCredentials {
                        detail: CHAIN_TRIED.into(),
                    }
                } else {
                    Error::Sqs {
                        endpoint,
                        operation,
                        detail,
                    }
                }
            }
        }
    }
}

/// The innermost message of an error's source chain: "Connection refused
/// (os error 111)" rather than the SDK's layers of wrappers.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut e = err;
    while let Some(next) = e.source() {
        e = next;
    }
    e.to_string()
}

fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "UnrecognizedClientException"
            | "InvalidSecurity"
            | "ExpiredToken"
            | "MissingAuthenticationToken"
    )
}

/// Whether an SDK error says the queue does not exist.
pub(crate) fn is_missing_queue<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "AWS.SimpleQueueService.NonExistentQueue" || c == "QueueDoesNotExist")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn own_counters_count_apart() {
        let server = sqs_barrier_testkit::embedded().await;
        let sqs = Sqs::local(&server.endpoint_url());
        let (a, b) = (sqs.with_own_counter(), sqs.with_own_counter());
        a.client().list_queues().send().await.expect("ListQueues");
        a.client().list_queues().send().await.expect("ListQueues");
        b.client().list_queues().send().await.expect("ListQueues");
        assert_eq!(a.requests().snapshot()["ListQueues"], 2);
        assert_eq!(b.requests().total(), 1);
        assert_eq!(sqs.requests().total(), 3);
        assert!(sqs.requests().errors().is_empty());
        server.shutdown().await;
    }

    #[tokio::test]
    async fn failed_attempts_are_counted_by_operation() {
        let server = sqs_barrier_testkit::embedded().await;
        let sqs = Sqs::local(&server.endpoint_url());
        let missing = sqs.client().get_queue_url().queue_name("nope").send().await;
        assert!(missing.is_err());
        sqs.client().list_queues().send().await.expect("ListQueues");
        assert_eq!(sqs.requests().errors()["GetQueueUrl"], 1);
        assert!(!sqs.requests().errors().contains_key("ListQueues"));
        assert_eq!(sqs.requests().total(), 2);
        server.shutdown().await;
    }
}
