//! The barrier end to end, through the real AWS SDK, against the embedded
//! endpoint and against moto: every test body runs on both.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqs_barrier::core::coordinator::Event;
use sqs_barrier::core::participant::ParticipantOptions;
use sqs_barrier::core::wire::BreakCause;
use sqs_barrier::{Barrier, CoordinatorGauges, CoordinatorOptions, Error, Sqs, admin};
use sqs_barrier_testkit::{Target, start};
use tokio::sync::{mpsc, oneshot};

mod common;

use common::*;

sqs_barrier_testkit::both_endpoints!(
    phases_release_only_when_all_arrived,
    setup_is_idempotent_and_checks_rules,
    missing_barrier_is_a_clear_error,
    timeout_names_missing_members,
    abort_breaks_every_waiter,
    deadline_breaks_and_names_missing,
    silent_coordinator_is_an_error,
    malformed_messages_are_moved_aside,
    coordinator_restart_loses_no_checkin,
    rerun_after_release_gets_the_notice_again,
    dropped_arrival_cancels_the_wait,
    an_arrive_dropped_midway_leaves_the_handle_usable,
    fifo_checkin_queue_serves_many_phases,
    two_coordinators_never_release_early,
    a_standby_takes_over_from_a_dead_coordinator,
    a_coordinator_restarted_after_kill_takes_over_in_seconds,
    waits_take_no_tagging_action,
    a_barrier_set_up_again_is_told_apart,
    many_barriers_at_once_share_the_quota,
    a_lease_taken_late_in_a_long_poll_is_kept,
);

async fn phases_release_only_when_all_arrived(target: Target) {
    let f = fixture(target, 3, None).await;
    let c = coordinator(&f, fast_coordinator(false));
    // arrivals[k] = members arrived at phase k so far; every release must
    // see all three.
    let arrivals = Arc::new(Mutex::new(vec![0usize; 3]));
    let mut tasks = Vec::new();
    for id in 0..3 {
        let b = member(&f, &id.to_string()).await;
        let arrivals = arrivals.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..3u64 {
                tokio::time::sleep(Duration::from_millis(50 * id as u64 * (k + 1))).await;
                arrivals.lock().unwrap()[k as usize] += 1;
                let r = b.wait(LONG).await.expect("released");
                assert_eq!(r.generation, k);
                assert_eq!(
                    arrivals.lock().unwrap()[k as usize],
                    3,
                    "released at phase {k} before everyone arrived"
                );
            }
            b.next_phase()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 3);
    }
    c.stop().await.expect("clean stop");
}

async fn setup_is_idempotent_and_checks_rules(target: Target) {
    let f = fixture(target, 2, None).await;
    let again = admin::setup(&f.sqs, &f.name, &admin::SetupOptions::new(2))
        .await
        .unwrap();
    assert!(!again.created);
    let err = admin::setup(&f.sqs, &f.name, &admin::SetupOptions::new(3))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    let err = Barrier::connect(&f.sqs, &f.name, "7").await.unwrap_err();
    assert!(err.to_string().contains("not a member"), "{err}");
    let deleted = admin::teardown(&f.sqs, &f.name).await.unwrap();
    assert_eq!(deleted.len(), 6, "{deleted:?}");
}

/// Tagging actions SQS counts against the account's five a second.
fn tagging(sqs: &Sqs) -> u64 {
    let counts = sqs.requests().snapshot();
    ["ListQueueTags", "TagQueue", "UntagQueue"]
        .iter()
        .map(|op| counts.get(*op).copied().unwrap_or(0))
        .sum()
}

