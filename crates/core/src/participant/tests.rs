//! Unit tests of the participant machine.

use super::*;
use crate::config::Membership;
use crate::state::{MemberSet, OpenGeneration};

fn cfg() -> BarrierConfig {
    BarrierConfig::new("b", "i", Membership::new(3, None).unwrap(), None, false).unwrap()
}

fn notice(g: u64) -> String {
    Message::Release {
        barrier: "b".into(),
        instance: "i".into(),
        generation: g,
        without: vec![],
        data: None,
    }
    .encode()
}

const T: Duration = Duration::from_secs(1_000);

#[test]
fn arrive_check_in_and_release() {
    let mut p = Participant::new(&cfg(), "1", "s", ParticipantOptions::default()).unwrap();
    assert!(Participant::new(&cfg(), "7", "s", ParticipantOptions::default()).is_err());
    p.arrive(4, None, T).unwrap();
    let Some(Transmit::Send(body)) = p.poll_transmit() else {
        panic!("no check-in");
    };
    assert!(matches!(
        Message::decode(&body).unwrap(),
        Message::Checkin {
            generation: 4,
            attempt: 0,
            ..
        }
    ));
    assert_eq!(
        p.arrive(5, None, T),
        Err(ParticipantError::AlreadyWaiting(4))
    );
    assert_eq!(p.handle_notice(&notice(3)), Notice::Passed);
    assert!(Notice::Passed.deletable());
    assert!(matches!(p.handle_notice("junk"), Notice::Foreign(_)));
    assert!(p.handle_notice("junk").deletable());
    // A later generation's notice is somebody else's: kept, and the
    // state is read at once.
    assert_eq!(p.handle_notice(&notice(6)), Notice::Later);
    assert!(!Notice::Later.deletable());
    assert_eq!(p.poll_transmit(), Some(Transmit::QueryStatus));
    assert_eq!(p.handle_notice(&notice(4)), Notice::Accepted);
    assert_eq!(
        p.poll_event(),
        Some(Outcome::Released {
            generation: 4,
            data: Some(Default::default()),
            dropped: Some(vec![]),
        })
    );
    assert_eq!(p.waiting_at(), None);
}

/// A state written by coordinator `c` at `heartbeat_ms` (its clock),
/// with generation `g` open and `arrived` counted.
fn state(heartbeat_ms: u64, g: u64, arrived: &[usize], released_below: u64) -> PublishedState {
    let mut set = MemberSet::new(3);
    for i in arrived {
        set.insert(*i);
    }
    PublishedState {
        v: 1,
        coordinator: "c".into(),
        term: 0,
        heartbeat_ms,
        seq: 0,
        heartbeat_every_ms: 30_000,
        stopped: false,
        standbys: vec![],
        released_below,
        released_above: vec![],
        open: Some(OpenGeneration {
            generation: g,
            arrived: set,
            since_ms: 0,
            age_ms: Some(0),
            data: None,
            quorum_age_ms: None,
        }),
        broken: None,
        rejected: 0,
        roll: None,
    }
}

fn sends(p: &mut Participant) -> Vec<Message> {
    std::iter::from_fn(|| p.poll_transmit())
        .filter_map(|t| match t {
            Transmit::Send(body) => Some(Message::decode(&body).unwrap()),
            Transmit::QueryStatus => None,
        })
        .collect()
}

/// A member waiting for the release of the generation it leaves at,
/// whose notice it missed, passes on a state that shows it released,
/// although the frontier has moved past it and the published roll
/// keeps only that the member is gone.
#[test]
fn a_leaving_member_passes_its_last_generation_on_a_later_state() {
    let c = cfg();
    let mut p = Participant::new(&c, "2", "s", ParticipantOptions::default()).unwrap();
    let arrival = ArrivalExtras {
        leave: true,
        data: None,
    };
    p.arrive_with(0, None, arrival, T).unwrap();
    let mut roll = Roll::new(c.members.clone());
    roll.end(2, 1);
    // Long after: the published roll keeps only that the member is gone.
    let below = 2 + crate::roll::RECENT_ENDS;
    let mut st = state(1, below, &[0], below);
    st.roll = roll.to_state(below);
    assert!(
        !st.roll(&c.members).expects(2, 0),
        "the roll forgot since when"
    );
    p.handle_status(Some(&st), T);
    assert_eq!(
        p.poll_event(),
        Some(Outcome::Released {
            generation: 0,
            data: None,
            dropped: None,
        })
    );
    // On a quorum barrier the release may have gone on without it:
    // the member is dropped.
    let q = c.clone().with_quorum(2, Duration::ZERO).unwrap();
    let mut p = Participant::new(&q, "2", "s", ParticipantOptions::default()).unwrap();
    p.arrive_with(
        0,
        None,
        ArrivalExtras {
            leave: true,
            data: None,
        },
        T,
    )
    .unwrap();
    p.handle_status(Some(&st), T);
    assert!(matches!(p.poll_event(), Some(Outcome::Dropped { .. })));
}

