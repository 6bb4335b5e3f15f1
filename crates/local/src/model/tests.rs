//! Model tests on a virtual clock: no sleeping, time is just a number we step.

use super::*;

const T0: Millis = 1_700_000_000_000;
const S: Millis = 1000;

fn standard() -> Queue {
    Queue::new("q", QueueAttributes::default(), 7, T0)
}

fn fifo(content_dedup: bool) -> Queue {
    let cbd = if content_dedup { "true" } else { "false" };
    let attrs = QueueAttributes::for_new_queue(
        "q.fifo",
        [("FifoQueue", "true"), ("ContentBasedDeduplication", cbd)],
    )
    .unwrap();
    Queue::new("q.fifo", attrs, 9, T0)
}

fn bodies(outcome: &ReceiveOutcome) -> Vec<&str> {
    outcome.deliveries.iter().map(|d| &*d.body).collect()
}

#[test]
fn visibility_timeout_lapses_and_message_is_redelivered_with_new_handle() {
    let mut q = standard();
    q.send(NewMessage::new("a"), T0).unwrap();
    let first = q.receive(10, Some(10), T0).unwrap();
    assert_eq!(bodies(&first), ["a"]);
    assert_eq!(first.deliveries[0].receive_count, 1);
    assert!(
        q.receive(10, None, T0 + 9 * S)
            .unwrap()
            .deliveries
            .is_empty()
    );
    assert_eq!(q.next_event(), Some(T0 + 10 * S));
    let second = q.receive(10, None, T0 + 10 * S).unwrap();
    assert_eq!(bodies(&second), ["a"]);
    assert_eq!(second.deliveries[0].receive_count, 2);
    assert_eq!(second.deliveries[0].first_receive_at, T0);
    assert_ne!(
        first.deliveries[0].receipt_handle,
        second.deliveries[0].receipt_handle
    );
    // Deleting with the newest handle removes it; repeating the delete is fine.
    q.delete(&second.deliveries[0].receipt_handle, T0 + 11 * S)
        .unwrap();
    q.delete(&second.deliveries[0].receipt_handle, T0 + 11 * S)
        .unwrap();
    assert_eq!(q.counts(T0 + 100 * S), Counts::default());
}

#[test]
fn garbled_and_foreign_handles_are_rejected() {
    let mut q = standard();
    q.send(NewMessage::new("a"), T0).unwrap();
    let handle = q.receive(1, None, T0).unwrap().deliveries[0]
        .receipt_handle
        .clone();
    for bad in ["", "nope", "rh", &handle[1..]] {
        assert_eq!(
            q.delete(bad, T0).unwrap_err().code,
            ErrorCode::ReceiptHandleIsInvalid
        );
    }
    let mut other = Queue::new("q", QueueAttributes::default(), 8, T0);
    assert_eq!(
        other.delete(&handle, T0).unwrap_err().code,
        ErrorCode::ReceiptHandleIsInvalid
    );
}

#[test]
fn change_visibility_requires_in_flight() {
    let mut q = standard();
    q.send(NewMessage::new("a"), T0).unwrap();
    let h = q.receive(1, Some(30), T0).unwrap().deliveries[0]
        .receipt_handle
        .clone();
    q.change_visibility(&h, 100, T0 + 20 * S).unwrap();
    assert!(
        q.receive(1, None, T0 + 119 * S)
            .unwrap()
            .deliveries
            .is_empty()
    );
    q.change_visibility(&h, 0, T0 + 119 * S).unwrap();
    assert_eq!(
        q.change_visibility(&h, 5, T0 + 119 * S).unwrap_err().code,
        ErrorCode::MessageNotInflight
    );
    assert_eq!(q.counts(T0 + 119 * S).visible, 1);
}

#[test]
fn delays_queue_and_per_message() {
    let mut q = standard();
    q.set_attributes([("DelaySeconds", "5")], T0).unwrap();
    q.send(NewMessage::new("queue-delay"), T0).unwrap();
    let mut m = NewMessage::new("own-delay");
    m.delay_seconds = Some(2);
    q.send(m, T0).unwrap();
    assert_eq!(q.counts(T0).delayed, 2);
    assert_eq!(q.next_event(), Some(T0 + 2 * S));
    assert_eq!(
        bodies(&q.receive(10, None, T0 + 2 * S).unwrap()),
        ["own-delay"]
    );
    assert_eq!(
        bodies(&q.receive(10, None, T0 + 5 * S).unwrap()),
        ["queue-delay"]
    );
}

