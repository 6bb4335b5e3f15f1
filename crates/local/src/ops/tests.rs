//! Decoder tests: known shapes decode; arbitrary bytes never panic.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

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
    "AmazonSQS.Bogus",
    "",
];

const SEEDS: &[&str] = &[
    r#"{"QueueName":"q","Attributes":{"VisibilityTimeout":"5"},"tags":{"a":"b"}}"#,
    r#"{"QueueUrl":"http://h/000000000000/q","MessageBody":"hi","DelaySeconds":3,"MessageAttributes":{"a":{"DataType":"String","StringValue":"v"},"b":{"DataType":"Binary","BinaryValue":"AAEC"}}}"#,
    r#"{"QueueUrl":"http://h/000000000000/q","Entries":[{"Id":"1","MessageBody":"x"},{"Id":"2","ReceiptHandle":"r","VisibilityTimeout":0}]}"#,
    r#"{"QueueUrl":"u","MaxNumberOfMessages":10,"WaitTimeSeconds":20,"AttributeNames":["All"],"MessageAttributeNames":["All"]}"#,
    r#"{"QueueNamePrefix":"p","MaxResults":5,"NextToken":"eA"}"#,
    r#"{"SourceArn":"arn:aws:sqs:us-east-1:000000000000:dlq","DestinationArn":"arn:aws:sqs:us-east-1:000000000000:q","MaxNumberOfMessagesPerSecond":50,"MaxResults":10}"#,
    r#"{"TaskHandle":"MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAxIGFybjphd3M6c3FzOnVzLWVhc3QtMTowMDAwMDAwMDAwMDA6ZGxx"}"#,
];

#[test]
fn decodes_known_shapes() {
    let Request::SendMessage(send) =
        decode_request("AmazonSQS.SendMessage", SEEDS[1].as_bytes()).unwrap()
    else {
        panic!("wrong variant");
    };
    assert_eq!(send.queue_url.as_deref(), Some("http://h/000000000000/q"));
    assert!(matches!(
        decode_request("AmazonSQS.ListQueues", b"").unwrap(),
        Request::ListQueues(_)
    ));
    let Request::StartMessageMoveTask(start) =
        decode_request("AmazonSQS.StartMessageMoveTask", SEEDS[5].as_bytes()).unwrap()
    else {
        panic!("wrong variant");
    };
    let start = format!("{start:?}");
    assert!(
        start.contains("max_number_of_messages_per_second: Some(50)"),
        "{start}"
    );
    assert!(matches!(
        decode_request("ListMessageMoveTasks", SEEDS[5].as_bytes()).unwrap(),
        Request::ListMessageMoveTasks(_)
    ));
    assert!(matches!(
        decode_request("AmazonSQS.CancelMessageMoveTask", SEEDS[6].as_bytes()).unwrap(),
        Request::CancelMessageMoveTask(_)
    ));
    assert_eq!(
        decode_request(
            "AmazonSQS.StartMessageMoveTask",
            br#"{"MaxNumberOfMessagesPerSecond":"x"}"#
        )
        .unwrap_err()
        .code,
        ErrorCode::SerializationException
    );
    assert_eq!(
        decode_request("AmazonSQS.Nope", b"{}").unwrap_err().code,
        ErrorCode::UnsupportedOperation
    );
    for bad in [
        &b"{"[..],
        b"[]",
        b"{\"MaxResults\":\"x\"}",
        b"\xff\xfe",
        b"null",
    ] {
        assert_eq!(
            decode_request("AmazonSQS.ListQueues", bad)
                .unwrap_err()
                .code,
            ErrorCode::SerializationException
        );
    }
}

#[test]
fn batch_id_rules() {
    let ids = |v: &[&'static str]| check_batch_ids(v.iter().copied(), "Entry").map_err(|e| e.code);
    assert_eq!(ids(&[]), Err(ErrorCode::EmptyBatchRequest));
    assert_eq!(
        ids(&["a"; 11]),
        Err(ErrorCode::TooManyEntriesInBatchRequest)
    );
    assert_eq!(ids(&["a", "a"]), Err(ErrorCode::BatchEntryIdsNotDistinct));
    assert_eq!(ids(&["a b"]), Err(ErrorCode::InvalidBatchEntryId));
    assert_eq!(ids(&["a", "b-_9"]), Ok(()));
}

/// Throws seeded random and mutated inputs at the decoder: it must answer every one
/// with a request or an error, never a panic.
#[test]
fn decoder_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x5eed_cafe);
    let mut inputs = 0;
    for round in 0..6000 {
        let target = TARGETS[rng.random_range(0..TARGETS.len())];
        let body: Vec<u8> = if round % 3 == 0 {
            // Pure noise, biased towards JSON punctuation.
            let len = rng.random_range(0..64);
            (0..len)
                .map(|_| {
                    if rng.random_bool(0.5) {
                        b"{}[]\":,0123456789-eE.tfnul\\ "[rng.random_range(0..28)]
                    } else {
                        rng.random()
                    }
                })
                .collect()
        } else {
            // A valid body with a few bytes flipped, inserted or cut.
            let mut body = SEEDS[rng.random_range(0..SEEDS.len())].as_bytes().to_vec();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..body.len().max(1));
                match rng.random_range(0..3) {
                    0 if at < body.len() => body[at] = rng.random(),
                    1 => body.insert(at.min(body.len()), rng.random()),
                    _ => body.truncate(at),
                }
            }
            body
        };
        let _ = decode_request(target, &body);
        inputs += 1;
    }
    assert_eq!(inputs, 6000);
}
