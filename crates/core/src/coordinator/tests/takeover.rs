//! A coordinator that takes over from a published state, a standby's
//! probes, one that finds another's write and stands down, and
//! coordinators rebuilt for every batch (as the Lambda handler runs them).

use super::*;

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
