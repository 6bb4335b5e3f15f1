//! Unit tests of the coordinator machine: counting and releasing here;
//! successors, standbys and rebuilt coordinators in `takeover`; leaves,
//! joins, quorums and gathered data in `membership`; resting in `rest`.

use super::*;
use crate::config::Membership;

mod membership;
mod rest;
mod takeover;

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