async fn waits_take_no_tagging_action(target: Target) {
    let f = fixture(target, 3, None).await;
    let coordinator_sqs = f.sqs.with_own_counter();
    let c = {
        let (stop, stop_rx) = oneshot::channel();
        let (tx, events) = mpsc::unbounded_channel();
        let (sqs, name) = (coordinator_sqs.clone(), f.name.clone());
        let task = tokio::spawn(async move {
            let stop = async {
                let _ = stop_rx.await;
            };
            sqs_barrier::run_coordinator(&sqs, &name, fast_coordinator(false), Some(tx), stop).await
        });
        Running {
            stop: Some(stop),
            task,
            events,
        }
    };
    // Once the coordinator has published, opening the barrier and waiting
    // phase after phase take no tagging action at all.
    let info = admin::open(&f.sqs, &f.name).await.unwrap();
    let started = Instant::now();
    while admin::read_state(&f.sqs, &info).await.unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no state published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut tasks = Vec::new();
    for id in 0..3 {
        let sqs = f.sqs.with_own_counter();
        let b = Barrier::connect(&sqs, &f.name, &id.to_string())
            .await
            .expect("connect");
        tasks.push(tokio::spawn(async move {
            for k in 0..3u64 {
                assert_eq!(b.wait(LONG).await.expect("released").generation, k);
            }
            tagging(&sqs)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 0, "a member took tagging actions");
    }
    c.stop().await.unwrap();
    // The coordinator: its start (the copy of the state in tags), its
    // first copy and its last: a handful whatever the number of phases.
    let by_coordinator = tagging(&coordinator_sqs);
    assert!(
        (1..=4).contains(&by_coordinator),
        "{by_coordinator} tagging actions by the coordinator: {:?}",
        coordinator_sqs.requests().snapshot()
    );
}

async fn a_barrier_set_up_again_is_told_apart(target: Target) {
    use sqs_barrier::core::record::StateRecord;
    let f = fixture(target, 2, None).await;
    let c = coordinator(&f, fast_coordinator(false));
    let mut opts = ParticipantOptions::default();
    opts.status_interval = Duration::from_secs(1);
    let b = Barrier::connect_with(&f.sqs, &f.name, "0", opts)
        .await
        .unwrap();
    let info = admin::open(&f.sqs, &f.name).await.unwrap();
    c.stop().await.unwrap();
    // What a barrier deleted and set up again under the same name leaves
    // in the state queue (SQS lets a deleted queue's name be used again
    // only after 60 s, so the new instance's record is sent directly).
    let mut config = info.config.clone();
    config.instance = "0123456789abcdef".into();
    let state = admin::read_state(&f.sqs, &info).await.unwrap().unwrap();
    f.sqs
        .client()
        .purge_queue()
        .queue_url(&info.urls.state)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    f.sqs
        .client()
        .send_message()
        .queue_url(&info.urls.state)
        .message_body(StateRecord { config, state }.to_json())
        .send()
        .await
        .unwrap();
    let err = b.wait(LONG).await.unwrap_err();
    assert!(matches!(err, Error::Recreated { .. }), "{err}");
    assert!(err.to_string().contains("set up again"), "{err}");
    // Opened now, it is the new instance.
    let now = admin::open(&f.sqs, &f.name).await.unwrap();
    assert_eq!(now.config.instance, "0123456789abcdef");
}

async fn missing_barrier_is_a_clear_error(target: Target) {
    let endpoint = start(target).await;
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let err = Barrier::connect(&sqs, "never-set-up", "0")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSetUp { .. }), "{err}");
    assert!(err.to_string().contains("set it up first"), "{err}");
    // An endpoint nobody listens on.
    let dead = Sqs::local("http://127.0.0.1:9");
    let err = admin::status(&dead, "x").await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
}

async fn timeout_names_missing_members(target: Target) {
    let f = fixture(target, 3, None).await;
    let c = coordinator(&f, fast_coordinator(false));
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    let a1 = b1.arrive(LONG).await.unwrap();
    let err = b0.wait(Some(Duration::from_secs(2))).await.unwrap_err();
    match &err {
        Error::TimedOut { missing, .. } => {
            assert_eq!(missing.as_deref(), Some(&["2".to_owned()][..]), "{err}")
        }
        other => panic!("expected a timeout, got {other}"),
    }
    // The timed-out member's check-in stands; a re-run of the same phase and
    // the last member release everyone.
    let b2 = member(&f, "2").await;
    let a2 = b2.arrive(LONG).await.unwrap();
    b0.wait(LONG).await.expect("re-run released");
    a1.await.unwrap();
    a2.await.unwrap();
    c.stop().await.unwrap();
}

