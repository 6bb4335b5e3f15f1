//! Leaves, joins, quorum releases and gathered data, also across a
//! takeover.

use super::*;

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