#[test]
fn status_reads_decide_re_sends() {
    let opts = ParticipantOptions::default();
    let mut p = Participant::new(&cfg(), "1", "s", opts.clone()).unwrap();
    p.arrive(2, None, T).unwrap();
    p.poll_transmit();
    // Nothing is due before the status interval.
    assert_eq!(p.poll_timeout(), Some(T + opts.status_interval));
    assert_eq!(p.poll_deadline(), None, "no timer cuts a long poll short");
    let mut t = T + opts.status_interval;
    p.handle_timeout(t);
    assert_eq!(p.poll_transmit(), Some(Transmit::QueryStatus));
    // Counted: nothing to send.
    p.handle_status(Some(&state(1, 2, &[1], 2)), t);
    assert!(sends(&mut p).is_empty());
    // Not counted (lost check-in, or a coordinator lost it): again.
    t += opts.status_interval;
    p.handle_timeout(t);
    p.handle_status(Some(&state(2, 2, &[0], 2)), t);
    assert!(matches!(
        sends(&mut p)[..],
        [Message::Checkin {
            generation: 2,
            attempt: 1,
            ..
        }]
    ));
    assert_eq!(p.poll_event(), None, "still waiting");
    // Released, but no notice came (it expired, or a receive missed
    // it): the state is enough, nothing is sent.
    t += opts.status_interval;
    p.handle_timeout(t);
    p.handle_status(Some(&state(3, 3, &[], 3)), t);
    assert!(sends(&mut p).is_empty());
    assert_eq!(
        p.poll_event(),
        Some(Outcome::Released {
            generation: 2,
            data: None,
            dropped: None,
        })
    );
}

#[test]
fn a_timed_out_wait_whose_generation_was_released_passes() {
    let mut p = Participant::new(&cfg(), "1", "s", ParticipantOptions::default()).unwrap();
    p.arrive(2, Some(Duration::from_secs(3)), T).unwrap();
    p.poll_transmit();
    p.handle_timeout(T + Duration::from_secs(3));
    assert_eq!(p.poll_transmit(), Some(Transmit::QueryStatus));
    p.handle_status(Some(&state(1, 3, &[], 3)), T + Duration::from_secs(3));
    assert_eq!(
        p.poll_event(),
        Some(Outcome::Released {
            generation: 2,
            data: None,
            dropped: None,
        })
    );
}

#[test]
fn timeout_names_the_missing_from_the_published_state() {
    let mut p = Participant::new(&cfg(), "1", "s", ParticipantOptions::default()).unwrap();
    p.arrive(2, Some(Duration::from_secs(3)), T).unwrap();
    p.poll_transmit();
    assert_eq!(p.poll_deadline(), Some(T + Duration::from_secs(3)));
    p.handle_timeout(T + Duration::from_secs(3));
    assert_eq!(p.poll_transmit(), Some(Transmit::QueryStatus));
    let st = state(T.as_millis() as u64, 2, &[1], 2);
    p.handle_status(Some(&st), T + Duration::from_secs(3));
    assert_eq!(
        p.poll_event(),
        Some(Outcome::TimedOut {
            generation: 2,
            missing: Some(vec!["0".into(), "2".into()]),
            last_heartbeat_ms: Some(T.as_millis() as u64),
        })
    );
}

#[test]
fn no_state_at_all_is_a_silent_coordinator() {
    let opts = ParticipantOptions::default();
    let mut p = Participant::new(&cfg(), "0", "s", opts.clone()).unwrap();
    p.arrive(0, None, T).unwrap();
    p.poll_transmit();
    // Not before `silence_after`: a first read then (here, with a short
    // interval) finds nothing, and the wait goes on.
    let mut short = opts.clone();
    short.status_interval = opts.silence_after / 2;
    let mut q = Participant::new(&cfg(), "0", "s", short.clone()).unwrap();
    q.arrive(0, None, T).unwrap();
    q.poll_transmit();
    let early = T + short.status_interval;
    q.handle_timeout(early);
    q.handle_status(None, early);
    assert_eq!(q.poll_event(), None, "{early:?} is not yet silent");
    // The default first read (120 s) comes after `silence_after` (60 s):
    // no state at all by then is a silent coordinator.
    let first = T + opts.status_interval;
    assert!(first >= T + opts.silence_after);
    p.handle_timeout(first);
    p.handle_status(None, first);
    assert!(matches!(
        p.poll_event(),
        Some(Outcome::CoordinatorSilent { .. })
    ));
}