async fn abort_breaks_every_waiter(target: Target) {
    let f = fixture(target, 3, None).await;
    let c = coordinator(&f, fast_coordinator(false));
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    let a0 = b0.arrive(LONG).await.unwrap();
    let a1 = b1.arrive(LONG).await.unwrap();
    sqs_barrier::abort_barrier(&f.sqs, &f.name, "op", "disk full")
        .await
        .unwrap();
    for a in [a0, a1] {
        match a.await.unwrap_err() {
            Error::Broken { cause, missing, .. } => {
                assert_eq!(
                    cause,
                    BreakCause::Aborted {
                        by: "op".into(),
                        reason: "disk full".into()
                    }
                );
                assert_eq!(missing, vec!["2".to_owned()]);
            }
            other => panic!("expected broken, got {other}"),
        }
    }
    // A late arrival learns it too.
    let b2 = member(&f, "2").await;
    assert!(matches!(b2.wait(LONG).await, Err(Error::Broken { .. })));
    // ... and so does `status`, once the coordinator has published it.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let st = admin::status(&f.sqs, &f.name).await.unwrap();
        if st.state.and_then(|s| s.broken).is_some() {
            break;
        }
        assert!(Instant::now() < end, "broken state never published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.stop().await.unwrap();
}

async fn deadline_breaks_and_names_missing(target: Target) {
    let f = fixture(target, 2, Some(Duration::from_secs(1))).await;
    let c = coordinator(&f, fast_coordinator(false));
    let b0 = member(&f, "0").await;
    match b0.wait(LONG).await.unwrap_err() {
        Error::Broken { cause, missing, .. } => {
            assert!(matches!(cause, BreakCause::Deadline { .. }), "{cause}");
            assert_eq!(missing, vec!["1".to_owned()]);
        }
        other => panic!("expected broken, got {other}"),
    }
    c.stop().await.unwrap();
}

async fn silent_coordinator_is_an_error(target: Target) {
    let f = fixture(target, 2, None).await;
    let mut opts = ParticipantOptions::default();
    opts.silence_after = Duration::from_secs(2);
    opts.status_interval = Duration::from_secs(1);
    let b0 = Barrier::connect_with(&f.sqs, &f.name, "0", opts)
        .await
        .unwrap();
    let started = Instant::now();
    let err = b0.wait(LONG).await.unwrap_err();
    assert!(matches!(err, Error::CoordinatorSilent { .. }), "{err}");
    assert!(
        err.to_string().contains("no live coordinator") && err.to_string().contains("start one"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

async fn malformed_messages_are_moved_aside(target: Target) {
    let f = fixture(target, 2, None).await;
    let info = admin::open(&f.sqs, &f.name).await.unwrap();
    let junk = [
        "Process 3 completed Phase 1".to_owned(),
        "{\"v\":1,\"type\":\"checkin\"}".to_owned(),
        format!(
            "{{\"v\":1,\"type\":\"checkin\",\"barrier\":\"{}\",\"instance\":\"{}\",\"gen\":0,\"member\":\"mallory\",\"session\":\"s\",\"attempt\":0}}",
            f.name, info.config.instance
        ),
        format!(
            "{{\"v\":1,\"type\":\"checkin\",\"barrier\":\"{}\",\"instance\":\"forged\",\"gen\":0,\"member\":\"0\",\"session\":\"s\",\"attempt\":0}}",
            f.name
        ),
        format!(
            "{{\"v\":1,\"type\":\"checkin\",\"barrier\":\"{}\",\"instance\":\"{}\",\"gen\":999999,\"member\":\"1\",\"session\":\"s\",\"attempt\":0}}",
            f.name, info.config.instance
        ),
    ];
    for body in &junk {
        f.sqs
            .client()
            .send_message()
            .queue_url(&info.urls.checkin)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let mut c = coordinator(&f, fast_coordinator(false));
    // The barrier still works, and none of the junk counted.
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    let a0 = b0.arrive(LONG).await.unwrap();
    b1.wait(LONG).await.unwrap();
    a0.await.unwrap();
    let mut rejected = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while rejected < junk.len() && Instant::now() < deadline {
        if let Ok(Some(Event::Rejected { .. })) =
            tokio::time::timeout(Duration::from_millis(200), c.events.recv()).await
        {
            rejected += 1;
        }
    }
    assert_eq!(rejected, junk.len());
    tokio::time::sleep(Duration::from_millis(700)).await; // a state write
    let st = admin::status(&f.sqs, &f.name).await.unwrap();
    assert_eq!(st.state.unwrap().rejected, junk.len() as u64);
    let dlq = f
        .sqs
        .client()
        .receive_message()
        .queue_url(&info.urls.dead_letter)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let moved = dlq.messages.unwrap_or_default();
    assert_eq!(moved.len(), junk.len());
    assert!(moved.iter().all(|m| {
        m.message_attributes
            .as_ref()
            .is_some_and(|a| a.contains_key("sqs-barrier-reason"))
    }));
    c.stop().await.unwrap();
}

async fn coordinator_restart_loses_no_checkin(target: Target) {
    let f = fixture(target, 3, None).await;
    let mut first = coordinator(&f, fast_coordinator(false));
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    let a0 = b0.arrive(LONG).await.unwrap();
    let a1 = b1.arrive(LONG).await.unwrap();
    // Wait until the first coordinator has seen both check-ins.
    let mut seen = 0;
    while seen < 2 {
        if let Some(Event::Arrived { .. }) = first.events.recv().await {
            seen += 1;
        }
    }
    first.stop().await.unwrap();
    // A second one started the plain way takes over at once: the first
    // published that it stopped.
    let second = coordinator(&f, fast_coordinator(false));
    let b2 = member(&f, "2").await;
    b2.wait(LONG).await.expect("released after the restart");
    a0.await.unwrap();
    a1.await.unwrap();
    second.stop().await.unwrap();
}

async fn rerun_after_release_gets_the_notice_again(target: Target) {
    let f = fixture(target, 2, None).await;
    let c = coordinator(&f, fast_coordinator(false));
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    let a0 = b0.arrive(LONG).await.unwrap();
    b1.wait(LONG).await.unwrap();
    a0.await.unwrap();
    // Member 0 "crashed" after the release and re-runs phase 0 with a new
    // session: it must be released again, not hang.
    let again = member(&f, "0").await;
    again.set_next_phase(0);
    let r = again.wait(LONG).await.expect("released again");
    assert_eq!(r.generation, 0);
    c.stop().await.unwrap();
}

async fn dropped_arrival_cancels_the_wait(target: Target) {
    let f = fixture(target, 2, None).await;
    let c = coordinator(&f, fast_coordinator(false));
    // With default options: a dropped wait takes nothing from the release
    // queue (reads hide nothing), so nobody needs a status read to recover.
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    // Member 0 arrives, long-polls for a while, and gives up the wait.
    let first = b0.arrive(LONG).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(first);
    // The handle may arrive at the same generation again at once.
    let again = b0.arrive(LONG).await.expect("the dropped wait has ended");
    assert_eq!(again.generation(), 0);
    let r1 = b1.wait(LONG).await.expect("released");
    assert_eq!(r1.generation, 0);
    assert_eq!(again.await.expect("released").generation, 0);
    // One notice for the generation, read by both live waits and by
    // nobody taken: nothing in flight, one message stored. (moto keeps
    // serving a long poll whose client went away; counts are exact only
    // on the embedded endpoint.)
    if target == Target::Embedded {
        let info = admin::open(&f.sqs, &f.name).await.unwrap();
        let out = f
            .sqs
            .client()
            .get_queue_attributes()
            .queue_url(info.urls.release_for(0))
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes.unwrap_or_default();
        let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
            attrs
                .get(&name)
                .map(String::as_str)
                .unwrap_or("?")
                .to_owned()
        };
        use aws_sdk_sqs::types::QueueAttributeName as A;
        assert_eq!(count(A::ApproximateNumberOfMessagesNotVisible), "0");
        assert_eq!(count(A::ApproximateNumberOfMessages), "1");
    }
    c.stop().await.unwrap();
}

async fn an_arrive_dropped_midway_leaves_the_handle_usable(target: Target) {
    let f = fixture(target, 2, None).await;
    let c = coordinator(&f, fast_coordinator(false));
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    // The `arrive` future is dropped while it sends the check-in (polled
    // once: the send is under way): the handle must not stay "waiting".
    {
        let mut cut = std::pin::pin!(b0.arrive(LONG));
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(cut.as_mut(), cx).is_pending())
        })
        .await;
        assert!(first, "the arrive finished at its first poll");
    }
    let a0 = b0.arrive(LONG).await.expect("the handle is not stuck");
    b1.wait(LONG).await.expect("released");
    assert_eq!(a0.await.expect("released").generation, 0);
    c.stop().await.unwrap();
}

async fn fifo_checkin_queue_serves_many_phases(target: Target) {
    let endpoint = start(target).await;
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let name = format!("f{:08x}", rand_u32());
    let mut opts = admin::SetupOptions::new(2);
    opts.fifo = true;
    let out = admin::setup(&sqs, &name, &opts).await.expect("setup");
    assert!(out.info.urls.checkin.ends_with("-checkin.fifo"));
    let f = Fixture {
        _endpoint: Some(endpoint),
        sqs,
        name,
    };
    let c = coordinator(&f, fast_coordinator(false));
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    // Identical check-in bodies in consecutive phases must not be taken for
    // duplicates by FIFO deduplication.
    for k in 0..4 {
        let a0 = b0.arrive(LONG).await.unwrap();
        let r1 = b1.wait(LONG).await.expect("released");
        assert_eq!(r1.generation, k);
        assert_eq!(a0.await.unwrap().generation, k);
    }
    c.stop().await.unwrap();
}

async fn two_coordinators_never_release_early(target: Target) {
    let f = fixture(target, 3, None).await;
    let (first, g1) = coordinator_with_gauges(&f, fast_coordinator(false));
    // A second coordinator started the plain way stands by while the first
    // is alive...
    wait_until("the first is active", || g1.active.load(SeqCst)).await;
    let (standby, g2) = coordinator_with_gauges(&f, fast_coordinator(false));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!g2.active.load(SeqCst), "a live coordinator was taken over");
    // ... and one forced to start splits the check-ins with the first. Nobody
    // may pass before all three arrived; one of the two stands down within
    // a heartbeat and hands its check-ins over.
    let (forced, g3) = coordinator_with_gauges(&f, fast_coordinator(true));
    let b: Vec<Barrier> = connect_all(["0", "1", "2"].map(|id| member(&f, id))).await;
    only_all_three_release(&b).await;
    wait_until("exactly one active coordinator", || {
        [&g1, &g2, &g3]
            .iter()
            .filter(|g| g.active.load(SeqCst))
            .count()
            == 1
    })
    .await;
    // The one that stood down stands by again: it runs on.
    for c in [first, standby, forced] {
        c.stop().await.unwrap();
    }
}

