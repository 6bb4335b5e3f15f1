//! Resting: when a coordinator is settled, and what waits for the grace
//! again once it resumes.

use super::*;

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
