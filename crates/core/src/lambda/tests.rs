//! Unit tests of the Lambda round.

use super::*;
use crate::config::Membership;
use crate::wire::Message;

const T: Duration = Duration::from_secs(1_700_000_000);
const MS: Duration = Duration::from_millis(1);

fn cfg(n: usize, deadline: Option<Duration>) -> BarrierConfig {
    BarrierConfig::new("b", "i", Membership::new(n, None).unwrap(), deadline, false).unwrap()
}

fn checkin(g: u64, m: &str) -> String {
    Message::Checkin {
        barrier: "b".into(),
        instance: "i".into(),
        generation: g,
        member: m.into(),
        session: format!("s{m}"),
        attempt: 0,
        leave: false,
        data: None,
    }
    .encode()
}

fn records(bodies: &[(u32, String)]) -> Vec<Record<u32>> {
    bodies
        .iter()
        .map(|(t, b)| Record::new(*t, b.clone()))
        .collect()
}

fn round(n: usize, bodies: &[(u32, String)]) -> LambdaRound<u32> {
    LambdaRound::new(
        cfg(n, None),
        "inv",
        LambdaOptions::default(),
        records(bodies),
    )
}

fn drain(r: &mut LambdaRound<u32>) -> Vec<Transmit<u32>> {
    std::iter::from_fn(|| r.poll_transmit()).collect()
}

fn events(r: &mut LambdaRound<u32>) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

fn notified(t: &[Transmit<u32>]) -> Vec<u64> {
    t.iter()
        .filter_map(|t| match t {
            Transmit::Notify { generation, .. } => Some(*generation),
            _ => None,
        })
        .collect()
}

/// The state the round asks to write, which must be its last transmit.
fn write_of(t: &[Transmit<u32>]) -> PublishedState {
    match t.last() {
        Some(Transmit::WriteState { state }) => (**state).clone(),
        _ => panic!("no state write: {t:?}"),
    }
}

/// The state another coordinator (`by`) publishes after counting `members`
/// at generation 0, from nothing.
fn written_by(by: &str, n: usize, members: &[&str]) -> PublishedState {
    let mut c: Coordinator<u32> = Coordinator::new(
        cfg(n, None),
        by,
        LambdaOptions::default().coordinator_options(),
        None,
    );
    for (i, m) in members.iter().enumerate() {
        c.handle_message(i as u32, &checkin(0, m), T);
    }
    c.handle_timeout(T);
    std::iter::from_fn(|| c.poll_transmit())
        .find_map(|t| match t {
            coordinator::Transmit::WriteState { state, .. } => Some(*state),
            _ => None,
        })
        .expect("a write")
}