async fn a_standby_takes_over_from_a_dead_coordinator(target: Target) {
    let f = fixture(target, 2, None).await;
    let (first, g1) = coordinator_with_gauges(&f, fast_coordinator(false));
    wait_until("the first is active", || g1.active.load(SeqCst)).await;
    let (standby, g2) = coordinator_with_gauges(&f, fast_coordinator(false));
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    let a0 = b0.arrive(LONG).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!g2.active.load(SeqCst), "standing by while the first lives");
    // kill -9: the task ends where it is; nothing is handed back.
    first.task.abort();
    let killed = Instant::now();
    wait_until("the standby takes over", || g2.active.load(SeqCst)).await;
    let detected = killed.elapsed();
    // The dead one's lease runs out within its term (10 s) of its last
    // extension; then the standby's waiting receive gets the token.
    assert!(
        detected < Duration::from_secs(20),
        "took over after {detected:?}"
    );
    b1.wait(LONG).await.expect("released by the standby");
    a0.await.unwrap();
    standby.stop().await.unwrap();
}

/// kill -9 while a phase is being gathered, then the same plain start one
/// second later: the new coordinator takes over and releases within
/// seconds (docs/RELIABILITY.md has the figures of the CLI version).
async fn a_coordinator_restarted_after_kill_takes_over_in_seconds(target: Target) {
    let f = fixture(target, 3, None).await;
    let (first, g1) = coordinator_with_gauges(&f, fast_coordinator(false));
    wait_until("the first is active", || g1.active.load(SeqCst)).await;
    let b: Vec<Barrier> = connect_all(["0", "1", "2"].map(|id| member(&f, id))).await;
    let a0 = b[0].arrive(LONG).await.unwrap();
    let a1 = b[1].arrive(LONG).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.task.abort();
    // The last member arrives while no coordinator runs.
    let a2 = b[2].arrive(LONG).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = Instant::now();
    let (second, _g) = coordinator_with_gauges(&f, fast_coordinator(false));
    a2.await.expect("released after the restart");
    let took = restarted.elapsed();
    a0.await.unwrap();
    a1.await.unwrap();
    // The killed one's lease runs out within its term (10 s).
    assert!(
        took < Duration::from_secs(20),
        "released {took:?} after the restart"
    );
    second.stop().await.unwrap();
}

