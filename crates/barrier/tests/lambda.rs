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
    a_deadline_tick_and_a_release_at_once_have_one_outcome,
    stray_messages_in_the_lease_queue_open_no_second_lease,
    a_warm_instance_serves_a_barrier_set_up_again_with_its_new_configuration,
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

/// Two invocations at once: a tick that finds the generation past its
/// deadline and breaks it, and an invocation whose batch holds the last
/// member's check-in and releases it.
/// Without the lease both could be announced: some members Released,
/// others Broken. With it they take turns, and the second one finds the
/// first one's decision: every member, every notice on the release queue
/// and the published state say the same.
async fn a_deadline_tick_and_a_release_at_once_have_one_outcome(target: Target) {
    let race = deadline_and_release_at_once(target, LeaseQueue::AsSetUp).await;
    eprintln!("{target}: {race:?}");
    race.assert_one_outcome();
}

/// The same race with 20 stray messages in the lease queue, each in a
/// message group of its own. A receive could hand every invocation one of
/// them while another holds the token (the group lock covers one group
/// only): the lease would exclude nobody, and before the lease took only
/// messages of the token's group, this race split the members in 10 of 15
/// tries (docs/results/2026-12-06-lambda-deadline-race.md). The lease
/// deletes them instead, and the race has one outcome.
async fn stray_messages_in_the_lease_queue_open_no_second_lease(target: Target) {
    let race = deadline_and_release_at_once(target, LeaseQueue::Strays).await;
    eprintln!("{target}: {race:?}");
    race.assert_one_outcome();
}

/// How the lease queue is set up for a race.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeaseQueue {
    /// As `setup` leaves it: one token, in message group `lease`.
    AsSetUp,
    /// With 20 more messages like a token, each in a message group of its
    /// own: not tokens, as only the token's group is locked while it is in
    /// flight.
    Strays,
}

/// What a race ended with.
#[derive(Debug)]
struct Race {
    /// Each member's outcome: `released` or `broken` (or the error).
    members: Vec<String>,
    /// The notices for generation 0 on its release queue, by kind.
    notices: Vec<String>,
    /// What the published state says of generation 0.
    state: String,
    /// What the releasing invocation and the tick each decided.
    decided: [String; 2],
}

impl Race {
    /// The distinct outcomes anyone can learn.
    fn outcomes(&self) -> std::collections::BTreeSet<&str> {
        self.members
            .iter()
            .chain(&self.notices)
            .chain([&self.state])
            .map(String::as_str)
            .collect()
    }

    fn assert_one_outcome(&self) {
        let outcomes = self.outcomes();
        assert_eq!(outcomes.len(), 1, "generation 0 has two outcomes: {self:?}");
        assert!(
            outcomes.contains("released") || outcomes.contains("broken"),
            "{self:?}"
        );
        // Nor did the two invocations decide it differently.
        let decided: std::collections::BTreeSet<&str> = ["released", "broken"]
            .into_iter()
            .filter(|o| self.decided.iter().any(|d| d.contains(o)))
            .collect();
        assert!(decided.len() <= 1, "decided both ways: {self:?}");
    }
}

/// What a coordinator's events say it decided about generation 0.
fn decided(out: &sqs_barrier::Result<sqs_barrier::lambda::BatchOutcome>) -> String {
    use sqs_barrier::core::coordinator::Event;
    let Ok(out) = out else {
        return format!("{out:?}");
    };
    let mut what = Vec::new();
    for e in &out.events {
        match e {
            Event::Released { generation: 0, .. } => what.push("released"),
            Event::Broken { .. } => what.push("broken"),
            _ => {}
        }
    }
    if what.is_empty() {
        what.push("nothing");
    }
    format!("{} (races {})", what.join(", "), out.races)
}

/// Receives the check-ins waiting on the check-in queue, as the event
/// source mapping would, until at least `at_least` came.
async fn take_checkins(
    sqs: &Sqs,
    info: &admin::BarrierInfo,
    at_least: usize,
) -> Vec<sqs_barrier::lambda::Record> {
    let mut records = Vec::new();
    let started = Instant::now();
    while records.len() < at_least {
        assert!(started.elapsed() < Duration::from_secs(20), "no check-in");
        let out = sqs
            .client()
            .receive_message()
            .queue_url(&info.urls.checkin)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            records.push(sqs_barrier::lambda::Record {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                event_source_arn: format!(
                    "arn:aws:sqs:us-east-1:000000000000:{}-checkin",
                    info.config.name
                ),
                message_group_id: None,
            });
        }
    }
    records
}

