//! Unit tests of the coordinator machine.

use super::*;
use crate::config::Membership;

fn cfg(n: usize, deadline: Option<Duration>) -> BarrierConfig {
    BarrierConfig::new("b", "i", Membership::new(n, None).unwrap(), deadline, false).unwrap()
}

fn checkin(g: u64, m: &str, session: &str, attempt: u32) -> String {
    Message::Checkin {
        barrier: "b".into(),
        instance: "i".into(),
        generation: g,
        member: m.into(),
        session: session.into(),
        attempt,
        leave: false,
        data: None,
    }
    .encode()
}

fn drain(c: &mut Coordinator<u32>) -> Vec<Transmit<u32>> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

fn notifies(t: &[Transmit<u32>]) -> Vec<u64> {
    t.iter()
        .filter_map(|t| match t {
            Transmit::Notify { generation, .. } => Some(*generation),
            _ => None,
        })
        .collect()
}

const T: Duration = Duration::from_secs(100);

#[test]
fn releases_when_the_last_distinct_member_arrives() {
    let mut c = Coordinator::new(cfg(3, None), "c", CoordinatorOptions::default(), None);
    c.handle_message(1, &checkin(0, "0", "s0", 0), T);
    c.handle_message(2, &checkin(0, "0", "s0", 0), T); // redelivery
    c.handle_message(3, &checkin(0, "0", "s0", 1), T); // re-send
    c.handle_message(4, &checkin(0, "1", "s1", 0), T);
    let t = drain(&mut c);
    assert!(notifies(&t).is_empty(), "released with 2 of 3: {t:?}");
    // The re-send is deleted at once. The redelivery may be the counted
    // message itself under a new receipt handle: it is held too.
    assert_eq!(t, vec![Transmit::Delete(vec![3])]);
    assert_eq!(c.held(), 3);
    c.handle_message(5, &checkin(0, "2", "s2", 0), T);
    assert_eq!(notifies(&drain(&mut c)), vec![0]);
    assert!(c.is_released(0));
}

#[test]
fn collecting_from_the_first_check_in_until_the_release() {
    let mut c = Coordinator::new(cfg(2, None), "c", CoordinatorOptions::default(), None);
    assert!(!c.is_collecting());
    c.handle_message(1, &checkin(0, "0", "s0", 0), T);
    assert!(c.is_collecting());
    c.handle_message(2, &checkin(0, "1", "s1", 0), T);
    assert!(!c.is_collecting());
    // A late re-send for the released generation opens nothing.
    c.handle_message(3, &checkin(0, "1", "s1", 1), T);
    assert!(!c.is_collecting());
}

#[test]
fn deletes_wait_for_a_durable_state() {
    let mut c = Coordinator::new(cfg(1, None), "c", CoordinatorOptions::default(), None);
    c.handle_message(7, &checkin(0, "0", "s", 0), T);
    drain(&mut c);
    c.handle_timeout(T);
    let t = drain(&mut c);
    let Some(Transmit::WriteState { version, state }) = t.last().cloned() else {
        panic!("no state write: {t:?}");
    };
    assert_eq!(state.released_below, 1);
    assert!(!t.iter().any(|t| matches!(t, Transmit::Delete(_))));
    c.handle_state_written(version);
    assert_eq!(drain(&mut c), vec![Transmit::Delete(vec![7])]);
    assert_eq!(c.held(), 0);
}

#[test]
fn rejects_what_is_not_a_check_in_of_a_member() {
    let mut c = Coordinator::new(cfg(2, None), "c", CoordinatorOptions::default(), None);
    let foreign = checkin(0, "0", "s", 0).replace("\"i\"", "\"other\"");
    for (tok, body) in [
        (1, "junk".to_owned()),
        (2, checkin(0, "9", "s", 0)),
        (3, foreign),
        (4, checkin(MAX_AHEAD + 1, "0", "s", 0)),
    ] {
        c.handle_message(tok, &body, T);
    }
    let t = drain(&mut c);
    let dead: Vec<u32> = t
        .iter()
        .filter_map(|t| match t {
            Transmit::DeadLetter { token, .. } => Some(*token),
            _ => None,
        })
        .collect();
    assert_eq!(dead, vec![1, 2, 3, 4]);
    assert_eq!(c.snapshot(T).rejected, 4);
    assert!(c.snapshot(T).open.is_none(), "nothing was counted");
}

#[test]
fn a_check_in_for_a_released_generation_sends_nothing() {
    let mut c = Coordinator::new(cfg(1, None), "c", CoordinatorOptions::default(), None);
    c.handle_message(1, &checkin(0, "0", "s", 0), T);
    assert_eq!(notifies(&drain(&mut c)), vec![0]);
    // A redelivery of the released generation's check-in, and a re-run
    // of the member: no notice (the one sent is on its queue, and the
    // state says released); deleted only once the release is published.
    c.handle_message(2, &checkin(0, "0", "s", 0), T);
    assert_eq!(drain(&mut c), vec![]);
    c.handle_message(3, &checkin(0, "0", "s-rerun", 0), T);
    assert_eq!(drain(&mut c), vec![]);
}

