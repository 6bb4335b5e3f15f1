//! What every group of tests shares: a test's endpoint and client ([`Ctx`])
//! and small helpers for messages, MD5s and error codes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    Message, MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use md5::{Digest, Md5};
use sqs_barrier_testkit::Target::{self, Moto};
use sqs_barrier_testkit::TestEndpoint;

/// `mod embedded` with a tokio test per name, like the test kit's
/// `both_endpoints!` without the moto half: for behaviour moto does not
/// implement (the group's documentation says which).
macro_rules! embedded_only {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(sqs_barrier_testkit::Target::Embedded).await } )*
        }
    };
}

/// One test's endpoint and a client for it.
pub struct Ctx {
    pub target: Target,
    pub client: Client,
    // Keeps the server alive for the test's duration.
    _endpoint: TestEndpoint,
}

impl Ctx {
    pub async fn start(target: Target) -> Ctx {
        let endpoint = sqs_barrier_testkit::start(target).await;
        Ctx {
            target,
            client: endpoint.client(),
            _endpoint: endpoint,
        }
    }

    /// Creates a queue with the given attributes and returns its URL.
    pub async fn queue(&self, name: &str, attributes: &[(QueueAttributeName, &str)]) -> String {
        let mut request = self.client.create_queue().queue_name(name);
        for (key, value) in attributes {
            request = request.attributes(key.clone(), *value);
        }
        let out = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] CreateQueue {name}: {e:?}", self.target));
        out.queue_url()
            .expect("CreateQueue returns QueueUrl")
            .to_owned()
    }

    /// Creates a FIFO queue (`name` must end in `.fifo`).
    pub async fn fifo_queue(&self, name: &str, content_dedup: bool) -> String {
        let dedup = if content_dedup { "true" } else { "false" };
        self.queue(
            name,
            &[
                (QueueAttributeName::FifoQueue, "true"),
                (QueueAttributeName::ContentBasedDeduplication, dedup),
            ],
        )
        .await
    }

    pub async fn send(&self, url: &str, body: &str) -> String {
        let out = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] SendMessage: {e:?}", self.target));
        out.message_id().expect("MessageId").to_owned()
    }

    pub async fn send_fifo(&self, url: &str, body: &str, group: &str, dedup: Option<&str>) {
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .message_group_id(group)
            .set_message_deduplication_id(dedup.map(str::to_owned))
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] SendMessage (FIFO): {e:?}", self.target));
    }

    /// ReceiveMessage asking for every system and message attribute.
    pub async fn receive(
        &self,
        url: &str,
        max: i32,
        wait_seconds: i32,
        visibility: Option<i32>,
    ) -> Vec<Message> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_seconds)
            .set_visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] ReceiveMessage: {e:?}", self.target));
        out.messages.unwrap_or_default()
    }

    /// Receives until `count` messages arrived or `within` passed. AWS short
    /// polls sample a subset of servers, so one empty answer proves nothing.
    pub async fn receive_n(
        &self,
        url: &str,
        count: usize,
        visibility: Option<i32>,
        within: Duration,
    ) -> Vec<Message> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < count && Instant::now() < deadline {
            let max = (count - got.len()).min(10) as i32;
            got.extend(self.receive(url, max, 1, visibility).await);
        }
        got
    }

    pub async fn attributes(
        &self,
        url: &str,
        names: &[QueueAttributeName],
    ) -> HashMap<String, String> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] GetQueueAttributes: {e:?}", self.target));
        out.attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect()
    }

    pub async fn attribute(&self, url: &str, name: QueueAttributeName) -> Option<String> {
        let key = name.as_str().to_owned();
        self.attributes(url, &[name]).await.remove(&key)
    }

    /// Parses a queue timestamp attribute: whole seconds since the epoch.
    /// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html>
    pub fn epoch_seconds(&self, value: &str) -> i64 {
        if self.target == Moto {
            // moto differs: it reports fractional seconds ("1795472158.345435");
            // AWS doc: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html
            return value.parse::<f64>().expect("epoch seconds") as i64;
        }
        value
            .parse()
            .unwrap_or_else(|_| panic!("[{}] {value:?} is not whole epoch seconds", self.target))
    }

    pub async fn arn(&self, url: &str) -> String {
        self.attribute(url, QueueAttributeName::QueueArn)
            .await
            .expect("QueueArn")
    }

    /// Polls the three approximate counters until they match. They are
    /// eventually consistent on AWS, so a test waits instead of sampling once.
    pub async fn expect_counts(&self, url: &str, visible: u32, in_flight: u32, delayed: u32) {
        let want = [visible, in_flight, delayed];
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let attrs = self.attributes(url, &names).await;
            let got = names.clone().map(|n| {
                attrs
                    .get(n.as_str())
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(u32::MAX)
            });
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] counts (visible, in flight, delayed) = {got:?}, want {want:?}",
                self.target
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn sys_attr(message: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    message
        .attributes()
        .and_then(|a| a.get(&name))
        .map(String::as_str)
}

pub fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body().unwrap_or("")).collect()
}

pub fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn batch_entry(id: &str, body: &str) -> SendMessageBatchRequestEntry {
    SendMessageBatchRequestEntry::builder()
        .id(id)
        .message_body(body)
        .build()
        .unwrap()
}

/// The error code an SDK call failed with (the query-protocol code SQS sends
/// in `x-amzn-query-error`), or a panic if it succeeded.
pub fn error_code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
    what: &str,
) -> String {
    let err = result.expect_err(what);
    err.code()
        .unwrap_or_else(|| panic!("{what}: no error code in {err:?}"))
        .to_owned()
}

/// What an SDK call came to: `Ok(())` or the error code it failed with.
pub fn code_of<T, E: ProvideErrorMetadata>(result: Result<T, E>) -> Result<(), String> {
    result
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("<no code>").to_owned())
}
