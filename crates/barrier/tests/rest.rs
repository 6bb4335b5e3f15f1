//! Resting (docs/PROTOCOL.md, section 2, "Resting"): a coordinator with
//! nothing to decide gives the lease back and takes it again for its next
//! decision. Through the real AWS SDK, on the embedded endpoint and on
//! moto, and on the embedded endpoint's fault injection for what a resting
//! coordinator must never do: hide a check-in.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::*;
use sqs_barrier::core::coordinator::Event;
use sqs_barrier::{Barrier, CoordinatorGauges, Sqs};
use sqs_barrier_testkit::Target;

sqs_barrier_testkit::both_endpoints!(
    a_coordinator_rests_while_nothing_is_to_be_decided,
    a_rested_coordinator_stands_down_when_another_took_the_lease,
);

/// With nothing to decide the coordinator gives the lease back (rests):
/// while a member waits for the other, it sends no lease extension (its
/// heartbeats go on); the next check-in takes the lease again and
/// releases the phase.
async fn a_coordinator_rests_while_nothing_is_to_be_decided(target: Target) {
    let f = fixture(target, 2, None).await;
    let mut o = fast_coordinator(false);
    o.rest_after = Some(Duration::from_secs(1));
    let (c, g) = coordinator_with_gauges(&f, o);
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    wait_until("it rests", || g.rests.load(SeqCst) >= 1).await;
    let a0 = b0.arrive(LONG).await.unwrap();
    wait_until("it took the lease again for the arrival, and rests", || {
        g.resumes.load(SeqCst) >= 1 && g.rests.load(SeqCst) >= 2
    })
    .await;
    let extensions = |sqs: &Sqs| {
        sqs.requests()
            .snapshot()
            .get("ChangeMessageVisibility")
            .copied()
            .unwrap_or(0)
    };
    let (before, writes) = (extensions(&f.sqs), g.state_writes.load(SeqCst));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(extensions(&f.sqs), before, "the lease kept while resting");
    assert!(
        g.state_writes.load(SeqCst) > writes,
        "no heartbeat while resting"
    );
    assert!(!a0.is_finished(), "released with one of two");
    b1.wait(LONG).await.expect("released");
    a0.await.expect("released");
    assert!(g.resumes.load(SeqCst) >= 2);
    assert!(g.active.load(SeqCst));
    // Each wake is reported before the arrival it was for.
    let mut c = c;
    let mut seen = Vec::new();
    while let Ok(e) = c.events.try_recv() {
        seen.push(e);
    }
    let arrived: Vec<usize> = (0..seen.len())
        .filter(|&i| matches!(seen[i], Event::Arrived { .. }))
        .collect();
    assert_eq!(arrived.len(), 2, "{seen:?}");
    for i in arrived {
        assert!(
            i > 0 && seen[i - 1] == Event::Waking,
            "an arrival after a rest without a wake before it: {seen:?}"
        );
    }
    c.stop().await.unwrap();
}

/// A coordinator that rests while another is started with `--force` (which
/// takes the lease at once) never decides again on what it knew: it finds
/// the token taken (or the other's state) and stands down, and nobody
/// passes before all three arrived.
async fn a_rested_coordinator_stands_down_when_another_took_the_lease(target: Target) {
    let f = fixture(target, 3, None).await;
    let mut o = fast_coordinator(false);
    o.rest_after = Some(Duration::from_secs(1));
    let (first, g1) = coordinator_with_gauges(&f, o.clone());
    wait_until("the first rests", || g1.rests.load(SeqCst) >= 1).await;
    let mut forced = o;
    forced.force = true;
    forced.rest_after = None;
    let (second, g2) = coordinator_with_gauges(&f, forced);
    wait_until("the second is active", || g2.active.load(SeqCst)).await;
    let b: Vec<Barrier> = connect_all(["0", "1", "2"].map(|id| member(&f, id))).await;
    only_all_three_release(&b).await;
    wait_until("the first stood down", || {
        !g1.active.load(SeqCst) && g2.active.load(SeqCst)
    })
    .await;
    assert_eq!(
        g1.resumes.load(SeqCst),
        0,
        "went on after the other took over"
    );
    for c in [first, second] {
        c.stop().await.unwrap();
    }
}

/// A resting coordinator watches the check-in queue without hiding what
/// it sees: the check-in that wakes it stays visible to whoever holds the
/// lease, also when it finds the lease taken and stands down, and also
/// when it could not hand anything back (the fault injection fails every
/// visibility change of the check-in queue). Here the test holds the lease
/// token, as another coordinator would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resting_coordinator_hides_no_check_in() {
    let (f, _) = fixture_with_chaos("visibility[queue=-checkin].error=1", 2).await;
    let gauges = Arc::new(CoordinatorGauges::default());
    let mut o = fast_coordinator(false);
    o.rest_after = Some(Duration::from_secs(1));
    // It rests while still busy (polls of 3 s), so that the poll under
    // way when it rests ends within 3 s (a receive under way then hands
    // back at once what it returns, which the fault injection would fail);
    // a long visibility timeout, so that a check-in it hid would stay
    // hidden for the rest of the test.
    o.busy_wait = Duration::from_secs(3);
    o.visibility = Duration::from_secs(30);
    o.gauges = Some(gauges.clone());
    let c = coordinator(&f, o);
    let b0: Barrier = member(&f, "0").await;
    wait_until("it rests", || gauges.rests.load(SeqCst) >= 1).await;
    // Its receive under way when it rested has ended: it only looks now.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let client = f.sqs.client();
    let url = |q: &str| {
        let q = q.to_owned();
        async move {
            client
                .get_queue_url()
                .queue_name(q)
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap()
        }
    };
    let token = client
        .receive_message()
        .queue_url(url(&format!("{}-lease.fifo", f.name)).await)
        .visibility_timeout(120)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(token.len(), 1, "the lease token, given back");
    let arrival = b0.arrive(LONG).await.unwrap();
    wait_until("it found the lease taken and stood down", || {
        !gauges.active.load(SeqCst)
    })
    .await;
    assert_eq!(gauges.resumes.load(SeqCst), 0, "went on without the lease");
    let seen = client
        .receive_message()
        .queue_url(url(&format!("{}-checkin", f.name)).await)
        .visibility_timeout(0)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    // (Its probe, standing by now, is there too.)
    assert!(
        seen.iter()
            .any(|m| m.body().is_some_and(|b| b.contains(r#""type":"checkin""#))),
        "the check-in that woke the resting coordinator is hidden"
    );
    drop(arrival);
    c.stop().await.unwrap();
}
