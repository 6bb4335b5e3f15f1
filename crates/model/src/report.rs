//! Running the checker and reporting what it found, with readable
//! counterexample traces.

use std::fmt::Write as _;
use std::time::Duration;

use sqs_barrier_core::wire::Message;
use stateright::Model;

use crate::model::Action;
use crate::state::{Holder, JOIN, State, Tok};
use crate::{BarrierModel, Bounds, NOW};

impl State {
    /// A one-line summary of the state, for counterexample traces.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (k, slot) in self.slots.iter().enumerate() {
            match slot {
                Some(c) => {
                    let _ = write!(
                        out,
                        "coord{k} {} holds {} rb={} pending={}{} | ",
                        c.machine.id(),
                        c.machine.held(),
                        c.machine.released_below(),
                        c.pending.len(),
                        if c.now() > NOW {
                            " grace over".to_owned()
                        } else if c.grace {
                            format!(" grace (unseen {})", c.unseen.len())
                        } else {
                            String::new()
                        },
                    );
                }
                None => {
                    let _ = write!(out, "coord{k} - | ");
                }
            }
        }
        for (k, inv) in self.invocations.iter().enumerate() {
            if let Some(i) = inv {
                let batch: Vec<String> = i.batch.iter().map(tok).collect();
                let _ = write!(
                    out,
                    "invocation{k} {} round {} batch [{}] pending={}{} | ",
                    i.id,
                    i.round.round(),
                    batch.join(" "),
                    i.pending.len(),
                    match i.round.ending() {
                        Some(e) => format!(" ending {e:?}"),
                        None => String::new(),
                    }
                );
            }
        }
        let _ = write!(out, "checkin:");
        for (t, h) in &self.checkin {
            let _ = write!(
                out,
                " {}{}",
                tok(t),
                match h {
                    Holder::Held(k) => format!("*{k}"),
                    Holder::Visible(_) => String::new(),
                }
            );
        }
        for (p, q) in self.release.iter().enumerate() {
            let _ = write!(out, " | rel{p}:");
            for (body, n) in q {
                let g = match Message::decode(body) {
                    Ok(Message::Release { generation, .. }) => format!("g{generation}"),
                    _ => body.clone(),
                };
                let _ = write!(out, " {g}x{n}");
            }
        }
        let _ = write!(
            out,
            " | tags {:?}",
            self.tags.as_ref().map(|t| (
                &t.coordinator,
                t.term,
                t.released_below,
                &t.released_above,
                t.open.as_ref().map(|o| (o.generation, o.arrived.len()))
            ))
        );
        let _ = write!(out, " | members:");
        for (i, m) in self.members.iter().enumerate() {
            let _ = write!(
                out,
                " {i}:next{}/wait{:?}/rs{}{}",
                m.next,
                m.waiting,
                m.resends,
                if m.broken { "/broken" } else { "" }
            );
        }
        if let Some(v) = &self.violation {
            let _ = write!(out, " | VIOLATION: {v}");
        }
        out
    }
}

/// What a run of the checker found.
#[derive(Debug)]
pub struct CheckReport {
    /// The bounds checked.
    pub bounds: Bounds,
    /// States generated (with repeats).
    pub states: usize,
    /// Distinct states explored.
    pub unique_states: usize,
    /// The longest path explored.
    pub max_depth: usize,
    /// Wall-clock time of the check.
    pub elapsed: Duration,
    /// Each property that failed, with its counterexample (or, for a
    /// `sometimes` property, the note that no example exists).
    pub failures: Vec<String>,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:?}: {} distinct states ({} generated), max depth {}, {:.1} s, {}",
            self.bounds,
            self.unique_states,
            self.states,
            self.max_depth,
            self.elapsed.as_secs_f64(),
            if self.failures.is_empty() {
                "all properties hold".to_owned()
            } else {
                format!("{} properties FAIL", self.failures.len())
            }
        )?;
        for fail in &self.failures {
            writeln!(f, "{fail}")?;
        }
        Ok(())
    }
}

/// Checks every property of the model with `bounds`, exhaustively (depth
/// first, on `threads` threads: it keeps only the visited states'
/// fingerprints and the current path, so memory stays small), and reports
/// what was found.
pub fn check(bounds: Bounds, threads: usize) -> CheckReport {
    run(bounds, threads, false)
}

/// Searches (depth first) for a counterexample to any safety or liveness
/// property with `bounds`, and stops at the first one: for configurations
/// expected to fail, such as the protocol without the lease
/// ([`Bounds::lease`]). Its report lists that counterexample (and no
/// `sometimes` property, which an interrupted search says nothing about).
pub fn find_counterexample(bounds: Bounds, threads: usize) -> CheckReport {
    run(bounds, threads, true)
}

fn run(bounds: Bounds, threads: usize, first: bool) -> CheckReport {
    use stateright::{Checker, Expectation, HasDiscoveries};
    let model = BarrierModel::new(bounds);
    let properties = model.properties();
    let start = std::time::Instant::now();
    let mut checker = model.checker().threads(threads);
    if first {
        checker = checker.finish_when(HasDiscoveries::AnyFailures);
    }
    let checker = checker.spawn_dfs().join();
    let elapsed = start.elapsed();
    let mut failures = Vec::new();
    for p in properties {
        let found = checker.discovery(p.name);
        match (p.expectation, found) {
            (Expectation::Sometimes, None) if first => {}
            (Expectation::Sometimes, None) => {
                failures.push(format!("NO EXAMPLE of `{}`", p.name));
            }
            (Expectation::Sometimes, Some(_)) | (_, None) => {}
            (_, Some(path)) => {
                let mut text = format!("COUNTEREXAMPLE to `{}`:\n", p.name);
                for (n, (state, action)) in path.into_vec().into_iter().enumerate() {
                    let _ = writeln!(text, "  {n:3} {}", state.summary());
                    if let Some(a) = action {
                        let _ = writeln!(text, "      -> {}", describe(&a));
                    }
                }
                failures.push(text);
            }
        }
    }
    CheckReport {
        bounds,
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        failures,
    }
}

fn tok(t: &Tok) -> String {
    if t.generation == JOIN {
        format!("m{}join", t.member)
    } else {
        format!("m{}g{}a{}c{}", t.member, t.generation, t.attempt, t.copy)
    }
}

fn describe(a: &Action) -> String {
    let notice = |body: &str| match Message::decode(body) {
        Ok(Message::Release { generation, .. }) => format!("release g{generation}"),
        _ => body.to_owned(),
    };
    match a {
        Action::Read(i, body) => format!("participant {i} reads {}", notice(body)),
        Action::ReadStuck(i, body) => {
            format!(
                "participant {i} reads {}; FAULT its delete does not take effect",
                notice(body)
            )
        }
        Action::DuplicateNotice(p, body) => {
            format!("FAULT duplicate copy of {} on release-{p}", notice(body))
        }
        Action::Expire(p, body) => {
            format!("FAULT a copy of {} on release-{p} expires", notice(body))
        }
        Action::Invoke(batch) if batch.is_empty() => "the schedule invokes a tick".to_owned(),
        Action::Invoke(batch) => {
            let batch: Vec<String> = batch.iter().map(tok).collect();
            format!("the event source invokes with [{}]", batch.join(" "))
        }
        Action::Lapse(_) | Action::DuplicateCheckin(..) | Action::Crash(_) | Action::Takeover => {
            format!("FAULT {a:?}")
        }
        other => format!("{other:?}"),
    }
}