/// Eight barriers of four members, each with its coordinator, on one
/// endpoint that applies SQS's tagging quota (5 a second for everyone):
/// every phase of every barrier is released, and the tagging actions of
/// all of them together stay a handful per barrier.
async fn many_barriers_at_once_share_the_quota(target: Target) {
    let endpoint = start(target).await;
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let counted = sqs.with_own_counter();
    let mut runs = Vec::new();
    for _ in 0..8 {
        let name = format!("t{:08x}", rand_u32());
        admin::setup(&sqs, &name, &admin::SetupOptions::new(4))
            .await
            .expect("setup");
        let f = Fixture {
            _endpoint: None,
            sqs: counted.clone(),
            name,
        };
        runs.push(f);
    }
    let mut coordinators = Vec::new();
    let mut members = Vec::new();
    for f in &runs {
        coordinators.push(coordinator(f, fast_coordinator(false)));
        for id in 0..4 {
            let b = member(f, &id.to_string()).await;
            members.push(tokio::spawn(async move {
                for k in 0..3u64 {
                    assert_eq!(b.wait(LONG).await.expect("released").generation, k);
                }
            }));
        }
    }
    for m in members {
        m.await.expect("every member released at every phase");
    }
    for c in coordinators {
        c.stop().await.unwrap();
    }
    // Per barrier: its coordinator's start and stop, and the members'
    // opens while no state was published yet (at most one each).
    let actions = tagging(&counted);
    assert!(
        actions <= 8 * (4 + 4),
        "{actions} tagging actions: {:?}",
        counted.requests().snapshot()
    );
    drop(endpoint);
}