#[test]
fn a_release_sweeps_the_other_queue_while_a_notice_there_may_live() {
    let mut c = Coordinator::new(cfg(1, None), "c", CoordinatorOptions::default(), None);
    let sweeps = |t: &[Transmit<u32>]| -> Vec<(u64, u64)> {
        t.iter()
            .filter_map(|t| match t {
                Transmit::Sweep { generation, below } => Some((*generation, *below)),
                _ => None,
            })
            .collect()
    };
    // Just started: a predecessor may have sent there.
    c.handle_message(1, &checkin(0, "0", "s", 0), T);
    assert_eq!(sweeps(&drain(&mut c)), vec![(1, 1)]);
    // Generation 0's notice went to release-0 just now: releasing 1
    // sweeps it.
    let t1 = T + Duration::from_secs(1);
    c.handle_message(2, &checkin(1, "0", "s", 0), t1);
    assert_eq!(sweeps(&drain(&mut c)), vec![(2, 2)]);
    // Long after: nothing sent to release-1 can still be alive.
    let later = T + NOTICE_LIFE + Duration::from_secs(10);
    c.handle_message(3, &checkin(2, "0", "s", 0), later);
    assert_eq!(sweeps(&drain(&mut c)), vec![]);
}

fn leave_checkin(g: u64, m: &str, data: Option<&str>) -> String {
    Message::Checkin {
        barrier: "b".into(),
        instance: "i".into(),
        generation: g,
        member: m.into(),
        session: format!("s{m}"),
        attempt: 0,
        leave: true,
        data: data.map(str::to_owned),
    }
    .encode()
}

/// A member that left at g - 1 may still wait for g - 1's release (with
/// the gathered data): the release of g does not sweep that notice, as it
/// does when every member of g - 1 checked in at g.
#[test]
fn a_release_keeps_the_notice_a_leaving_member_may_still_wait_for() {
    let mut c = Coordinator::new(cfg(2, None), "c", CoordinatorOptions::default(), None);
    let sweeps = |t: &[Transmit<u32>]| -> Vec<(u64, u64)> {
        t.iter()
            .filter_map(|t| match t {
                Transmit::Sweep { generation, below } => Some((*generation, *below)),
                _ => None,
            })
            .collect()
    };
    c.handle_message(1, &checkin(0, "0", "s0", 0), T);
    c.handle_message(2, &leave_checkin(0, "1", Some("bye")), T);
    assert_eq!(notifies(&drain(&mut c)), vec![0]);
    // Member 1 left at 0: generation 1 expects member 0 alone.
    let t1 = T + Duration::from_secs(1);
    c.handle_message(3, &checkin(1, "0", "s0", 0), t1);
    let t = drain(&mut c);
    assert_eq!(notifies(&t), vec![1]);
    assert_eq!(
        sweeps(&t),
        vec![(2, 0)],
        "generation 0's notice stays for the member that left"
    );
    // Generation 2: everyone it expects checked in at 1 and passed 0.
    c.handle_message(4, &checkin(2, "0", "s0", 0), t1);
    assert_eq!(sweeps(&drain(&mut c)), vec![(3, 3)]);
}

/// A quorum release's notice goes only once the state recording it is
/// durable: a successor that started from an earlier state could decide
/// the generation again, waiting for the member the notice dropped.
#[test]
fn a_quorum_release_is_published_before_its_notice() {
    let q = cfg(3, None).with_quorum(2, Duration::ZERO).unwrap();
    let o = CoordinatorOptions {
        restart_grace: Duration::ZERO,
        ..Default::default()
    };
    let mut c = Coordinator::new(q, "c", o, None);
    c.handle_message(1, &checkin(0, "0", "s0", 0), T);
    c.handle_message(2, &checkin(0, "1", "s1", 0), T);
    drain(&mut c);
    c.handle_timeout(T);
    let t = drain(&mut c);
    assert_eq!(c.released_below(), 1, "the quorum release");
    assert_eq!(
        notifies(&t),
        Vec::<u64>::new(),
        "no notice before the write"
    );
    let (version, state) = t
        .iter()
        .find_map(|t| match t {
            Transmit::WriteState { version, state } => Some((*version, state.clone())),
            _ => None,
        })
        .expect("a write");
    assert!(state.is_released(0) && !state.roll(&Membership::Count(3)).expects(2, 0));
    c.handle_state_written(version);
    let t = drain(&mut c);
    assert_eq!(
        notifies(&t),
        vec![0],
        "the notice once the release is durable"
    );
}

#[test]
fn check_ins_awaiting_a_write_stay_within_twice_the_members() {
    let mut c = Coordinator::new(cfg(2, None), "c", CoordinatorOptions::default(), None);
    write(&mut c, T);
    // One generation: its two check-ins wait for the write due after
    // the minimum write interval.
    c.handle_message(1, &checkin(0, "0", "s", 0), T);
    c.handle_message(2, &checkin(0, "1", "s", 0), T);
    drain(&mut c);
    assert_eq!(
        c.poll_timeout(),
        Some(T + CoordinatorOptions::default().min_write_interval)
    );
    // Generation after generation within the write interval: every
    // check-in awaits the next write.
    let mut token = 2;
    for g in 1..2u64 {
        for m in ["0", "1"] {
            token += 1;
            c.handle_message(token, &checkin(g, m, "s", 0), T);
        }
        drain(&mut c);
    }
    // 4 = 2 N awaiting: the next write is due now, not after the
    // minimum write interval.
    assert_eq!(c.poll_timeout(), Some(T));
}

#[test]
fn what_a_sweep_may_delete() {
    let c = cfg(2, None);
    let release = |g: u64, instance: &str| {
        Message::Release {
            barrier: "b".into(),
            instance: instance.into(),
            generation: g,
            without: vec![],
            data: None,
        }
        .encode()
    };
    assert!(sweepable(&c, &release(1, "i"), 3));
    assert!(!sweepable(&c, &release(3, "i"), 3));
    assert!(sweepable(&c, &release(5, "other"), 3), "another instance");
    assert!(sweepable(&c, "junk", 3));
    assert!(sweepable(&c, &checkin(5, "0", "s", 0), 3));
}

