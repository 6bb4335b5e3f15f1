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

use sqs_barrier_model::{Bounds, CoordinatorKind, Features, check, find_counterexample};

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
    rests: 0,
    stuck_deletes: 0,
    features: Features::NONE,
    lease: true,
    coordinator: CoordinatorKind::Process,
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

/// A quorum barrier that a fourth process joins: a quorum release may go
/// on without the joined member too, also before it has read its join
/// (it is then dropped, not early); every check-in brings data.
const QUORUM_JOIN: Bounds = Bounds {
    features: Features {
        leave: false,
        join: true,
        quorum: true,
        gather: true,
    },
    ..NONE
};

/// A quorum barrier that a process joins, over a reordering network.
#[test]
#[ignore = "release build: run by scripts/test"]
fn quorum_and_join_reordering() {
    run(QUORUM_JOIN);
}

/// A quorum barrier that a process joins, and a coordinator crash: more
/// than ten minutes, run by hand with the other `deep_` configurations.
#[test]
#[ignore = "deep: cargo test --release -p sqs-barrier-model -- --ignored deep_"]
fn deep_quorum_and_join_crash() {
    run(Bounds {
        crashes: 1,
        ..QUORUM_JOIN
    });
}

/// A quorum barrier that a process joins, under the Lambda coordinator,
/// and an invocation killed.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_quorum_and_join_crash() {
    run(Bounds {
        crashes: 1,
        coordinator: CoordinatorKind::LAMBDA,
        ..QUORUM_JOIN
    });
}

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

// ---------------------------------------------------------------------------
// The coordinator as the Lambda function (`CoordinatorKind::Lambda`): every
// invocation is one round of the core's `LambdaRound` over a batch of 1 or
// 2 visible check-in copies the event source takes, in any order, or over
// none (the schedule's tick), carried out one request at a time; a crash
// kills it between any two (its whole batch comes back). Under the lease
// invocations take turns.

/// 3 members, 2 generations, batches of 1 or 2, under the lease.
const LAMBDA: Bounds = Bounds {
    coordinator: CoordinatorKind::LAMBDA,
    ..NONE
};

/// Leave and join under the Lambda coordinator: as [`ELASTIC`], but
/// without gathered data, which the Lambda coordinator cannot gather (see
/// `lambda_gathered_data_breaks_the_barrier_and_a_crash`).
const LAMBDA_ELASTIC: Bounds = Bounds {
    members: 2,
    features: Features {
        leave: true,
        join: true,
        quorum: false,
        gather: false,
    },
    ..LAMBDA
};

/// A quorum barrier under the Lambda coordinator: as [`QUORUM`], without
/// gathered data.
const LAMBDA_QUORUM: Bounds = Bounds {
    features: Features {
        leave: false,
        join: false,
        quorum: true,
        gather: false,
    },
    ..LAMBDA
};

/// Invocations over a reordering queue.
#[test]
fn lambda_three_members_two_generations_reordering() {
    run(LAMBDA);
}

/// An invocation killed at any step (a function timeout, a lost
/// instance, a lease that ran out), and a duplicated check-in or notice.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_duplication_and_crash() {
    run(Bounds {
        duplications: 1,
        crashes: 1,
        ..LAMBDA
    });
}

/// Two invocations killed.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_two_crashes() {
    run(Bounds {
        crashes: 2,
        ..LAMBDA
    });
}

/// A notice copy expires unread around a killed invocation (one killed
/// between its write and its notice leaves a release that only the
/// published state tells).
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_notice_expiry_and_crash() {
    run(Bounds {
        expiries: 1,
        crashes: 1,
        ..LAMBDA
    });
}

/// A status read racing with the invocations, around a killed one.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_racing_resend_and_crash() {
    run(Bounds {
        racing_resends: 1,
        crashes: 1,
        ..LAMBDA
    });
}

/// 3 generations, a duplicating network and a delete of a notice nobody
/// needs that does not take effect.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_three_generations_duplication_stuck_delete() {
    run(Bounds {
        generations: 3,
        duplications: 1,
        stuck_deletes: 1,
        ..LAMBDA
    });
}

/// 3 generations, a duplication and a killed invocation.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_three_generations_duplication_and_crash() {
    run(Bounds {
        generations: 3,
        duplications: 1,
        crashes: 1,
        ..LAMBDA
    });
}

/// Batches of up to 3 records (every member's check-in in one batch) and
/// a killed invocation.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_batches_of_three_and_a_crash() {
    run(Bounds {
        crashes: 1,
        coordinator: CoordinatorKind::Lambda { batch: 3 },
        ..LAMBDA
    });
}

/// Member 2 of 3 leaves at generation 0, around a killed invocation.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_leave_and_a_crash() {
    run(Bounds {
        crashes: 1,
        features: Features {
            leave: true,
            ..Features::NONE
        },
        ..LAMBDA
    });
}

/// A third process joins a barrier of 2, around a killed invocation.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_join_and_a_crash() {
    run(Bounds {
        members: 2,
        crashes: 1,
        features: Features {
            join: true,
            ..Features::NONE
        },
        ..LAMBDA
    });
}

/// Leave and join: the joined member's check-ins for the generation after
/// an open one go back to the queue (batch item failures) until that one
/// is released.
#[test]
fn lambda_leave_and_join_reordering() {
    run(LAMBDA_ELASTIC);
}

/// Leave and join around a killed invocation.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_leave_and_join_crash() {
    run(Bounds {
        crashes: 1,
        ..LAMBDA_ELASTIC
    });
}