/// A coordinator that gets the lease's token late in its long poll (the
/// token's last holder kept it for 8 s) holds the lease from then on, not
/// from when its receive went out: it stays active, loses no lease, and
/// releases.
async fn a_lease_taken_late_in_a_long_poll_is_kept(target: Target) {
    let f = fixture(target, 2, None).await;
    let info = admin::open(&f.sqs, &f.name).await.unwrap();
    let held = f
        .sqs
        .client()
        .receive_message()
        .queue_url(&info.urls.lease)
        .visibility_timeout(8)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert_eq!(held.messages().len(), 1, "the token");
    let (c, g) = coordinator_with_gauges(&f, fast_coordinator(false));
    let started = Instant::now();
    wait_until("the coordinator takes the lease", || g.active.load(SeqCst)).await;
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    // Well past the first lease's term counted from the receive.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(g.active.load(SeqCst), "it stood down");
    assert_eq!(g.lease_losses.load(SeqCst), 0);
    let b: Vec<Barrier> = connect_all(["0", "1"].map(|id| member(&f, id))).await;
    let a0 = b[0].arrive(LONG).await.unwrap();
    b[1].wait(LONG).await.expect("released");
    a0.await.unwrap();
    c.stop().await.unwrap();
}

/// A coordinator cut off from its state queue goes on releasing phases
/// whose members all arrived (a notice needs no write) and holds their
/// check-ins until a write records them: at `max_held` it stops receiving,
/// so what it holds (and extends) stays bounded however long the cut
/// lasts; once the state queue is back every phase completes. On the
/// embedded endpoint, whose fault injection does the cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_cut_off_its_state_holds_no_more_than_max_held() {
    const CUT: (u64, u64) = (4, 14);
    const MAX_HELD: usize = 10;
    const EPISODES: u64 = 30;
    let spec = format!("any[queue=-state;from={};to={}].error=1", CUT.0, CUT.1);
    let (f, started) = fixture_with_chaos(&spec, 2).await;
    let gauges = Arc::new(CoordinatorGauges::default());
    let mut opts = CoordinatorOptions::default();
    opts.core.min_write_interval = Duration::from_millis(100);
    opts.visibility = Duration::from_secs(2);
    opts.receivers = Some(1);
    opts.max_held = Some(MAX_HELD);
    opts.gauges = Some(gauges.clone());
    let running = coordinator(&f, opts);
    let (b0, b1) = (member(&f, "0").await, member(&f, "1").await);
    assert!(
        started.elapsed() < Duration::from_secs(CUT.0),
        "too slow to start"
    );
    // The most check-ins held at once, sampled.
    let sampler = tokio::spawn({
        let g = gauges.clone();
        async move {
            let mut most = 0;
            while started.elapsed() < Duration::from_secs(CUT.1 + 20) {
                most = most.max(g.receipts.load(SeqCst));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            most
        }
    });
    let run = |b: Barrier| {
        tokio::spawn(async move {
            // Every episode from the cut on.
            tokio::time::sleep(Duration::from_secs(CUT.0 + 1).saturating_sub(started.elapsed()))
                .await;
            let mut released = Vec::new();
            for _ in 0..EPISODES {
                b.wait(Some(Duration::from_secs(60)))
                    .await
                    .expect("released");
                released.push(started.elapsed());
            }
            released
        })
    };
    let (r0, r1) = (run(b0), run(b1));
    let (r0, r1) = (r0.await.unwrap(), r1.await.unwrap());
    let most = sampler.await.unwrap();
    let in_cut = |r: &[Duration]| {
        r.iter()
            .filter(|t| (CUT.0 + 1..CUT.1).contains(&t.as_secs()))
            .count()
    };
    eprintln!(
        "held at most {most}; releases of member 0 during the cut: {}, in all {}",
        in_cut(&r0),
        r0.len()
    );
    // One receive (up to 10 messages) may be under way when it is full.
    assert!(most <= MAX_HELD + 10, "held {most}");
    // Two check-ins a phase: five phases fill it, and the receive under
    // way then may bring one more (a margin of one beyond).
    assert!(
        in_cut(&r0) <= MAX_HELD / 2 + 2,
        "released {} phases during the cut",
        in_cut(&r0)
    );
    assert_eq!((r0.len(), r1.len()), (EPISODES as usize, EPISODES as usize));
    running.stop().await.unwrap();
}
