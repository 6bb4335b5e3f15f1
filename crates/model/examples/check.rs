//! Runs the checker with bounds from the command line:
//! `cargo run -p sqs-barrier-model --release --example check -- MEMBERS GENERATIONS DUPLICATIONS LAPSES CRASHES EXPIRIES RACING_RESENDS QUIET_RESENDS TAKEOVERS STUCK_DELETES [THREADS]`
//! (missing values are those of `Bounds::STANDARD`).

use sqs_barrier_model::{Bounds, check};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let s = Bounds::STANDARD;
    let arg = |i: usize, d: u64| args.get(i).copied().unwrap_or(d);
    let bounds = Bounds {
        members: arg(0, s.members as u64) as usize,
        generations: arg(1, s.generations),
        duplications: arg(2, s.duplications.into()) as u8,
        lapses: arg(3, s.lapses.into()) as u8,
        crashes: arg(4, s.crashes.into()) as u8,
        expiries: arg(5, s.expiries.into()) as u8,
        racing_resends: arg(6, s.racing_resends.into()) as u8,
        quiet_resends: arg(7, s.quiet_resends.into()) as u8,
        takeovers: arg(8, s.takeovers.into()) as u8,
        stuck_deletes: arg(9, s.stuck_deletes.into()) as u8,
        rests: s.rests,
        features: s.features,
        lease: s.lease,
        coordinator: s.coordinator,
    };
    let report = check(bounds, arg(10, 2) as usize);
    print!("{report}");
    if !report.failures.is_empty() {
        std::process::exit(1);
    }
}