#[test]
fn retention_drops_old_messages_even_in_flight() {
    let mut q = standard();
    q.set_attributes([("MessageRetentionPeriod", "60")], T0)
        .unwrap();
    q.send(NewMessage::new("old"), T0).unwrap();
    q.send(NewMessage::new("young"), T0 + 30 * S).unwrap();
    q.receive(1, Some(600), T0 + 31 * S).unwrap();
    assert_eq!(q.counts(T0 + 59 * S).in_flight, 1);
    let c = q.counts(T0 + 60 * S);
    assert_eq!((c.visible, c.in_flight), (1, 0));
    assert_eq!(q.counts(T0 + 90 * S), Counts::default());
}

#[test]
fn clock_going_backwards_is_clamped() {
    let mut q = standard();
    q.send(NewMessage::new("a"), T0 + 10 * S).unwrap();
    let d = q.receive(1, Some(5), T0).unwrap();
    assert_eq!(d.deliveries[0].first_receive_at, T0 + 10 * S);
    assert_eq!(q.next_event(), Some(T0 + 15 * S));
}

#[test]
fn fifo_dedup_window_survives_delete() {
    let mut q = fifo(false);
    let a = q
        .send(NewMessage::new("x").in_group("g", Some("d1")), T0)
        .unwrap();
    assert!(!a.duplicate);
    let h = q.receive(1, None, T0).unwrap().deliveries[0]
        .receipt_handle
        .clone();
    q.delete(&h, T0 + S).unwrap();
    let dup = q
        .send(NewMessage::new("y").in_group("g", Some("d1")), T0 + 299 * S)
        .unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.message_id, a.message_id);
    assert_eq!(dup.sequence_number, a.sequence_number);
    assert_eq!(q.counts(T0 + 299 * S).visible, 0);
    let fresh = q
        .send(NewMessage::new("z").in_group("g", Some("d1")), T0 + 300 * S)
        .unwrap();
    assert!(!fresh.duplicate);
    assert!(fresh.sequence_number > a.sequence_number);
}

#[test]
fn fifo_content_based_dedup_uses_body() {
    let mut q = fifo(true);
    assert!(
        !q.send(NewMessage::new("same").in_group("g", None), T0)
            .unwrap()
            .duplicate
    );
    assert!(
        q.send(NewMessage::new("same").in_group("h", None), T0)
            .unwrap()
            .duplicate
    );
    assert!(
        !q.send(NewMessage::new("other").in_group("g", None), T0)
            .unwrap()
            .duplicate
    );
}

#[test]
fn fifo_requires_group_and_dedup() {
    let mut q = fifo(false);
    assert_eq!(
        q.send(NewMessage::new("x"), T0).unwrap_err().code,
        ErrorCode::MissingParameter
    );
    assert_eq!(
        q.send(NewMessage::new("x").in_group("g", None), T0)
            .unwrap_err()
            .code,
        ErrorCode::InvalidParameterValue
    );
    let mut delayed = NewMessage::new("x").in_group("g", Some("d"));
    delayed.delay_seconds = Some(3);
    assert_eq!(
        q.send(delayed, T0).unwrap_err().code,
        ErrorCode::InvalidParameterValue
    );
}

#[test]
fn fifo_group_is_blocked_while_in_flight_and_ordered() {
    let mut q = fifo(true);
    for (body, group) in [
        ("a1", "a"),
        ("a2", "a"),
        ("b1", "b"),
        ("a3", "a"),
        ("b2", "b"),
    ] {
        q.send(NewMessage::new(body).in_group(group, None), T0)
            .unwrap();
    }
    // One call may take several messages of a group, in order.
    let first = q.receive(2, Some(30), T0).unwrap();
    assert_eq!(bodies(&first), ["a1", "a2"]);
    // Group a is blocked now; b is free.
    let second = q.receive(10, Some(30), T0).unwrap();
    assert_eq!(bodies(&second), ["b1", "b2"]);
    assert!(q.receive(10, None, T0).unwrap().deliveries.is_empty());
    // Deleting a1 alone does not unblock a (a2 still in flight).
    q.delete(&first.deliveries[0].receipt_handle, T0).unwrap();
    assert!(q.receive(10, None, T0).unwrap().deliveries.is_empty());
    q.delete(&first.deliveries[1].receipt_handle, T0).unwrap();
    let a3 = q.receive(10, None, T0).unwrap();
    assert_eq!(bodies(&a3), ["a3"]);
    q.delete(&a3.deliveries[0].receipt_handle, T0).unwrap();
    // b's messages lapse and come back in order.
    let again = q.receive(10, None, T0 + 30 * S).unwrap();
    assert_eq!(bodies(&again), ["b1", "b2"]);
    let seqs: Vec<_> = again
        .deliveries
        .iter()
        .map(|d| d.sequence_number.clone().unwrap())
        .collect();
    assert!(seqs[0] < seqs[1] && seqs[0].len() >= 20);
}

