//! The Lambda coordinator's handler (`sqs_barrier::lambda`), the real code,
//! invoked by an emulated SQS event source mapping (`lambda::emulator`):
//! batches of up to 10, two invocations at once, partial-batch failures,
//! failed and killed invocations, redelivery after the queue's visibility
//! timeout. Real participants (`Barrier`) wait at the barrier; every test
//! body runs on the embedded endpoint and on moto.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use sqs_barrier::lambda::emulator::{Deployment, EmulatedCoordinator, EsmConfig, EsmStats};
use sqs_barrier::{Barrier, Error, Sqs, admin};
use sqs_barrier_testkit::{Target, TestEndpoint, start};

sqs_barrier_testkit::both_endpoints!(
    phases_release_only_when_all_arrived,
    a_member_that_never_arrives_is_named,
    abort_breaks_every_waiter,
    killed_and_failed_invocations_lose_nothing,
    ticks_keep_participants_from_calling_it_silent,
    a_deadline_breaks_the_barrier_at_a_tick,
    leaves_and_joins_under_the_handler,
    gathering_under_the_handler_breaks_with_a_clear_cause,
    a_quorum_release_under_the_handler,
    an_invocation_decides_nothing_without_the_lease,
);

/// The chaos endpoint's faults (as the soak's): duplicated, empty and
/// reordered receives, late sends, throttling and errors (also after the
/// request took effect), small delays.
const CHAOS: &str = "receive.duplicate=0.05,receive.empty=0.05,receive.reorder=0.2,\
send.late=0.05:50-500,any.throttle=0.01,any.error=0.01,any.error_after=0.01,any.delay_ms=0-5";

/// The handler under the chaos endpoint, with killed and failed
/// invocations on top: every phase is still released, nobody early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_endpoint_loses_nothing() {
    use sqs_barrier_local::{ChaosSpec, Options, Server};
    let spec: ChaosSpec = CHAOS.parse().unwrap();
    let server = Server::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        Options::default().with_chaos(spec, Some(11)),
    )
    .await
    .unwrap();
    let esm = EsmConfig {
        kill_rate: 0.1,
        error_rate: 0.05,
        seed: 11,
        ..EsmConfig::default()
    };
    let setup = admin::SetupOptions::new(4);
    let f = fixture_at(TestEndpoint::Embedded(server), setup, esm, None).await;
    run_phases(&f, 4, 6).await;
    eprintln!("chaos: {:?}", f.mapping());
    f.stop().await;
}

/// Visibility of the check-in queue in these tests (setup makes it 30 s):
/// what a handed-back or killed batch waits before it comes again.
const VISIBILITY: Duration = Duration::from_secs(2);

struct Fixture {
    _endpoint: TestEndpoint,
    sqs: Sqs,
    name: String,
    lambda: Option<EmulatedCoordinator>,
}

impl Fixture {
    fn mapping(&self) -> Arc<EsmStats> {
        self.lambda.as_ref().expect("running").mapping()
    }

    async fn stop(mut self) {
        if let Some(l) = self.lambda.take() {
            l.stop().await;
        }
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) as u32
}

/// A barrier of `parties` with its check-in queue mapped to the handler.
async fn fixture(target: Target, parties: usize, esm: EsmConfig) -> Fixture {
    let setup = admin::SetupOptions::new(parties);
    fixture_at(start(target).await, setup, esm, None).await
}

async fn fixture_at(
    endpoint: TestEndpoint,
    setup: admin::SetupOptions,
    esm: EsmConfig,
    ticks: Option<Duration>,
) -> Fixture {
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let name = format!("l{:08x}", rand_u32());
    admin::setup(&sqs, &name, &setup).await.expect("setup");
    let info = admin::open(&sqs, &name).await.unwrap();
    // Set up through the library's client (with the SDK's retries: the
    // chaos endpoint fails some requests); the mapping polls with a client
    // of its own, without retries, as it handles failures itself.
    let client = endpoint.client();
    sqs.client()
        .set_queue_attributes()
        .queue_url(&info.urls.checkin)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            VISIBILITY.as_secs().to_string(),
        )
        .send()
        .await
        .unwrap();
    let mut deployment = Deployment::default();
    deployment.mapping = esm;
    deployment.function.heartbeat = Duration::from_secs(2);
    deployment.function.queue_visibility = VISIBILITY;
    deployment.ticks = ticks;
    let lambda = EmulatedCoordinator::start(&sqs, client, &name, deployment, None)
        .await
        .expect("mapped");
    Fixture {
        _endpoint: endpoint,
        sqs,
        name,
        lambda: Some(lambda),
    }
}