/// Two members and a deadline of 2 s. Member 0 arrives and an invocation
/// counts it; once the deadline (and the slack the handler gives it, here
/// 1 s) has passed, member 1 arrives, and its invocation and a tick run at
/// once, the real handler both. The embedded endpoint answers each request
/// 5-20 ms late, a round trip to SQS in the region (moto takes its own
/// time): two invocations that start together then both read the state
/// before either writes, unless the lease keeps one waiting.
async fn deadline_and_release_at_once(target: Target, lease: LeaseQueue) -> Race {
    use sqs_barrier::core::wire::Message;
    use sqs_barrier::lambda::{Barriers, LambdaOptions, handle_batch, handle_tick};
    let endpoint = match target {
        Target::Embedded => {
            use sqs_barrier_local::{Options, Server};
            let latency = "5ms..20ms".parse().unwrap();
            let server = Server::bind_with(
                "127.0.0.1:0".parse().unwrap(),
                Options::default().with_latency(latency),
            )
            .await
            .unwrap();
            TestEndpoint::Embedded(server)
        }
        Target::Moto => start(target).await,
    };
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let name = format!("l{:08x}", rand_u32());
    let mut setup = admin::SetupOptions::new(2);
    setup.deadline = Some(Duration::from_secs(2));
    admin::setup(&sqs, &name, &setup).await.expect("setup");
    let info = admin::open(&sqs, &name).await.unwrap();
    if lease == LeaseQueue::Strays {
        for i in 0..20 {
            sqs.client()
                .send_message()
                .queue_url(&info.urls.lease)
                .message_group_id(format!("other-{i}"))
                .message_deduplication_id(format!("other-{i}"))
                .message_body(r#"{"v":1,"type":"lease"}"#)
                .send()
                .await
                .unwrap();
        }
    }
    let mut opts = LambdaOptions::default();
    opts.queue_visibility = Duration::from_secs(1);
    let (b0, b1) = (
        Barrier::connect(&sqs, &name, "0").await.unwrap(),
        Barrier::connect(&sqs, &name, "1").await.unwrap(),
    );
    // Member 0 arrives; an invocation counts it (generation 0 opens).
    let a0 = b0.arrive(LONG).await.unwrap();
    let first = take_checkins(&sqs, &info, 1).await;
    let out = handle_batch(&sqs, &Barriers::new(), first, &opts)
        .await
        .unwrap();
    assert!(out.failures.is_empty(), "{out:?}");
    // Past the deadline and its slack: a tick now breaks generation 0.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // Member 1 arrives: its check-in releases generation 0.
    let a1 = b1.arrive(LONG).await.unwrap();
    let last = take_checkins(&sqs, &info, 1).await;
    // Two invocations at once, each a function instance of its own.
    let batch = tokio::spawn({
        let (sqs, opts) = (sqs.clone(), opts.clone());
        async move { handle_batch(&sqs, &Barriers::new(), last, &opts).await }
    });
    let tick = tokio::spawn({
        let (sqs, opts, name) = (sqs.clone(), opts.clone(), name.clone());
        async move { handle_tick(&sqs, &Barriers::new(), &name, &opts).await }
    });
    let (batch, tick) = (batch.await.unwrap(), tick.await.unwrap());
    let mut members = Vec::new();
    for a in [a0, a1] {
        members.push(match a.await {
            Ok(r) if r.generation == 0 => "released".to_owned(),
            Err(Error::Broken { .. }) => "broken".to_owned(),
            other => format!("{other:?}"),
        });
    }
    // Every notice for generation 0 that a member could read.
    let mut notices = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let out = sqs
            .client()
            .receive_message()
            .queue_url(info.urls.release_for(0))
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        notices.extend(out.messages().iter().filter_map(|m| {
            match Message::decode(m.body().unwrap_or_default()) {
                Ok(Message::Release { generation: 0, .. }) => Some("released".to_owned()),
                Ok(Message::Broken { generation: 0, .. }) => Some("broken".to_owned()),
                _ => None,
            }
        }));
    }
    let st = admin::status_with(&sqs, &name, false).await.unwrap();
    let state = match st.state {
        Some(s) if s.is_released(0) => "released".to_owned(),
        Some(s) if s.broken.as_ref().is_some_and(|b| b.from_gen == 0) => "broken".to_owned(),
        other => format!("{other:?}"),
    };
    Race {
        members,
        notices: notices.into_iter().collect(),
        state,
        decided: [decided(&batch), decided(&tick)],
    }
}