#[test]
fn redrive_moves_message_after_max_receive_count() {
    let mut q = standard();
    q.set_attributes(
        [(
            "RedrivePolicy",
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":2}"#,
        )],
        T0,
    )
    .unwrap();
    let mut dlq = Queue::new("dlq", QueueAttributes::default(), 3, T0);
    let sent = q.send(NewMessage::new("poison"), T0).unwrap();
    let mut t = T0;
    for expected in 1..=2 {
        let out = q.receive(1, Some(1), t).unwrap();
        assert_eq!(out.deliveries[0].receive_count, expected);
        assert!(out.dead_letters.is_empty());
        t += S;
    }
    let out = q.receive(1, Some(1), t).unwrap();
    assert!(out.deliveries.is_empty());
    assert_eq!(out.dead_letters.len(), 1);
    for m in out.dead_letters {
        dlq.accept_dead_letter(m, "arn:aws:sqs:us-east-1:000000000000:q", t);
    }
    assert_eq!(q.counts(t), Counts::default());
    let moved = dlq.receive(1, None, t).unwrap();
    assert_eq!(moved.deliveries[0].message_id, sent.message_id);
    assert_eq!(moved.deliveries[0].receive_count, 3);
    assert_eq!(moved.deliveries[0].sent_at, T0);
}

#[test]
fn purge_once_per_minute() {
    let mut q = standard();
    q.send(NewMessage::new("a"), T0).unwrap();
    q.purge(T0).unwrap();
    assert_eq!(q.counts(T0), Counts::default());
    assert_eq!(
        q.purge(T0 + 59 * S).unwrap_err().code,
        ErrorCode::PurgeQueueInProgress
    );
    q.purge(T0 + 60 * S).unwrap();
}

#[test]
fn message_validation() {
    let mut q = standard();
    assert_eq!(
        q.send(NewMessage::new("bad\u{1}"), T0).unwrap_err().code,
        ErrorCode::InvalidMessageContents
    );
    assert!(
        q.send(NewMessage::new("ok\t\n\r\u{10000}\u{FFFD}"), T0)
            .is_ok()
    );
    q.set_attributes([("MaximumMessageSize", "1024")], T0)
        .unwrap();
    assert_eq!(
        q.send(NewMessage::new("x".repeat(1025)), T0)
            .unwrap_err()
            .code,
        ErrorCode::InvalidParameterValue
    );
    let mut m = NewMessage::new("x");
    m.attributes = (0..11)
        .map(|i| MessageAttribute {
            name: format!("a{i}").into(),
            data_type: "String".into(),
            value: AttributeValue::String("v".into()),
        })
        .collect();
    assert_eq!(
        q.send(m, T0).unwrap_err().code,
        ErrorCode::InvalidParameterValue
    );
    assert!(is_number("-1.5e10") && is_number("42") && !is_number("1e") && !is_number("x"));
}

#[test]
fn attribute_md5_matches_aws_encoding() {
    // Vectors computed with AWS's published algorithm (independently, in Python).
    let attrs = vec![
        MessageAttribute {
            name: "b".into(),
            data_type: "Binary".into(),
            value: AttributeValue::Binary(vec![0, 1, 2].into()),
        },
        MessageAttribute {
            name: "a".into(),
            data_type: "String".into(),
            value: AttributeValue::String("hello".into()),
        },
    ];
    assert_eq!(hex(&md5_of_attributes(&attrs).unwrap()), ATTR_VECTOR);
    assert_eq!(md5_of_attributes(&[]), None);
}

const ATTR_VECTOR: &str = "27d5d5aa93532e305ccf996aae3c61ec";

#[test]
fn message_ids_look_like_uuids_and_differ() {
    let a = MessageId::derive(1, 1).to_string();
    let b = MessageId::derive(1, 2).to_string();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "4");
}

#[test]
fn deep_queue_costs_stay_flat() {
    // 100k messages: a linear scan per request would make this test crawl.
    let mut q = standard();
    for i in 0..100_000 {
        q.send(NewMessage::new(format!("m{i}")), T0).unwrap();
    }
    let mut received = 0;
    while received < 100_000 {
        let out = q.receive(10, Some(30), T0 + S).unwrap();
        for d in &out.deliveries {
            q.delete(&d.receipt_handle, T0 + S).unwrap();
        }
        received += out.deliveries.len();
    }
    assert_eq!(q.counts(T0 + S), Counts::default());
}

