//! Bytes into the endpoint's request decoder: the first byte picks the operation
//! (`X-Amz-Target`), the rest is the body. Decoding must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Every operation the endpoint decodes, plus an unknown one and a bare name.
const TARGETS: &[&str] = &[
    "AmazonSQS.CreateQueue",
    "AmazonSQS.GetQueueUrl",
    "AmazonSQS.ListQueues",
    "AmazonSQS.DeleteQueue",
    "AmazonSQS.PurgeQueue",
    "AmazonSQS.ListDeadLetterSourceQueues",
    "AmazonSQS.GetQueueAttributes",
    "AmazonSQS.SetQueueAttributes",
    "AmazonSQS.TagQueue",
    "AmazonSQS.UntagQueue",
    "AmazonSQS.ListQueueTags",
    "AmazonSQS.SendMessage",
    "AmazonSQS.SendMessageBatch",
    "AmazonSQS.ReceiveMessage",
    "AmazonSQS.DeleteMessage",
    "AmazonSQS.DeleteMessageBatch",
    "AmazonSQS.ChangeMessageVisibility",
    "AmazonSQS.ChangeMessageVisibilityBatch",
    "AmazonSQS.StartMessageMoveTask",
    "AmazonSQS.ListMessageMoveTasks",
    "AmazonSQS.CancelMessageMoveTask",
    "SendMessage",
    "AmazonSQS.AddPermission",
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let target = TARGETS[usize::from(first) % TARGETS.len()];
    let _ = sqs_barrier_local::decode_request(target, body);
});