/// Leave and join with a duplicated message (a join, a check-in or a
/// notice) and a killed invocation.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_leave_and_join_duplication_and_crash() {
    run(Bounds {
        duplications: 1,
        crashes: 1,
        ..LAMBDA_ELASTIC
    });
}

/// A quorum barrier with a dead or late member: the invocation that sees
/// the quorum publishes it, and a later one (a batch, or the schedule's
/// tick) releases without the late member, unless its check-in completes
/// the generation first.
#[test]
fn lambda_quorum_late_member_reordering() {
    run(LAMBDA_QUORUM);
}

/// A quorum barrier around a killed invocation.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_quorum_late_member_crash() {
    run(Bounds {
        crashes: 1,
        ..LAMBDA_QUORUM
    });
}

/// A quorum barrier with a duplicated message.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_quorum_late_member_duplication() {
    run(Bounds {
        duplications: 1,
        ..LAMBDA_QUORUM
    });
}

/// A quorum barrier with two killed invocations and a duplicated message
/// (about 2 minutes on two cores).
#[test]
#[ignore = "deep: cargo test --release -p sqs-barrier-model -- --ignored deep_"]
fn deep_lambda_quorum_late_member_two_crashes_and_duplication() {
    run(Bounds {
        crashes: 2,
        duplications: 1,
        ..LAMBDA_QUORUM
    });
}

/// Every check-in brings data, which the Lambda coordinator cannot gather
/// (docs/PROTOCOL.md, section 9): the first invocation that counts one
/// breaks the barrier, saying so, and every member's wait ends broken at
/// the same generation, around a killed invocation. (S5 has nothing to
/// check here; the break is checked instead: every broken outcome names
/// the same generation and this cause, and nobody passes a broken
/// generation.)
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_gathered_data_breaks_the_barrier_and_a_crash() {
    run(Bounds {
        crashes: 1,
        features: Features {
            gather: true,
            ..Features::NONE
        },
        ..LAMBDA
    });
}

/// Gathered data in a pool that shrinks and grows, around a killed
/// invocation: the joined member's wait too ends broken.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_gathered_data_in_a_changing_pool_and_a_crash() {
    run(Bounds {
        crashes: 1,
        features: Features {
            gather: true,
            ..LAMBDA_ELASTIC.features
        },
        ..LAMBDA_ELASTIC
    });
}

/// Without the lease (the handler before it, or the lease's timing
/// assumption broken) two invocations run at once, and each checks that
/// its write stood (`VERIFY_AFTER` later) and starts again if it did not.
/// A write that lands after the other's check still erases it: a release
/// somebody passed by its notice is lost from the published state (S3,
/// S6).
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_without_the_lease_two_invocations_lose_published_state() {
    fails_without_the_lease(
        Bounds {
            members: 2,
            takeovers: 1,
            lease: false,
            ..LAMBDA
        },
        &["S3", "S6", "S1", "released only", "L1"],
    );
}

/// Without the lease, two invocations on a changing pool.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_without_the_lease_two_invocations_on_a_changing_pool() {
    fails_without_the_lease(
        Bounds {
            takeovers: 1,
            lease: false,
            ..LAMBDA_ELASTIC
        },
        &["S1", "S3", "S4", "S6", "released only", "L1"],
    );
}

/// Without the lease, two invocations on a quorum barrier.
#[test]
#[ignore = "release build: run by scripts/test"]
fn lambda_without_the_lease_two_invocations_on_a_quorum_barrier() {
    fails_without_the_lease(
        Bounds {
            members: 2,
            takeovers: 1,
            lease: false,
            ..LAMBDA_QUORUM
        },
        &["S1", "S3", "S4", "S6", "released only", "L1"],
    );
}

/// The active coordinator rests (gives the lease back with everything it
/// decided published), a standby takes the lease and starts from the
/// register, and loses it between any two of its steps; the rested one
/// wakes and goes on, or stands down if the register holds the other's
/// write (docs/PROTOCOL.md, "Resting").
#[test]
#[ignore = "release build: run by scripts/test"]
fn a_coordinator_that_rests() {
    run(Bounds { rests: 1, ..NONE });
}

/// A rest, and a crash of either coordinator.
#[test]
#[ignore = "release build: run by scripts/test"]
fn a_coordinator_that_rests_and_a_crash() {
    run(Bounds {
        members: 2,
        rests: 1,
        crashes: 1,
        ..NONE
    });
}

/// A rest on a quorum barrier: the one that took the lease may release a
/// generation on check-ins it held and stop before it publishes it; the
/// rested one must not drop a member of it before those check-ins are
/// back (its grace again).
#[test]
#[ignore = "release build: run by scripts/test"]
fn quorum_with_a_rest() {
    run(Bounds {
        members: 2,
        rests: 1,
        ..QUORUM
    });
}

/// The same with 3 members (10 million states, 80 s).
#[test]
#[ignore = "deep: cargo test --release -p sqs-barrier-model -- --ignored deep_"]
fn deep_quorum_with_a_rest() {
    run(Bounds { rests: 1, ..QUORUM });
}

/// A rest on a quorum barrier of 2 that a process joins: nor may the rested
/// one place the join at such a generation (14 million states, 120 s).
#[test]
#[ignore = "deep: cargo test --release -p sqs-barrier-model -- --ignored deep_"]
fn deep_quorum_and_join_with_a_rest() {
    run(Bounds {
        members: 2,
        rests: 1,
        ..QUORUM_JOIN
    });
}

/// A rest on a pool that shrinks and grows, with gathered data.
#[test]
#[ignore = "release build: run by scripts/test"]
fn leave_and_join_with_a_rest() {
    run(Bounds {
        rests: 1,
        ..ELASTIC
    });
}