#[test]
fn standard_queue_at_the_in_flight_quota_answers_over_limit() {
    let mut q = standard();
    assert_eq!(q.in_flight_limit(), MAX_IN_FLIGHT);
    q.set_in_flight_limit(3);
    for body in ["a", "b", "c", "d", "e"] {
        q.send(NewMessage::new(body), T0).unwrap();
    }
    // Only as many as there is room for, although 10 were asked for.
    let first = q.receive(10, Some(30), T0).unwrap();
    assert_eq!(bodies(&first), ["a", "b", "c"]);
    assert!(q.is_at_in_flight_limit());
    assert_eq!(
        q.receive(10, Some(30), T0).unwrap_err().code,
        ErrorCode::OverLimit
    );
    // A receive with visibility 0 puts nothing in flight, so it is not limited.
    assert_eq!(bodies(&q.receive(10, Some(0), T0).unwrap()), ["d", "e"]);
    // A delete makes room for one.
    q.delete(&first.deliveries[0].receipt_handle, T0 + S)
        .unwrap();
    assert!(!q.is_at_in_flight_limit());
    assert_eq!(bodies(&q.receive(10, Some(30), T0 + S).unwrap()), ["d"]);
    assert_eq!(
        q.receive(1, Some(30), T0 + S).unwrap_err().code,
        ErrorCode::OverLimit
    );
    // Lapsed visibility timeouts make room too: b and c lapse (d is still in
    // flight), so two of the three visible messages fit.
    let lapsed = q.receive(10, None, T0 + 30 * S).unwrap();
    assert_eq!(bodies(&lapsed), ["b", "c"]);
    assert_eq!(
        q.receive(10, None, T0 + 30 * S).unwrap_err().code,
        ErrorCode::OverLimit
    );
    assert_eq!(q.counts(T0 + 30 * S).visible, 1);
}

#[test]
fn fifo_queue_at_the_in_flight_quota_delivers_nothing_without_error() {
    let mut q = fifo(false);
    q.set_in_flight_limit(2);
    for (i, group) in ["g1", "g2", "g3"].iter().enumerate() {
        q.send(
            NewMessage::new(format!("m{i}")).in_group(group, Some(&format!("d{i}"))),
            T0,
        )
        .unwrap();
    }
    let first = q.receive(10, Some(30), T0).unwrap();
    assert_eq!(bodies(&first), ["m0", "m1"]);
    let none = q.receive(10, Some(30), T0).unwrap();
    assert!(none.deliveries.is_empty());
    q.delete(&first.deliveries[1].receipt_handle, T0).unwrap();
    assert_eq!(bodies(&q.receive(10, Some(30), T0).unwrap()), ["m2"]);
}

#[test]
fn tags_are_checked_and_limited_to_50() {
    let mut q = standard();
    let tag = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    q.tag([tag("team", "infra"), tag("empty", "")]).unwrap();
    q.tag([tag("ключ", "значение ü @:/=+-_.")]).unwrap();
    for (key, value) in [
        ("", "v"),
        (&*"k".repeat(MAX_TAG_KEY + 1), "v"),
        ("k", &*"v".repeat(MAX_TAG_VALUE + 1)),
        ("a,b", "v"),
        ("k", "{\"json\":1}"),
        ("aws:owner", "v"),
        ("AWS:owner", "v"),
        ("k", "aws:v"),
    ] {
        assert_eq!(
            q.tag([tag("fine", "x"), tag(key, value)]).unwrap_err().code,
            ErrorCode::InvalidParameterValue,
            "{key:?}={value:?}"
        );
    }
    // All or nothing: the valid tag of a refused call was not added.
    assert!(!q.tags().contains_key("fine"));
    // Lengths count characters, not bytes.
    q.tag([tag(&"é".repeat(MAX_TAG_KEY), &"é".repeat(MAX_TAG_VALUE))])
        .unwrap();
    let present = q.tags().len();
    let more = |n: usize, from: usize| (from..from + n).map(|i| tag(&format!("t{i}"), "v"));
    q.tag(more(MAX_TAGS - present, 0)).unwrap();
    assert_eq!(q.tags().len(), MAX_TAGS);
    // Overwriting an existing key is fine at the limit; a new key is not.
    q.tag([tag("team", "platform")]).unwrap();
    assert_eq!(
        q.tag(more(1, 1000)).unwrap_err().code,
        ErrorCode::InvalidParameterValue
    );
}