#[test]
fn a_batch_that_completes_a_generation_notifies_after_its_write_and_lets_every_record_go() {
    let mut r = round(2, &[(1, checkin(0, "0")), (2, checkin(0, "1"))]);
    assert_eq!(drain(&mut r), vec![Transmit::ReadState]);
    r.handle_state_read(None, None, T);
    let t = drain(&mut r);
    // The notice waits for the write that records the release.
    assert!(notified(&t).is_empty(), "{t:?}");
    let mine = write_of(&t);
    assert_eq!(mine.released_below, 1);
    assert_eq!(mine.coordinator, "inv");
    assert_eq!(r.poll_timeout(), None, "nothing to wait for during a write");
    r.handle_state_written(T + 40 * MS);
    assert_eq!(notified(&drain(&mut r)), vec![0]);
    // The check comes VERIFY_AFTER the write, not before.
    let check = T + 40 * MS + VERIFY_AFTER;
    assert_eq!(r.poll_timeout(), Some(check));
    r.handle_timeout(check - MS);
    assert!(drain(&mut r).is_empty());
    r.handle_timeout(check);
    assert_eq!(drain(&mut r), vec![Transmit::CheckState]);
    assert!(!r.is_finished());
    r.handle_check(Some(&mine));
    assert_eq!(
        r.ending(),
        Some(&Ending::Answered {
            failures: Vec::new()
        })
    );
    assert!(
        events(&mut r).contains(&Event::Coordinator(coordinator::Event::Released {
            generation: 0
        }))
    );
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn a_later_state_that_includes_the_write_lets_it_stand() {
    let mut r = round(3, &[(1, checkin(0, "0"))]);
    drain(&mut r);
    r.handle_state_read(None, None, T);
    let mine = write_of(&drain(&mut r));
    r.handle_state_written(T);
    r.handle_timeout(T + VERIFY_AFTER);
    drain(&mut r);
    // Another invocation wrote on top of this one's write: it counted one
    // more member, and still records this one's arrival.
    let mut later = mine.clone();
    later.coordinator = "other".into();
    later.term += 1;
    later.open.as_mut().unwrap().arrived.insert(1);
    r.handle_check(Some(&later));
    // The check-in is recorded by a durable write: it may go.
    assert_eq!(
        r.ending(),
        Some(&Ending::Answered {
            failures: Vec::new()
        })
    );
}

#[test]
fn a_refused_write_starts_a_new_round_from_the_newer_state() {
    let mut r = round(2, &[(1, checkin(0, "0"))]);
    drain(&mut r);
    r.handle_state_read(None, None, T);
    write_of(&drain(&mut r));
    // Another invocation counted member 1 and wrote first.
    let other = written_by("other", 2, &["1"]);
    r.handle_write_refused(&other, T + MS);
    assert_eq!(drain(&mut r), vec![Transmit::ReadState]);
    assert!(events(&mut r).contains(&Event::Lost {
        round: 0,
        erased: false,
        by: Some("other".into())
    }));
    assert_eq!(r.round(), 1);
    // The new round starts from it, as a new coordinator, and completes
    // the generation.
    r.handle_state_read(None, Some(&other), T + 2 * MS);
    let t = drain(&mut r);
    let mine = write_of(&t);
    assert!(notified(&t).is_empty());
    assert_eq!(mine.coordinator, "inv.1");
    assert_eq!(mine.term, other.term + 1);
    assert_eq!(mine.released_below, 1);
    r.handle_state_written(T + 3 * MS);
    assert_eq!(notified(&drain(&mut r)), vec![0]);
    r.handle_timeout(T + 3 * MS + VERIFY_AFTER);
    drain(&mut r);
    r.handle_check(Some(&mine));
    assert_eq!(r.ending().and_then(Ending::failures), Some(&[][..]));
}

#[test]
fn an_erased_write_is_lost_and_the_batch_handed_back_after_max_races() {
    let mut r = round(2, &[(1, checkin(0, "0")), (2, checkin(0, "0"))]);
    let mut now = T;
    for lost in 0..MAX_RACES {
        assert_eq!(drain(&mut r), vec![Transmit::ReadState], "round {lost}");
        r.handle_state_read(None, None, now);
        write_of(&drain(&mut r));
        r.handle_state_written(now);
        now += VERIFY_AFTER;
        r.handle_timeout(now);
        assert_eq!(drain(&mut r), vec![Transmit::CheckState]);
        // Another invocation's write, made from the state before this
        // one's, erased it.
        let other = written_by("other", 2, &[]);
        r.handle_check(Some(&other));
        assert!(events(&mut r).contains(&Event::Lost {
            round: lost,
            erased: true,
            by: Some("other".into())
        }));
    }
    assert!(drain(&mut r).is_empty());
    // Nothing it let go in a lost round may go: its write is gone.
    assert_eq!(
        r.ending(),
        Some(&Ending::GaveUp {
            failures: vec![1, 2]
        })
    );
}

#[test]
fn a_failed_write_sends_its_notices_only_if_it_took_effect() {
    for landed in [true, false] {
        let mut r = round(2, &[(1, checkin(0, "0")), (2, checkin(0, "1"))]);
        drain(&mut r);
        r.handle_state_read(None, None, T);
        let mine = write_of(&drain(&mut r));
        r.handle_write_failed();
        assert_eq!(drain(&mut r), vec![Transmit::CheckState]);
        r.handle_check(landed.then_some(&mine));
        let expected: Vec<u64> = if landed { vec![0] } else { vec![] };
        assert_eq!(notified(&drain(&mut r)), expected);
        assert_eq!(r.ending(), Some(&Ending::WriteFailed));
        assert_eq!(r.ending().and_then(Ending::failures), None);
    }
}

#[test]
fn a_failed_write_that_took_effect_sends_a_quorum_release_notice_too() {
    let grace = Duration::from_secs(10);
    let quorum_cfg = || cfg(3, None).with_quorum(2, grace).unwrap();
    let opts = LambdaOptions::default();
    // Two of three arrived; the quorum's grace (and the queue's
    // visibility, as for a deadline) has passed by the tick.
    let mut c: Coordinator<u32> =
        Coordinator::new(quorum_cfg(), "old", opts.coordinator_options(), None);
    c.handle_message(0, &checkin(0, "0"), T);
    c.handle_message(1, &checkin(0, "1"), T);
    c.handle_timeout(T);
    let before = std::iter::from_fn(|| c.poll_transmit())
        .find_map(|t| match t {
            coordinator::Transmit::WriteState { state, .. } => Some(*state),
            _ => None,
        })
        .unwrap();
    for landed in [true, false] {
        let mut r: LambdaRound<u32> = LambdaRound::tick(quorum_cfg(), "tick", opts.clone());
        drain(&mut r);
        r.handle_state_read(None, Some(&before), T + grace + opts.queue_visibility);
        let mine = write_of(&drain(&mut r));
        assert_eq!(mine.released_below, 1, "a quorum release");
        r.handle_write_failed();
        drain(&mut r);
        r.handle_check(landed.then_some(&mine));
        let t = drain(&mut r);
        let expected: Vec<u64> = if landed { vec![0] } else { vec![] };
        assert_eq!(notified(&t), expected);
        if landed {
            assert!(
                matches!(&t[0], Transmit::Notify { body, .. } if body.contains("\"without\":[\"2\"]")),
                "{t:?}"
            );
        }
        assert_eq!(r.ending(), Some(&Ending::WriteFailed));
    }
}

#[test]
fn a_record_is_dead_lettered_once_whatever_the_round() {
    let mut r = round(2, &[(1, "junk".into()), (2, checkin(0, "0"))]);
    drain(&mut r);
    r.handle_state_read(None, None, T);
    let t = drain(&mut r);
    assert!(
        matches!(
            &t[..],
            [
                Transmit::DeadLetter { token: 1, .. },
                Transmit::WriteState { .. }
            ]
        ),
        "{t:?}"
    );
    r.handle_write_refused(&written_by("other", 2, &["1"]), T);
    drain(&mut r);
    r.handle_state_read(None, Some(&written_by("other", 2, &["1"])), T);
    let t = drain(&mut r);
    assert!(
        !t.iter().any(|t| matches!(t, Transmit::DeadLetter { .. })),
        "{t:?}"
    );
    let mine = write_of(&t);
    r.handle_state_written(T);
    drain(&mut r);
    r.handle_timeout(T + VERIFY_AFTER);
    drain(&mut r);
    r.handle_check(Some(&mine));
    assert_eq!(r.ending().and_then(Ending::failures), Some(&[][..]));
}

#[test]
fn a_round_that_gives_up_keeps_no_dead_letter() {
    let mut r = round(2, &[(1, "junk".into()), (2, checkin(0, "0"))]);
    for _ in 0..MAX_RACES {
        drain(&mut r);
        r.handle_state_read(None, None, T);
        drain(&mut r);
        r.handle_write_refused(&written_by("other", 2, &[]), T);
    }
    assert_eq!(r.ending(), Some(&Ending::GaveUp { failures: vec![2] }));
}

#[test]
fn a_tick_publishes_a_heartbeat_and_fires_the_deadline() {
    let opts = LambdaOptions::default();
    let deadline = Duration::from_secs(5);
    // A heartbeat: a new coordinator writes at once.
    let mut r: LambdaRound<u32> = LambdaRound::tick(cfg(2, None), "tick", opts.clone());
    drain(&mut r);
    let before = written_by("old", 2, &["0"]);
    r.handle_state_read(None, Some(&before), T + Duration::from_secs(1));
    let beat = write_of(&drain(&mut r));
    assert_eq!(beat.coordinator, "tick");
    assert!(beat.heartbeat_ms > before.heartbeat_ms);
    assert!(beat.includes(&before));
    // A deadline breaks the generation once it and the queue's visibility
    // passed since it opened (by the wall clocks, across invocations).
    let slack = opts.queue_visibility;
    for (after, breaks) in [(deadline + slack - MS, false), (deadline + slack, true)] {
        let mut c: Coordinator<u32> = Coordinator::new(
            cfg(2, Some(deadline)),
            "old",
            opts.coordinator_options(),
            None,
        );
        c.handle_message(0, &checkin(0, "0"), T);
        c.handle_timeout(T);
        let before = std::iter::from_fn(|| c.poll_transmit())
            .find_map(|t| match t {
                coordinator::Transmit::WriteState { state, .. } => Some(*state),
                _ => None,
            })
            .unwrap();
        let mut r: LambdaRound<u32> =
            LambdaRound::tick(cfg(2, Some(deadline)), "tick", opts.clone());
        drain(&mut r);
        r.handle_state_read(None, Some(&before), T + after);
        let t = drain(&mut r);
        let st = write_of(&t);
        assert_eq!(st.broken.is_some(), breaks, "{after:?}");
        r.handle_state_written(T + after);
        // The broken notice waits for the write that records the break.
        assert_eq!(
            notified(&drain(&mut r)),
            if breaks { vec![0] } else { vec![] }
        );
    }
}

#[test]
fn the_configuration_of_the_state_record_is_the_round_coordinators() {
    let mut r = round(2, &[]);
    drain(&mut r);
    let mut theirs = cfg(2, None);
    theirs.deadline = Some(Duration::from_secs(9));
    r.handle_state_read(Some(theirs.clone()), None, T);
    assert_eq!(r.coordinator().map(|c| c.config()), Some(&theirs));
    assert!(r.write_guard().is_some());
}

#[test]
fn answers_out_of_turn_change_nothing() {
    let mut r = round(2, &[(1, checkin(0, "0"))]);
    drain(&mut r);
    r.handle_state_written(T);
    r.handle_write_failed();
    r.handle_check(None);
    r.handle_timeout(T + Duration::from_secs(10));
    assert!(drain(&mut r).is_empty());
    assert!(!r.is_finished());
    r.handle_state_read(None, None, T);
    assert!(matches!(
        drain(&mut r).last(),
        Some(Transmit::WriteState { .. })
    ));
    // A second read answer while writing is ignored too.
    r.handle_state_read(None, None, T);
    assert!(drain(&mut r).is_empty());
}

#[test]
fn failures_keep_what_is_not_done_and_later_records_of_a_fifo_group() {
    let rec = |t: u32, g: &str| Record {
        token: t,
        body: String::new(),
        group: Some(g.into()),
    };
    let rs = [rec(1, "g1"), rec(2, "g1"), rec(3, "g2"), rec(4, "g2")];
    let done: BTreeSet<u32> = [2, 3, 4].into();
    let none = BTreeSet::new();
    assert_eq!(failures(&rs, &done, &none, false), vec![1]);
    // FIFO: 2 follows the kept 1 in its group, so it is kept too.
    assert_eq!(failures(&rs, &done, &none, true), vec![1, 2]);
    let dead: BTreeSet<u32> = [1].into();
    assert!(failures(&rs, &done, &dead, true).is_empty());
}

#[test]
fn lambda_options_make_a_coordinator_for_one_invocation() {
    let opts = LambdaOptions {
        heartbeat: Duration::from_secs(30),
        queue_visibility: Duration::from_secs(45),
        verify: true,
    };
    let c = opts.coordinator_options();
    assert_eq!(c.heartbeat, opts.heartbeat);
    assert_eq!(c.deadline_slack, opts.queue_visibility);
    assert_eq!(c.restart_grace, Duration::ZERO);
    assert!(c.age_since_write);
    assert!(!c.holds_data);
}

#[test]
fn a_round_under_the_lease_stands_at_its_write_without_a_check() {
    let opts = LambdaOptions {
        verify: false,
        ..LambdaOptions::default()
    };
    let bodies = [(1, checkin(0, "0")), (2, checkin(0, "1"))];
    let mut r = LambdaRound::new(cfg(2, None), "inv", opts, records(&bodies));
    assert_eq!(drain(&mut r), vec![Transmit::ReadState]);
    r.handle_state_read(None, None, T);
    let mine = write_of(&drain(&mut r));
    assert_eq!(mine.released_below, 1);
    r.handle_state_written(T + 40 * MS);
    let t = drain(&mut r);
    assert_eq!(notified(&t), vec![0]);
    assert!(!t.contains(&Transmit::CheckState), "{t:?}");
    assert_eq!(
        r.ending(),
        Some(&Ending::Answered {
            failures: Vec::new()
        })
    );
}
