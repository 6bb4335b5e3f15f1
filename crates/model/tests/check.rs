//! Runs the model checker over the protocol model (see the crate docs and
//! docs/RELIABILITY.md, "Model checking").
//!
//! The small configuration runs in every `cargo test`. The others explore
//! millions of states and need an optimised build: they are `#[ignore]`d
//! here and run by `scripts/test` as
//! `cargo test --release -p sqs-barrier-model -- --include-ignored --skip deep_`.
//! The `deep_` ones explore tens of millions of states (about 10 minutes
//! each on two cores): run them with
//! `cargo test --release -p sqs-barrier-model -- --ignored deep_`
//! (docs/RELIABILITY.md has their last results).

use sqs_barrier_model::{Bounds, Features, check, find_counterexample};

fn run(bounds: Bounds) {
    let report = check(bounds, 2);
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
}

/// The configuration without the lease must fail: the model explores the
/// window the lease closes, and finds what it costs.
fn fails_without_the_lease(bounds: Bounds, any_of: &[&str]) {
    assert!(!bounds.lease);
    let report = find_counterexample(bounds, 2);
    println!("{report}");
    assert!(
        report.failures.iter().any(|f| any_of
            .iter()
            .any(|p| f.starts_with(&format!("COUNTEREXAMPLE to `{p}")))),
        "expected a counterexample to one of {any_of:?}: {report}"
    );
}

const NONE: Bounds = Bounds {
    members: 3,
    generations: 2,
    duplications: 0,
    lapses: 0,
    crashes: 0,
    expiries: 0,
    racing_resends: 0,
    quiet_resends: 1,
    takeovers: 0,
    stuck_deletes: 0,
    features: Features::NONE,
    lease: true,
};

/// 3 members, 2 generations, reordering only (every visible check-in may be
/// received next).
#[test]
fn three_members_two_generations_reordering() {
    run(NONE);
}

/// The configuration of the specification: 3 members, 2 generations, a
/// duplicating and reordering network and a coordinator crash.
#[test]
#[ignore = "deep: cargo test --release -p sqs-barrier-model -- --ignored deep_"]
fn deep_duplication_and_crash() {
    run(Bounds::STANDARD);
}

/// 3 generations, a duplicating and reordering network, and a delete of a
/// notice nobody needs that does not take effect (a duplicate of an older
/// notice is what a participant meets and deletes, as 3 generations are
/// needed for a participant to meet a notice older than its own).
#[test]
#[ignore = "release build: run by scripts/test"]
fn three_generations_duplication_stuck_delete() {
    run(Bounds {
        generations: 3,
        duplications: 1,
        stuck_deletes: 1,
        ..NONE
    });
}

/// A held check-in reappears (late visibility extension) around a crash.
#[test]
#[ignore = "release build: run by scripts/test"]
fn visibility_lapse_and_crash() {
    run(Bounds {
        lapses: 1,
        crashes: 1,
        ..NONE
    });
}

/// A notice copy expires unread around a crash.
#[test]
#[ignore = "release build: run by scripts/test"]
fn notice_expiry_and_crash() {
    run(Bounds {
        expiries: 1,
        crashes: 1,
        ..NONE
    });
}

/// A re-send racing with deliveries, around a crash.
#[test]
#[ignore = "deep: cargo test --release -p sqs-barrier-model -- --ignored deep_"]
fn deep_racing_resend_and_crash() {
    run(Bounds {
        racing_resends: 1,
        crashes: 1,
        ..NONE
    });
}

/// A duplicated check-in or notice and an expired notice.
#[test]
#[ignore = "release build: run by scripts/test"]
fn duplication_and_expiry() {
    run(Bounds {
        duplications: 1,
        expiries: 1,
        ..NONE
    });
}

/// The active coordinator's lease runs out between two of its requests
/// (its extensions failed while it lived): it stops, and a standby takes
/// the lease and starts from the published state.
#[test]
#[ignore = "release build: run by scripts/test"]
fn a_lease_that_runs_out() {
    run(Bounds {
        takeovers: 1,
        ..NONE
    });
}

/// A lease that runs out, and a crash of either coordinator (2 members:
/// with 3 it is a deep configuration).
#[test]
#[ignore = "release build: run by scripts/test"]
fn a_lease_that_runs_out_and_a_crash() {
    run(Bounds {
        members: 2,
        takeovers: 1,
        crashes: 1,
        ..NONE
    });
}

/// A lease that runs out and a crash, 3 members.
#[test]
#[ignore = "deep: cargo test --release -p sqs-barrier-model -- --ignored deep_"]
fn deep_a_lease_that_runs_out_and_a_crash() {
    run(Bounds {
        takeovers: 1,
        crashes: 1,
        ..NONE
    });
}