#[test]
fn abort_breaks_waiters_and_later_arrivals() {
    let mut c = Coordinator::new(cfg(3, None), "c", CoordinatorOptions::default(), None);
    c.handle_message(1, &checkin(0, "0", "s", 0), T);
    c.handle_message(2, &checkin(0, "1", "s", 0), T);
    drain(&mut c);
    let abort = Message::Abort {
        barrier: "b".into(),
        instance: "i".into(),
        generation: None,
        by: "op".into(),
        reason: "r".repeat(10_000),
    }
    .encode();
    c.handle_message(3, &abort, T);
    assert_eq!(notifies(&drain(&mut c)), vec![0]);
    let b = c.broken().unwrap();
    assert_eq!(b.missing, vec!["2".to_owned()]);
    assert!(b.cause.to_string().len() < MAX_REASON + 64, "reason is cut");
    c.handle_message(4, &checkin(0, "2", "s", 0), T);
    assert_eq!(notifies(&drain(&mut c)), vec![0]);
    // The same send again (a redelivery) is answered already.
    c.handle_message(5, &checkin(0, "2", "s", 0), T);
    assert_eq!(notifies(&drain(&mut c)), Vec::<u64>::new());
}

#[test]
fn deadline_waits_for_a_predecessor_then_names_the_missing() {
    let d = Duration::from_secs(2);
    let grace = CoordinatorOptions::default().restart_grace;
    let mut c = Coordinator::new(cfg(2, Some(d)), "c", CoordinatorOptions::default(), None);
    c.handle_timeout(T);
    c.handle_message(1, &checkin(0, "1", "s", 0), T);
    drain(&mut c);
    // Not at since + deadline: the restart grace comes first.
    c.handle_timeout(T + d);
    assert!(c.broken().is_none());
    assert_eq!(c.poll_timeout().map(|t| t <= T + grace), Some(true));
    c.handle_timeout(T + grace);
    let b = c.broken().expect("broken by the deadline");
    assert_eq!(b.missing, vec!["0".to_owned()]);
}

#[test]
fn resumes_from_a_published_state() {
    let mut first = Coordinator::<u32>::new(cfg(1, None), "a", CoordinatorOptions::default(), None);
    first.handle_message(1, &checkin(0, "0", "s", 0), T);
    let st = first.snapshot(T);
    let mut second = Coordinator::new(cfg(1, None), "b", CoordinatorOptions::default(), Some(&st));
    assert!(second.is_released(0));
    // A redelivered check-in of the released generation is stale: no
    // notice, although this coordinator has not seen the session.
    second.handle_message(9, &checkin(0, "0", "s", 0), T);
    let t = drain(&mut second);
    assert_eq!(notifies(&t), Vec::<u64>::new());
}

fn write(c: &mut Coordinator<u32>, now: Duration) -> (Vec<Transmit<u32>>, PublishedState) {
    c.handle_timeout(now);
    let t = drain(c);
    let Some(Transmit::WriteState { version, state }) = t.last().cloned() else {
        panic!("no state write at {now:?}: {t:?}");
    };
    c.handle_state_written(version);
    (t, *state)
}

fn deletes(t: &[Transmit<u32>]) -> Vec<u32> {
    t.iter()
        .flat_map(|t| match t {
            Transmit::Delete(v) => v.clone(),
            _ => vec![],
        })
        .collect()
}

#[test]
fn published_arrivals_free_their_check_ins() {
    let mut c = Coordinator::new(cfg(3, None), "c", CoordinatorOptions::default(), None);
    c.handle_message(1, &checkin(4, "0", "s0", 0), T);
    c.handle_message(2, &checkin(4, "1", "s1", 0), T);
    assert_eq!(c.held(), 2, "held until a state records them");
    let (_, st) = write(&mut c, T);
    let open = st.open.as_ref().expect("the open generation is published");
    assert_eq!((open.generation, open.arrived.len()), (4, 2));
    assert_eq!(deletes(&drain(&mut c)), vec![1, 2]);
    assert_eq!(c.held(), 0, "nothing in flight while the generation waits");
    // A later arrival goes after the next write; a redelivery of a
    // published one goes at once.
    c.handle_message(3, &checkin(4, "0", "s0", 0), T);
    assert_eq!(deletes(&drain(&mut c)), vec![3]);
    c.handle_message(5, &checkin(4, "2", "s2", 0), T);
    assert_eq!(notifies(&drain(&mut c)), vec![4]);
    let (t, st) = write(&mut c, T + Duration::from_secs(1));
    assert!(st.is_released(4) && st.open.is_none());
    let mut after = deletes(&t);
    after.extend(deletes(&drain(&mut c)));
    assert_eq!(after, vec![5]);
}