/// Liveness is judged on the participant's own clock: a heartbeat
/// written by a clock minutes ahead or behind changes nothing; a beat
/// that stops changing does, whatever the clocks say.
#[test]
fn skewed_clocks_change_nothing() {
    let opts = ParticipantOptions::default();
    let five_min = 300_000;
    let here = T.as_millis() as u64;
    for skew in [here - five_min, here + five_min, 1, u64::MAX / 2] {
        let mut p = Participant::new(&cfg(), "1", "s", opts.clone()).unwrap();
        p.arrive(2, None, T).unwrap();
        p.poll_transmit();
        let mut t = T + opts.status_interval;
        // A live coordinator: its beat changes between reads.
        for k in 0..5 {
            p.handle_timeout(t);
            p.handle_status(Some(&state(skew + k, 2, &[1], 2)), t);
            assert_eq!(p.poll_event(), None, "skew {skew}: live called silent");
            t += opts.status_interval;
        }
        // It dies after its last beat (read at t - interval): the same
        // beat again, a read later (longer than silence_after and twice
        // the promised 30 s), is silence.
        p.handle_timeout(t);
        p.handle_status(Some(&state(skew + 4, 2, &[1], 2)), t);
        assert!(
            matches!(p.poll_event(), Some(Outcome::CoordinatorSilent { .. })),
            "skew {skew}: a dead coordinator was not noticed"
        );
    }
}

#[test]
fn abort_ends_the_wait_and_sends_an_abort() {
    let mut p = Participant::new(&cfg(), "0", "s", ParticipantOptions::default()).unwrap();
    p.arrive(1, None, T).unwrap();
    p.poll_transmit();
    p.abort("disk full");
    let Some(Transmit::Send(body)) = p.poll_transmit() else {
        panic!("no abort sent");
    };
    assert!(matches!(
        Message::decode(&body).unwrap(),
        Message::Abort {
            generation: Some(1),
            ..
        }
    ));
    assert!(matches!(
        p.poll_event(),
        Some(Outcome::Broken { generation: 1, .. })
    ));
}

/// A member that missed its notice of generation 0 (released with it) and
/// that a quorum release of generation 1 dropped passes 0: the published
/// roll still says its span ended at 1.
#[test]
fn a_wait_that_missed_its_notice_is_not_taken_for_dropped_at_an_earlier_generation() {
    let q = cfg().with_quorum(2, Duration::ZERO).unwrap();
    let mut p = Participant::new(&q, "2", "s", ParticipantOptions::default()).unwrap();
    p.arrive(0, None, T).unwrap();
    let mut roll = Roll::new(q.members.clone());
    roll.end(2, 1); // dropped at 1
    let mut st = state(1, 2, &[0], 2);
    st.roll = roll.to_state(2);
    p.handle_status(Some(&st), T);
    assert_eq!(
        p.poll_event(),
        Some(Outcome::Released {
            generation: 0,
            data: None,
            dropped: None,
        })
    );
    // At 1 itself it was dropped.
    let mut p = Participant::new(&q, "2", "s2", ParticipantOptions::default()).unwrap();
    p.arrive(1, None, T).unwrap();
    p.handle_status(Some(&st), T);
    assert_eq!(
        p.poll_event(),
        Some(Outcome::Dropped {
            generation: 1,
            since: 1
        })
    );
}

#[test]
fn a_quorum_release_names_whom_it_dropped() {
    let mut p = Participant::new(&cfg(), "1", "s", ParticipantOptions::default()).unwrap();
    p.arrive(0, None, T).unwrap();
    while p.poll_transmit().is_some() {}
    let body = Message::Release {
        barrier: "b".into(),
        instance: "i".into(),
        generation: 0,
        without: vec!["2".into()],
        data: None,
    }
    .encode();
    assert_eq!(p.handle_notice(&body), Notice::Accepted);
    assert_eq!(
        p.poll_event(),
        Some(Outcome::Released {
            generation: 0,
            data: Some(Default::default()),
            dropped: Some(vec!["2".into()]),
        })
    );
}