async fn member(f: &Fixture, id: &str) -> Barrier {
    Barrier::connect(&f.sqs, &f.name, id)
        .await
        .expect("connect")
}

const LONG: Option<Duration> = Some(Duration::from_secs(60));

/// Runs `parties` members through `phases` phases, each arriving at a
/// different moment, and checks nobody passes a phase before all arrived.
async fn run_phases(f: &Fixture, parties: usize, phases: u64) {
    let arrived: Arc<Vec<AtomicUsize>> =
        Arc::new((0..phases).map(|_| AtomicUsize::new(0)).collect());
    let mut tasks = Vec::new();
    for id in 0..parties {
        let b = member(f, &id.to_string()).await;
        let arrived = arrived.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..phases {
                tokio::time::sleep(Duration::from_millis(30 * (id as u64 % 3) * (k + 1))).await;
                arrived[k as usize].fetch_add(1, Relaxed);
                let r = b.wait(LONG).await.expect("released");
                assert_eq!(r.generation, k);
                assert_eq!(
                    arrived[k as usize].load(Relaxed),
                    parties,
                    "released at phase {k} before everyone arrived"
                );
            }
            b.next_phase()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), phases);
    }
}

async fn phases_release_only_when_all_arrived(target: Target) {
    let f = fixture(target, 4, EsmConfig::default()).await;
    let started = Instant::now();
    run_phases(&f, 4, 5).await;
    let esm = f.mapping();
    assert!(esm.invocations.load(Relaxed) >= 5, "{esm:?}");
    eprintln!(
        "{target}: 5 phases of 4 in {:?}; {esm:?}",
        started.elapsed()
    );
    f.stop().await;
}