#[test]
fn a_successor_restores_published_arrivals() {
    let d = Duration::from_secs(100);
    let mut first = Coordinator::new(cfg(3, Some(d)), "a", CoordinatorOptions::default(), None);
    first.handle_message(1, &checkin(0, "0", "s0", 0), T);
    first.handle_message(2, &checkin(0, "1", "s1", 0), T);
    let (_, st) = write(&mut first, T + Duration::from_secs(40));
    assert_eq!(st.open.as_ref().unwrap().age_ms, Some(40_000));
    // The successor's clock is an hour off: the deadline counts from the
    // published age on its own clock, not from the writer's clock.
    let later = T + Duration::from_secs(3_600);
    let mut second = Coordinator::new(
        cfg(3, Some(d)),
        "b",
        CoordinatorOptions::default(),
        Some(&st),
    );
    second.handle_timeout(later);
    assert!(second.broken().is_none());
    assert_eq!(second.poll_timeout(), Some(later + Duration::from_secs(60)));
    // Only the last member's check-in is needed to release.
    second.handle_message(9, &checkin(0, "2", "s2", 0), later);
    assert_eq!(notifies(&drain(&mut second)), vec![0]);
}

#[test]
fn rebuilt_per_batch_the_age_goes_on_between_writes() {
    // As the Lambda handler runs it: a new coordinator for every
    // invocation, on wall time; the deadline must come although no
    // single one lives long.
    let d = Duration::from_secs(100);
    let o = CoordinatorOptions {
        restart_grace: Duration::ZERO,
        age_since_write: true,
        ..CoordinatorOptions::default()
    };
    let mut first = Coordinator::new(cfg(2, Some(d)), "a", o.clone(), None);
    first.handle_message(1, &checkin(0, "0", "s0", 0), T);
    let (_, mut st) = write(&mut first, T);
    // An invocation a minute, each writing a heartbeat.
    for k in 1..=3u64 {
        let now = T + Duration::from_secs(60 * k);
        let mut c = Coordinator::<u32>::new(cfg(2, Some(d)), format!("i{k}"), o.clone(), Some(&st));
        c.handle_timeout(now);
        if k < 2 {
            assert!(c.broken().is_none(), "broken at {k} minutes");
            st = write(&mut c, now).1;
            assert_eq!(st.open.as_ref().unwrap().age_ms, Some(60_000 * k));
        } else {
            let b = c.broken().expect("broken by the deadline");
            assert_eq!(b.missing, vec!["1".to_owned()]);
            return;
        }
    }
    unreachable!();
}

#[test]
fn probes_are_answered_at_once_and_speed_the_heartbeat() {
    let o = CoordinatorOptions::default();
    let mut c = Coordinator::new(cfg(2, None), "c", o.clone(), None);
    let (_, st) = write(&mut c, T);
    assert_eq!(
        st.heartbeat_every_ms,
        2 * o.heartbeat.as_millis() as u64,
        "idle"
    );
    assert_eq!(c.poll_timeout(), Some(T + 2 * o.heartbeat));
    c.handle_message(1, &checkin(0, "0", "s", 0), T);
    let (_, st) = write(&mut c, T + Duration::from_secs(1));
    assert_eq!(
        st.heartbeat_every_ms,
        o.heartbeat.as_millis() as u64,
        "open"
    );
    assert_eq!(deletes(&drain(&mut c)), vec![1], "published: freed");
    let probe = Message::Probe {
        barrier: "b".into(),
        instance: "i".into(),
        from: "standby".into(),
        watch: true,
    }
    .encode();
    let t = T + Duration::from_secs(2);
    c.handle_message(2, &probe, t);
    let tr = drain(&mut c);
    assert_eq!(deletes(&tr), vec![2], "a probe is not kept");
    assert_eq!(
        c.poll_timeout(),
        Some(T + Duration::from_secs(1)),
        "answer now"
    );
    let (_, st) = write(&mut c, t);
    assert_eq!(
        st.heartbeat_every_ms,
        o.standby_heartbeat.as_millis() as u64
    );
    assert_eq!(st.standbys, vec!["standby".to_owned()]);
    assert!(matches!(c.poll_event(), Some(Event::Arrived { .. })));
    assert!(matches!(c.poll_event(), Some(Event::Watched { .. })));
    // Without more probes it slows down again after the watch window.
    let quiet = t + o.watch_window;
    c.handle_timeout(quiet);
    let (_, st) = write(&mut c, quiet + o.standby_heartbeat);
    assert!(st.standbys.is_empty());
    assert_eq!(st.heartbeat_every_ms, o.heartbeat.as_millis() as u64);
}