/// Without the lease (or with its timing assumption broken): a standby
/// takes over while the active coordinator lives, both run, and a state
/// write is a read, then a write, with the other's steps between. Even
/// without membership changes one's write can erase the other's: a
/// generation somebody passed is neither in the published state nor
/// countable again (S3), a published state loses an earlier one (S6).
#[test]
#[ignore = "release build: run by scripts/test"]
fn without_the_lease_two_active_coordinators_lose_published_state() {
    fails_without_the_lease(
        Bounds {
            members: 2,
            takeovers: 1,
            lease: false,
            ..NONE
        },
        &["S3", "S6", "S1", "released only", "L1"],
    );
}

/// A pool that shrinks and grows: of 2 configured members, member 1
/// leaves at generation 0 (its check-in there carries `leave`), and a
/// third process joins at any moment, learns its position (2: positions
/// are never reused) and first generation from the published state, and
/// goes through the generations from there. Every check-in brings data.
const ELASTIC: Bounds = Bounds {
    members: 2,
    features: Features {
        leave: true,
        join: true,
        quorum: false,
        gather: true,
    },
    ..NONE
};

/// A quorum barrier of 3 members (quorum 2, no grace) whose member 2
/// arrives at each generation whenever the model chooses: never, before
/// the quorum release or after it. Every check-in brings data.
const QUORUM: Bounds = Bounds {
    features: Features {
        leave: false,
        join: false,
        quorum: true,
        gather: true,
    },
    ..NONE
};

/// Leave, join and gather over a reordering network.
#[test]
fn leave_and_join_reordering() {
    run(ELASTIC);
}

/// Leave, join and gather with a duplicated message (a join, a check-in
/// or a notice).
#[test]
#[ignore = "release build: run by scripts/test"]
fn leave_and_join_duplication() {
    run(Bounds {
        duplications: 1,
        ..ELASTIC
    });
}

/// A quorum barrier with a dead or late member, over a reordering network.
#[test]
fn quorum_late_member_reordering() {
    run(QUORUM);
}

/// A quorum barrier with a dead or late member and a duplicated message.
#[test]
#[ignore = "release build: run by scripts/test"]
fn quorum_late_member_duplication() {
    run(Bounds {
        duplications: 1,
        ..QUORUM
    });
}

/// Leave, join and gather around a coordinator crash: the successor
/// waits out its restart grace (it receives every check-in that was in the
/// queue when it started) before it counts a join or releases by quorum.
#[test]
#[ignore = "release build: run by scripts/test"]
fn leave_and_join_crash() {
    run(Bounds {
        crashes: 1,
        ..ELASTIC
    });
}

/// Without the lease, two active coordinators split a phase of a pool that
/// changes: one counts the join or the leave and the other does not, and
/// members pass with different rolls or different gathered data.
#[test]
#[ignore = "release build: run by scripts/test"]
fn without_the_lease_two_active_coordinators_split_a_changing_pool() {
    fails_without_the_lease(
        Bounds {
            takeovers: 1,
            lease: false,
            ..ELASTIC
        },
        &["S1", "S3", "S4", "S5", "S6", "released only"],
    );
}

/// Under the lease, a takeover is to the barrier what a crash is: the
/// active coordinator stops between two requests, and a standby starts from
/// the published state. The checker explores exactly the states of a crash
/// (so the crash configurations with membership changes, quorum and
/// gathered data above cover the takeover too): checked on a quorum
/// barrier with a late member (2 members, quorum 1, data gathered) and on a
/// plain one.
#[test]
#[ignore = "release build: run by scripts/test"]
fn a_lease_that_runs_out_explores_what_a_crash_does() {
    for base in [
        Bounds {
            members: 2,
            ..QUORUM
        },
        Bounds { members: 2, ..NONE },
    ] {
        let taken = check(
            Bounds {
                takeovers: 1,
                ..base
            },
            2,
        );
        let crashed = check(Bounds { crashes: 1, ..base }, 2);
        println!("{taken}{crashed}");
        assert!(taken.failures.is_empty(), "{taken}");
        assert!(crashed.failures.is_empty(), "{crashed}");
        assert_eq!(taken.unique_states, crashed.unique_states);
    }
}

/// Without the lease, two active coordinators split a quorum barrier's
/// phase: one releases it without the late member, the other with it
/// (its check-in came to that one), and the member that one release
/// dropped passes by the other's notice (S4); or the two notices carry
/// different gathered data (S5).
#[test]
#[ignore = "release build: run by scripts/test"]
fn without_the_lease_two_active_coordinators_split_a_quorum_phase() {
    fails_without_the_lease(
        Bounds {
            members: 2,
            takeovers: 1,
            lease: false,
            ..QUORUM
        },
        &["S1", "S3", "S4", "S5", "S6", "released only"],
    );
}

/// A quorum barrier with a dead or late member around a coordinator crash
/// (2 members, quorum 1; every check-in brings data).
#[test]
#[ignore = "release build: run by scripts/test"]
fn quorum_late_member_crash() {
    run(Bounds {
        members: 2,
        crashes: 1,
        ..QUORUM
    });
}