async fn a_member_that_never_arrives_is_named(target: Target) {
    let f = fixture(target, 3, EsmConfig::default()).await;
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    let a1 = b1.arrive(Some(Duration::from_secs(4))).await.unwrap();
    let err = b0.wait(Some(Duration::from_secs(4))).await.unwrap_err();
    match &err {
        Error::TimedOut { missing, .. } => {
            assert_eq!(missing.as_deref(), Some(&["2".to_owned()][..]), "{err}")
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(matches!(a1.await, Err(Error::TimedOut { .. })));
    f.stop().await;
}

async fn abort_breaks_every_waiter(target: Target) {
    let f = fixture(target, 3, EsmConfig::default()).await;
    let b0 = member(&f, "0").await;
    let b1 = member(&f, "1").await;
    let a0 = b0.arrive(LONG).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    b1.abort("disk full").await.unwrap();
    let err = a0.await.unwrap_err();
    match &err {
        Error::Broken { cause, .. } => assert!(cause.to_string().contains("disk full"), "{err}"),
        other => panic!("expected broken, got {other}"),
    }
    f.stop().await;
}

async fn killed_and_failed_invocations_lose_nothing(target: Target) {
    let esm = EsmConfig {
        kill_rate: 0.3,
        error_rate: 0.1,
        seed: 7,
        ..EsmConfig::default()
    };
    let f = fixture(target, 4, esm).await;
    run_phases(&f, 4, 4).await;
    let stats = f.mapping();
    assert!(
        stats.failed.load(Relaxed) > 0,
        "no invocation was killed or failed: {stats:?}"
    );
    f.stop().await;
}

async fn ticks_keep_participants_from_calling_it_silent(target: Target) {
    let f = fixture_at(
        start(target).await,
        admin::SetupOptions::new(2),
        EsmConfig::default(),
        Some(Duration::from_secs(1)),
    )
    .await;
    let mut opts = sqs_barrier::core::participant::ParticipantOptions::default();
    opts.silence_after = Duration::from_secs(3);
    opts.status_interval = Duration::from_secs(1);
    let b0 = Barrier::connect_with(&f.sqs, &f.name, "0", opts.clone())
        .await
        .unwrap();
    let b1 = Barrier::connect_with(&f.sqs, &f.name, "1", opts)
        .await
        .unwrap();
    // Member 0 waits 8 s for member 1: longer than it takes to call a
    // coordinator silent that publishes nothing new (3 s, and twice the
    // promised 2 s plus 2 s). Only the ticks' heartbeats keep it waiting.
    let a0 = b0.arrive(LONG).await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    b1.wait(LONG).await.expect("released");
    assert_eq!(a0.await.expect("released").generation, 0);
    f.stop().await;
}

/// The barrier's deadline under the Lambda coordinator: every invocation is
/// a new coordinator, yet the generation's age goes on between them, and a
/// tick breaks it (after the deadline and the queue's visibility timeout),
/// naming the member that never arrived.
async fn a_deadline_breaks_the_barrier_at_a_tick(target: Target) {
    let mut setup = admin::SetupOptions::new(2);
    setup.deadline = Some(Duration::from_secs(3));
    let f = fixture_at(
        start(target).await,
        setup,
        EsmConfig::default(),
        Some(Duration::from_secs(1)),
    )
    .await;
    let b0 = member(&f, "0").await;
    let err = b0.wait(LONG).await.unwrap_err();
    match &err {
        Error::Broken { missing, .. } => assert_eq!(missing, &vec!["1".to_owned()], "{err}"),
        other => panic!("expected the deadline to break it, got {other}"),
    }
    f.stop().await;
}

/// A leave and a join, coordinated by the handler: the roll survives from
/// one invocation to the next in the published state.
async fn leaves_and_joins_under_the_handler(target: Target) {
    let f = fixture(target, 3, EsmConfig::default()).await;
    let members = [
        member(&f, "0").await,
        member(&f, "1").await,
        member(&f, "2").await,
    ];
    let (a, b, c) = tokio::join!(
        members[0].wait(LONG),
        members[1].wait(LONG),
        members[2].wait(LONG)
    );
    for r in [a, b, c] {
        assert_eq!(r.unwrap().generation, 0);
    }
    // Member 2 arrives at phase 1 and leaves; 0 and 1 are released.
    assert_eq!(members[2].leave(None).await.unwrap(), 1);
    let (a, b) = tokio::join!(members[0].wait(LONG), members[1].wait(LONG));
    assert_eq!(a.unwrap().generation, 1);
    assert_eq!(b.unwrap().generation, 1);
    // A new member joins: expected from phase 2.
    let joined = Barrier::join(&f.sqs, &f.name, None, Duration::from_secs(30))
        .await
        .expect("joined");
    assert_eq!((joined.member.as_str(), joined.first_phase), ("3", 2));
    let (a, b, c) = tokio::join!(
        members[0].wait(LONG),
        members[1].wait(LONG),
        joined.barrier.wait(LONG)
    );
    for r in [a, b, c] {
        assert_eq!(r.unwrap().generation, 2);
    }
    assert!(matches!(
        members[2].wait(LONG).await,
        Err(Error::NotExpected { .. })
    ));
    f.stop().await;
}

/// Data gathered under the handler: no invocation sees the check-ins the
/// others hold, so it cannot hand out everyone's data. The barrier breaks
/// at once with a cause that says what to do, rather than leave the members
/// waiting.
async fn gathering_under_the_handler_breaks_with_a_clear_cause(target: Target) {
    use sqs_barrier::WaitOptions;
    let f = fixture(target, 2, EsmConfig::default()).await;
    let (b0, b1) = (member(&f, "0").await, member(&f, "1").await);
    let (a, b) = tokio::join!(
        b0.wait_with(WaitOptions::timeout(LONG).with_data("x")),
        b1.wait(LONG)
    );
    for r in [a, b] {
        match r {
            Err(Error::Broken { cause, .. }) => {
                assert!(
                    cause.to_string().contains("sqs-barrier coordinator"),
                    "{cause}"
                )
            }
            other => panic!("expected Broken, got {other:?}"),
        }
    }
    f.stop().await;
}

/// A quorum of 2 of 3 under the handler: released without the straggler,
/// whose late wait fails.
async fn a_quorum_release_under_the_handler(target: Target) {
    let mut setup = admin::SetupOptions::new(3);
    setup.quorum = Some((2, Duration::from_secs(1)));
    // The release comes at an invocation after the grace (and the queue's
    // visibility timeout): the schedule's ticks, here every second.
    let ticks = Some(Duration::from_secs(1));
    let f = fixture_at(start(target).await, setup, EsmConfig::default(), ticks).await;
    let (b0, b1, b2) = (
        member(&f, "0").await,
        member(&f, "1").await,
        member(&f, "2").await,
    );
    let (a, b) = tokio::join!(b0.wait(LONG), b1.wait(LONG));
    assert_eq!(a.unwrap().generation, 0);
    assert_eq!(b.unwrap().generation, 0);
    match b2.wait(LONG).await {
        Err(Error::NotExpected {
            generation: 0,
            since: 0,
            ..
        }) => {}
        other => panic!("expected NotExpected at phase 0, got {other:?}"),
    }
    // The next phase waits for the two only.
    let (a, b) = tokio::join!(b0.wait(LONG), b1.wait(LONG));
    assert_eq!(a.unwrap().generation, 1);
    assert_eq!(b.unwrap().generation, 1);
    f.stop().await;
}

/// Invocations that overlap take turns: one that cannot take the
/// coordinators' lease (held here, as an overlapping invocation or a
/// coordinator process would hold it) decides and writes nothing, and
/// hands its batch back; once the lease is free, the same batch is counted.
async fn an_invocation_decides_nothing_without_the_lease(target: Target) {
    use sqs_barrier::core::wire::Message;
    use sqs_barrier::lambda::{Barriers, LambdaOptions, Record, handle_batch};
    let endpoint = start(target).await;
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let name = format!("l{:08x}", rand_u32());
    admin::setup(&sqs, &name, &admin::SetupOptions::new(2))
        .await
        .expect("setup");
    let info = admin::open(&sqs, &name).await.unwrap();
    // Somebody else holds the lease: the token in flight for 30 s.
    let held = sqs
        .client()
        .receive_message()
        .queue_url(&info.urls.lease)
        .visibility_timeout(30)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let receipt = held
        .messages()
        .first()
        .and_then(|m| m.receipt_handle())
        .expect("the token")
        .to_owned();
    let body = Message::Checkin {
        barrier: name.clone(),
        instance: info.config.instance.clone(),
        generation: 0,
        member: "0".into(),
        session: "s.0".into(),
        attempt: 0,
        leave: false,
        data: None,
    }
    .encode();
    let records = vec![Record {
        message_id: "m1".into(),
        body,
        event_source_arn: format!("arn:aws:sqs:us-east-1:000000000000:{name}-checkin"),
        message_group_id: None,
    }];
    let (barriers, opts) = (Barriers::new(), LambdaOptions::default());
    let began = Instant::now();
    let out = handle_batch(&sqs, &barriers, records.clone(), &opts)
        .await
        .unwrap();
    assert_eq!(out.failures, vec!["m1".to_owned()], "{out:?}");
    assert!(out.events.is_empty(), "decided without the lease: {out:?}");
    assert!(
        began.elapsed() >= Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    let st = admin::status_with(&sqs, &name, false).await.unwrap();
    assert!(
        st.state.as_ref().is_none_or(|s| s.open.is_none()),
        "a state was written without the lease: {:?}",
        st.state
    );
    // The lease is given back: the same batch is counted.
    sqs.client()
        .change_message_visibility()
        .queue_url(&info.urls.lease)
        .receipt_handle(&receipt)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let out = handle_batch(&sqs, &barriers, records, &opts).await.unwrap();
    assert!(out.failures.is_empty(), "{out:?}");
    let st = admin::status_with(&sqs, &name, false).await.unwrap();
    let open = st
        .state
        .and_then(|s| s.open)
        .expect("the arrival is published");
    assert_eq!((open.generation, open.arrived.len()), (0, 1));
}