#[test]
fn a_coordinator_that_finds_another_write_stands_down() {
    let mut a = Coordinator::new(cfg(2, None), "a", CoordinatorOptions::default(), None);
    a.handle_message(1, &checkin(0, "0", "s", 0), T);
    write(&mut a, T);
    drain(&mut a);
    let mut other = a.snapshot(T);
    other.coordinator = "b".into();
    a.handle_message(2, &checkin(0, "1", "s1", 0), T);
    a.handle_state_observed(&other, T);
    assert_eq!(a.superseded(), Some("b"));
    let t = drain(&mut a);
    assert!(
        deletes(&t).is_empty(),
        "no deletes after standing down: {t:?}"
    );
    assert_eq!(notifies(&t), vec![0], "its complete count is still true");
    a.handle_message(3, &checkin(1, "0", "s", 0), T);
    a.handle_timeout(T + Duration::from_secs(60));
    assert!(drain(&mut a).is_empty(), "inert");
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn a_first_write_stands_down_over_a_state_it_did_not_start_from() {
    let mut first = Coordinator::new(cfg(3, None), "a", CoordinatorOptions::default(), None);
    first.handle_message(1, &checkin(0, "0", "s", 0), T);
    let (_, st) = write(&mut first, T);
    // Started from that state: reading it again before the first write
    // is nothing new.
    let mut b =
        Coordinator::<u32>::new(cfg(3, None), "b", CoordinatorOptions::default(), Some(&st));
    b.handle_state_observed(&st, T);
    assert!(b.superseded().is_none());
    // The first one wrote again meanwhile: it is active; this one stands
    // down rather than overwrite what it has not seen.
    first.handle_message(2, &checkin(0, "1", "s1", 0), T);
    let (_, newer) = write(&mut first, T + Duration::from_secs(1));
    b.handle_state_observed(&newer, T);
    assert_eq!(b.superseded(), Some("a"));
    // Likewise one that started with no state and finds one.
    let mut c = Coordinator::<u32>::new(cfg(3, None), "c", CoordinatorOptions::default(), None);
    c.handle_state_observed(&newer, T);
    assert_eq!(c.superseded(), Some("a"));
}

#[test]
fn a_clean_stop_is_published() {
    let c = Coordinator::<u32>::new(cfg(2, None), "c", CoordinatorOptions::default(), None);
    assert!(c.final_snapshot(T).stopped);
    assert!(!c.snapshot(T).stopped);
}

fn lambda_opts() -> CoordinatorOptions {
    CoordinatorOptions {
        restart_grace: Duration::ZERO,
        deadline_slack: Duration::from_secs(2),
        age_since_write: true,
        ..CoordinatorOptions::default()
    }
}

/// The state a coordinator would write now.
fn written(c: &mut Coordinator<u32>, now: Duration) -> PublishedState {
    c.handle_timeout(now);
    let state = drain(c)
        .into_iter()
        .find_map(|t| match t {
            Transmit::WriteState { state, .. } => Some(*state),
            _ => None,
        })
        .expect("a write is due");
    c.handle_state_written(c.version);
    state
}

#[test]
fn a_quorum_release_survives_coordinators_rebuilt_for_every_batch() {
    let q = cfg(3, None).with_quorum(2, Duration::from_secs(1)).unwrap();
    // One invocation counts two of three and publishes the quorum's age.
    let mut a = Coordinator::new(q.clone(), "a", lambda_opts(), None);
    a.handle_message(1, &checkin(0, "0", "s0", 0), T);
    a.handle_message(2, &checkin(0, "1", "s1", 0), T);
    let st = written(&mut a, T);
    assert_eq!(st.open.as_ref().unwrap().quorum_age_ms, Some(0), "{st:?}");
    assert!(notifies(&drain(&mut a)).is_empty());
    // Ticks: too early (grace 1 s + slack 2 s), then due.
    let mut b = Coordinator::new(q.clone(), "b", lambda_opts(), Some(&st));
    b.handle_timeout(T + Duration::from_secs(2));
    assert!(notifies(&drain(&mut b)).is_empty());
    let mut c = Coordinator::new(q, "c", lambda_opts(), Some(&st));
    // A quorum release's notice goes once the state recording it is
    // durable.
    written(&mut c, T + Duration::from_millis(3_100));
    let t = drain(&mut c);
    let body = t
        .iter()
        .find_map(|t| match t {
            Transmit::Notify { body, .. } => Some(body.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no release: {t:?}"));
    match Message::decode(&body).unwrap() {
        Message::Release { without, .. } => assert_eq!(without, vec!["2".to_owned()]),
        other => panic!("{other:?}"),
    }
    assert!(!c.roll().expects(2, 1), "dropped");
}

fn checkin_with(g: u64, m: &str, leave: bool, data: Option<&str>) -> String {
    Message::Checkin {
        barrier: "b".into(),
        instance: "i".into(),
        generation: g,
        member: m.into(),
        session: format!("s{m}"),
        attempt: 0,
        leave,
        data: data.map(str::to_owned),
    }
    .encode()
}

fn join(member: Option<&str>, session: &str) -> String {
    Message::Join {
        barrier: "b".into(),
        instance: "i".into(),
        member: member.map(str::to_owned),
        session: session.into(),
    }
    .encode()
}

/// A release notice's `without` and `data`.
type ReleaseFields = (Vec<String>, Option<BTreeMap<String, String>>);

fn release_of(t: &[Transmit<u32>]) -> Option<ReleaseFields> {
    t.iter().find_map(|t| match t {
        Transmit::Notify { body, .. } => match Message::decode(body).unwrap() {
            Message::Release { without, data, .. } => Some((without, data)),
            _ => None,
        },
        _ => None,
    })
}

fn deleted(t: &[Transmit<u32>]) -> Vec<u32> {
    t.iter()
        .flat_map(|t| match t {
            Transmit::Delete(v) => v.clone(),
            _ => vec![],
        })
        .collect()
}

#[test]
fn data_stays_in_the_queue_until_the_release_and_a_successor_waits_for_it() {
    let mut a = Coordinator::new(cfg(2, None), "a", CoordinatorOptions::default(), None);
    a.handle_message(1, &checkin_with(0, "0", false, Some("zero")), T);
    // Published (pinned): a plain check-in would be deleted after this
    // write; one that carries data is kept.
    let st = written(&mut a, T);
    assert!(deleted(&drain(&mut a)).is_empty());
    assert!(st.open.as_ref().unwrap().data.as_ref().unwrap().contains(0));
    // A successor from that state: member 1 arrives, but 0's data is not
    // here yet (its check-in comes back after the visibility timeout).
    let mut b = Coordinator::new(cfg(2, None), "b", CoordinatorOptions::default(), Some(&st));
    b.handle_message(2, &checkin_with(0, "1", false, Some("one")), T);
    assert!(
        release_of(&drain(&mut b)).is_none(),
        "released without 0's data"
    );
    b.handle_message(3, &checkin_with(0, "0", false, Some("zero")), T);
    let (without, data) = release_of(&drain(&mut b)).expect("released");
    assert!(without.is_empty());
    let data = data.unwrap();
    assert_eq!(data["0"], "zero");
    assert_eq!(data["1"], "one");
    // Both check-ins go once the release is durable.
    written(&mut b, T + Duration::from_secs(1));
    let mut gone = deleted(&drain(&mut b));
    gone.sort();
    assert_eq!(gone, vec![2, 3]);
}

/// The check-in that carries a published arrival's data is its only copy:
/// a successor keeps it also when it comes back under a new receipt handle
/// (its visibility lapsed while the successor held it, in a slow step).
/// Deleted as a copy that adds nothing, the data would be gone for the
/// next successor, which would wait for it for ever.
#[test]
fn a_successor_keeps_a_published_arrivals_data_when_its_check_in_comes_back() {
    let mut a = Coordinator::new(cfg(2, None), "a", CoordinatorOptions::default(), None);
    a.handle_message(1, &checkin_with(0, "0", false, Some("zero")), T);
    let st = written(&mut a, T);
    let mut b = Coordinator::new(cfg(2, None), "b", CoordinatorOptions::default(), Some(&st));
    b.handle_message(2, &checkin_with(0, "0", false, Some("zero")), T);
    let later = T + Duration::from_secs(6);
    b.handle_message(3, &checkin_with(0, "0", false, Some("zero")), later);
    assert!(
        deleted(&drain(&mut b)).is_empty(),
        "the data's message deleted"
    );
    assert_eq!(b.held(), 2);
    // `b` dies before the release: its successor finds the message.
    let mut c = Coordinator::new(cfg(2, None), "c", CoordinatorOptions::default(), Some(&st));
    c.handle_message(4, &checkin_with(0, "0", false, Some("zero")), later);
    c.handle_message(5, &checkin_with(0, "1", false, Some("one")), later);
    let (_, data) = release_of(&drain(&mut c)).expect("released");
    assert_eq!(data.unwrap()["0"], "zero");
}

#[test]
fn a_leaver_counts_once_and_a_joiner_from_the_first_unopened_generation() {
    let o = CoordinatorOptions {
        restart_grace: Duration::ZERO,
        ..Default::default()
    };
    let mut c = Coordinator::new(cfg(3, None), "c", o, None);
    c.handle_message(1, &checkin_with(0, "0", false, None), T);
    c.handle_message(2, &checkin_with(0, "1", false, None), T);
    c.handle_message(3, &checkin_with(0, "2", true, None), T);
    assert_eq!(notifies(&drain(&mut c)), vec![0]);
    // 0 already arrived at 1: a join now is expected from 2.
    c.handle_message(4, &checkin_with(1, "0", false, None), T);
    c.handle_message(5, &join(None, "j"), T);
    assert_eq!(c.roll().join_of("j"), Some(Some(3)));
    assert_eq!(c.roll().span(3).from, 2);
    // Duplicate join: nothing new.
    c.handle_message(6, &join(None, "j"), T);
    assert_eq!(c.roll().len(), 4);
    // 2 left: its check-in at 1 counts for nothing; 1 completes phase 1.
    c.handle_message(7, &checkin_with(1, "2", false, None), T);
    assert!(notifies(&drain(&mut c)).is_empty());
    c.handle_message(8, &checkin_with(1, "1", false, None), T);
    assert_eq!(notifies(&drain(&mut c)), vec![1]);
    // Phase 2 waits for the joiner.
    c.handle_message(9, &checkin_with(2, "0", false, None), T);
    c.handle_message(10, &checkin_with(2, "1", false, None), T);
    assert!(notifies(&drain(&mut c)).is_empty());
    c.handle_message(11, &checkin_with(2, "3", false, None), T);
    assert_eq!(notifies(&drain(&mut c)), vec![2]);
}

#[test]
fn a_leaver_joins_again_only_once_its_last_generation_is_released() {
    // Joins wait for the restart grace: none here.
    let opts = CoordinatorOptions {
        restart_grace: Duration::ZERO,
        ..CoordinatorOptions::default()
    };
    let mut c = Coordinator::new(cfg(3, None), "c", opts, None);
    c.handle_message(1, &checkin_with(0, "0", true, Some("zero")), T);
    // 0 left at 0, which is still open: it is expected there (its arrival
    // and its data count), so it cannot come back yet.
    c.handle_message(2, &join(Some("0"), "j1"), T);
    assert_eq!(c.roll().join_of("j1"), Some(None), "refused");
    assert!(c.roll().expects(0, 0));
    c.handle_message(3, &checkin_with(0, "1", false, Some("one")), T);
    c.handle_message(4, &checkin_with(0, "2", false, Some("two")), T);
    let (without, data) = release_of(&drain(&mut c)).expect("released");
    assert!(without.is_empty());
    let data = data.unwrap();
    assert_eq!(data.get("0").map(String::as_str), Some("zero"));
    assert_eq!(data.len(), 3);
    // Once 0 is released, it may come back.
    c.handle_message(5, &join(Some("0"), "j2"), T);
    assert_eq!(c.roll().join_of("j2"), Some(Some(0)));
    assert!(c.roll().expects(0, 1));
}

#[test]
fn a_quorum_waits_for_its_grace_and_drops_the_missing() {
    let q = cfg(3, None)
        .with_quorum(2, Duration::from_secs(10))
        .unwrap();
    let mut c = Coordinator::new(q, "c", CoordinatorOptions::default(), None);
    c.handle_message(1, &checkin_with(0, "0", false, None), T);
    c.handle_message(2, &checkin_with(0, "1", false, None), T);
    written(&mut c, T + Duration::from_secs(9));
    assert!(release_of(&drain(&mut c)).is_none(), "before the grace");
    assert_eq!(c.poll_timeout(), Some(T + Duration::from_secs(10)));
    let st = written(&mut c, T + Duration::from_secs(10));
    assert!(st.is_released(0), "recorded before it is announced");
    let (without, _) = release_of(&drain(&mut c)).expect("released");
    assert_eq!(without, vec!["2".to_owned()]);
    // Phase 1 expects 0 and 1 only: released when both arrive.
    c.handle_message(3, &checkin_with(1, "0", false, None), T);
    c.handle_message(4, &checkin_with(1, "2", false, None), T);
    assert!(notifies(&drain(&mut c)).is_empty());
    c.handle_message(5, &checkin_with(1, "1", false, None), T);
    let (without, _) = release_of(&drain(&mut c)).expect("released");
    assert!(without.is_empty());
}

#[test]
fn a_quorum_counts_no_member_an_earlier_release_dropped() {
    let q = cfg(3, None).with_quorum(1, Duration::ZERO).unwrap();
    let mut c = Coordinator::new(q, "c", CoordinatorOptions::default(), None);
    // 0 at phase 0, 1 already at phase 1 (phase numbers with gaps): each
    // generation has its quorum of 1.
    c.handle_message(1, &checkin_with(0, "0", false, None), T);
    c.handle_message(2, &checkin_with(1, "1", false, None), T);
    drain(&mut c);
    // Once the restart grace has passed, 0 is released without 1 and 2,
    // who are dropped: phase 1 then expects 0 alone, who has not arrived
    // there, so it is not released (with nobody).
    c.handle_timeout(T + Duration::from_secs(5));
    assert!(c.is_released(0));
    assert!(!c.is_released(1), "released with none of its members");
    c.handle_timeout(T + Duration::from_secs(60));
    assert!(!c.is_released(1), "released with none of its members");
    c.handle_message(
        3,
        &checkin_with(1, "0", false, None),
        T + Duration::from_secs(61),
    );
    assert!(c.is_released(1));
}

/// The largest state a barrier whose membership changes can publish still
/// fits in the check-in queue's tags: every position arrived, half with
/// data, members gone, leaves and joins pending, the joins remembered.
#[test]
fn the_largest_elastic_state_fits_in_the_tags() {
    use crate::roll::{JOINS_KEPT, MAX_ELASTIC};
    let base = MAX_ELASTIC - JOINS_KEPT;
    let o = CoordinatorOptions {
        restart_grace: Duration::ZERO,
        ..Default::default()
    };
    let mut c = Coordinator::new(cfg(base, None), "c", o, None);
    // Members gone below the frontier, and spans pending above it.
    for i in 0..40 {
        c.handle_message(i, &checkin_with(0, &i.to_string(), true, None), T);
    }
    for i in 40..base as u32 {
        c.handle_message(i, &checkin_with(0, &i.to_string(), false, None), T);
    }
    assert!(c.is_released(0));
    for k in 0..JOINS_KEPT {
        c.handle_message(
            100_000 + k as u32,
            &join(None, &format!("session-{k:016x}")),
            T,
        );
    }
    assert_eq!(c.roll().len(), MAX_ELASTIC);
    // Phase 1: everyone arrives with data, some leaving, except the last.
    for i in 40..MAX_ELASTIC - 1 {
        let leave = i % 500 == 0;
        let data = (i % 2 == 0).then_some("d");
        c.handle_message(
            200_000 + i as u32,
            &checkin_with(1, &i.to_string(), leave, data),
            T,
        );
    }
    let st = c.snapshot(T);
    let json = st.to_json();
    eprintln!("largest elastic state: {} bytes", json.len());
    assert!(
        crate::tags::encode(crate::tags::STATE_PREFIX, &json).is_ok(),
        "{} bytes: {json}",
        json.len()
    );
}

/// A predecessor released 0 and 1 (member 1 left at 0) and died before it
/// published either release: its notice of 1 is out, the check-ins it held
/// are hidden for the visibility timeout. A join its successor counted
/// before they are back would be expected from 1, a generation already
/// released without it (the joining member would pass it by that notice).
/// The successor counts joins only once its restart grace has passed.
#[test]
fn a_successor_counts_joins_only_after_its_restart_grace() {
    let mut a = Coordinator::new(cfg(2, None), "a", CoordinatorOptions::default(), None);
    a.handle_message(1, &checkin_with(0, "0", false, None), T);
    let st = written(&mut a, T);
    a.handle_message(2, &checkin_with(0, "1", true, None), T);
    a.handle_message(3, &checkin_with(1, "0", false, None), T);
    assert_eq!(notifies(&drain(&mut a)), vec![0, 1]);
    // `a` dies before its next write. Its successor starts from `st`.
    let mut b = Coordinator::new(cfg(2, None), "b", CoordinatorOptions::default(), Some(&st));
    b.handle_message(4, &join(None, "j"), T);
    assert_eq!(b.roll().join_of("j"), None, "counted before the grace");
    let grace = CoordinatorOptions::default().restart_grace;
    assert!(b.poll_timeout().is_some_and(|t| t <= T + grace));
    assert_eq!(b.held(), 1);
    // The predecessor's check-ins come back.
    b.handle_message(5, &checkin_with(1, "0", false, None), T);
    b.handle_message(6, &checkin_with(0, "0", false, None), T);
    b.handle_message(7, &checkin_with(0, "1", true, None), T);
    let mut released = notifies(&drain(&mut b));
    released.sort();
    assert_eq!(released, vec![0, 1]);
    b.handle_timeout(T + grace);
    assert_eq!(b.roll().join_of("j"), Some(Some(2)));
    assert_eq!(b.roll().span(2).from, 2, "expected after what was released");
    // The join goes once a state recording it is durable.
    let t = drain(&mut b);
    let version = t
        .iter()
        .find_map(|t| match t {
            Transmit::WriteState { version, state } => {
                assert_eq!(
                    state.roll(&Membership::Count(2)).join_of("j"),
                    Some(Some(2))
                );
                Some(*version)
            }
            _ => None,
        })
        .expect("a write");
    b.handle_state_written(version);
    assert!(deleted(&drain(&mut b)).contains(&4));
}

/// The notice a leaving member may still wait for stays also when a
/// successor releases the next generation again: the published roll says
/// where the leaver's span ended while the frontier is there.
#[test]
fn a_successor_keeps_the_notice_a_leaving_member_may_still_wait_for() {
    let mut a = Coordinator::new(cfg(2, None), "a", CoordinatorOptions::default(), None);
    a.handle_message(1, &checkin_with(0, "0", false, Some("zero")), T);
    a.handle_message(2, &leave_checkin(0, "1", Some("bye")), T);
    assert_eq!(notifies(&drain(&mut a)), vec![0]);
    let st = written(&mut a, T);
    assert_eq!(st.released_below, 1);
    // `a` releases 1 and dies before it publishes it; its successor
    // releases 1 again.
    let mut b = Coordinator::new(cfg(2, None), "b", CoordinatorOptions::default(), Some(&st));
    b.handle_message(3, &checkin_with(1, "0", false, None), T);
    let t = drain(&mut b);
    assert_eq!(notifies(&t), vec![1]);
    let sweeps: Vec<(u64, u64)> = t
        .iter()
        .filter_map(|t| match t {
            Transmit::Sweep { generation, below } => Some((*generation, *below)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sweeps,
        vec![(2, 0)],
        "generation 0's notice stays for the member that left"
    );
}

/// A coordinator may rest (give the lease back) only once everything it
/// decided is published and it holds nothing; heartbeats are no decision.
#[test]
fn it_is_settled_once_what_it_decided_is_published_and_it_holds_nothing() {
    let mut c = Coordinator::new(cfg(2, None), "c", CoordinatorOptions::default(), None);
    assert!(!c.is_settled(), "nothing written yet");
    c.handle_message(1, &checkin(0, "0", "s0", 0), T);
    drain(&mut c);
    assert!(!c.is_settled(), "an arrival not published");
    written(&mut c, T);
    assert!(
        !c.is_settled(),
        "the counted check-in's delete not carried out"
    );
    assert_eq!(deleted(&drain(&mut c)), vec![1]);
    assert!(c.is_settled());
    // Only a heartbeat is due (no deadline, no quorum, no join).
    assert_eq!(c.poll_decision_timeout(), None);
    assert!(c.poll_timeout().is_some());
    c.handle_timeout(c.poll_timeout().unwrap());
    assert!(!c.is_settled(), "a write under way");
}

/// A deadline is a decision: it shows among the decision timers; after a
/// resume it waits for the grace again.
#[test]
fn a_resumed_coordinator_breaks_nothing_by_deadline_before_its_grace() {
    let d = Duration::from_secs(30);
    let grace = Duration::from_secs(5);
    let mut c = Coordinator::new(cfg(2, Some(d)), "c", CoordinatorOptions::default(), None);
    c.handle_message(1, &checkin(0, "0", "s0", 0), T);
    written(&mut c, T);
    drain(&mut c);
    assert_eq!(c.poll_decision_timeout(), Some(T + d));
    // It rested, and resumes one second before the deadline: another
    // coordinator may have held member 1's check-in meanwhile.
    c.handle_resumed(T + d - Duration::from_secs(1), grace);
    assert_eq!(
        c.poll_decision_timeout(),
        Some(T + d - Duration::from_secs(1) + grace)
    );
    c.handle_timeout(T + d);
    assert!(c.broken().is_none(), "broken within the grace");
    c.handle_message(2, &checkin(0, "1", "s1", 0), T + d);
    assert_eq!(notifies(&drain(&mut c)), vec![0]);
}

/// A join after a resume waits for the grace, as one to a successor does.
#[test]
fn a_resumed_coordinator_counts_joins_after_its_grace() {
    let grace = Duration::from_secs(5);
    let mut c = Coordinator::new(cfg(2, None), "c", CoordinatorOptions::default(), None);
    c.handle_message(1, &checkin(0, "0", "s0", 0), T);
    c.handle_message(2, &checkin(0, "1", "s1", 0), T);
    written(&mut c, T);
    drain(&mut c);
    let later = T + Duration::from_secs(600);
    c.handle_resumed(later, grace);
    c.handle_message(3, &join(None, "j"), later);
    assert_eq!(c.roll().join_of("j"), None, "counted within the grace");
    assert_eq!(c.poll_decision_timeout(), Some(later + grace));
    c.handle_timeout(later + grace);
    assert_eq!(c.roll().join_of("j"), Some(Some(2)));
}