/// A warm function instance keeps each barrier's configuration. A barrier
/// deleted and set up again under the same name, now with three members,
/// must not be served with the old one (which would release at two
/// arrivals, and dead-letter the new instance's check-ins as another
/// barrier's): the instance notices the new one and opens it afresh.
async fn a_warm_instance_serves_a_barrier_set_up_again_with_its_new_configuration(target: Target) {
    use sqs_barrier::core::config::{BarrierConfig, Membership};
    use sqs_barrier::core::record::StateRecord;
    use sqs_barrier::core::state::PublishedState;
    use sqs_barrier::lambda::{Barriers, LambdaOptions, handle_batch};
    let endpoint = start(target).await;
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let name = format!("l{:08x}", rand_u32());
    admin::setup(&sqs, &name, &admin::SetupOptions::new(2))
        .await
        .expect("setup");
    let info = admin::open(&sqs, &name).await.unwrap();
    let (warm, opts) = (Barriers::new(), LambdaOptions::default());
    // Phase 0 of the first instance, through the warm instance: it caches
    // the configuration.
    let (b0, b1) = (
        Barrier::connect(&sqs, &name, "0").await.unwrap(),
        Barrier::connect(&sqs, &name, "1").await.unwrap(),
    );
    let (a0, a1) = (
        b0.arrive(LONG).await.unwrap(),
        b1.arrive(LONG).await.unwrap(),
    );
    let out = handle_batch(&sqs, &warm, take_checkins(&sqs, &info, 2).await, &opts)
        .await
        .unwrap();
    assert!(out.failures.is_empty(), "{out:?}");
    a0.await.unwrap();
    a1.await.unwrap();
    // Set up again with three members. SQS lets a deleted queue's name be
    // used again only after 60 s, so what setup leaves in the state queue
    // is put there directly: the new instance's configuration, nothing
    // released.
    let config = BarrierConfig::new(
        &name,
        "0123456789abcdef",
        Membership::new(3, None).unwrap(),
        None,
        false,
    )
    .unwrap();
    sqs.client()
        .purge_queue()
        .queue_url(&info.urls.state)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    sqs.client()
        .send_message()
        .queue_url(&info.urls.state)
        .message_body(
            StateRecord {
                config,
                state: PublishedState::initial(0),
            }
            .to_json(),
        )
        .send()
        .await
        .unwrap();
    // Two of the new instance's three members arrive: the warm instance
    // must not release them, nor dead-letter their check-ins.
    let mut members = Vec::new();
    for id in ["0", "1", "2"] {
        members.push(Barrier::connect(&sqs, &name, id).await.unwrap());
    }
    let (a0, a1) = (
        members[0].arrive(LONG).await.unwrap(),
        members[1].arrive(LONG).await.unwrap(),
    );
    let out = handle_batch(&sqs, &warm, take_checkins(&sqs, &info, 2).await, &opts)
        .await
        .unwrap();
    assert!(out.failures.is_empty(), "{out:?}");
    assert!(out.released.is_empty(), "released at 2 of 3: {out:?}");
    let dead = sqs
        .client()
        .get_queue_attributes()
        .queue_url(&info.urls.dead_letter)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        dead.attributes()
            .and_then(
                |a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            )
            .map(String::as_str),
        Some("0"),
        "check-ins of the new instance dead-lettered"
    );
    // The third arrives: all three pass phase 0 of the new instance.
    let a2 = members[2].arrive(LONG).await.unwrap();
    let out = handle_batch(&sqs, &warm, take_checkins(&sqs, &info, 1).await, &opts)
        .await
        .unwrap();
    assert_eq!(out.released, vec![0], "{out:?}");
    for a in [a0, a1, a2] {
        assert_eq!(a.await.unwrap().generation, 0);
    }
}
