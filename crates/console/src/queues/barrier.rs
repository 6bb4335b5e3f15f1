//! Whether a queue belongs to a barrier, in which role, what purging or
//! deleting it would do to the barrier, and who coordinates the barrier.
//!
//! A barrier `NAME` owns `NAME-checkin` (or `NAME-checkin.fifo`),
//! `NAME-release-0`, `NAME-release-1`, `NAME-dlq` (or `.fifo`),
//! `NAME-state` and `NAME-lease.fifo`; a barrier is there when its check-in
//! queue and its first release queue are (as the console's watch finds
//! barriers).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use sqs_barrier::Sqs;
use sqs_barrier::admin;
use sqs_barrier::core::names::{QueueNames, validate_barrier_name};

/// A queue's role in its barrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    CheckIn,
    Release(u8),
    DeadLetter,
    State,
    Lease,
}

impl Role {
    /// The role's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Role::CheckIn => "check-in",
            Role::Release(_) => "release",
            Role::DeadLetter => "dead-letter",
            Role::State => "state",
            Role::Lease => "lease",
        }
    }

    /// What the queue is for.
    pub fn purpose(self) -> String {
        match self {
            Role::CheckIn => "check-ins and aborts, from the members to the coordinator".into(),
            Role::Release(p) => format!(
                "release and broken notices of the {} phases, from the coordinator to the members",
                if p == 0 { "even" } else { "odd" }
            ),
            Role::DeadLetter => "messages the coordinator could not use, moved aside for operators".into(),
            Role::State => "the coordinator's published state (who has arrived, what was released) with a copy of the configuration".into(),
            Role::Lease => "the coordinators' lease token: the coordinator holding it is the one that decides".into(),
        }
    }

    /// What purging the queue does to the barrier.
    pub fn purge_effect(self) -> &'static str {
        match self {
            Role::CheckIn => {
                "purging it loses the arrivals (and aborts) the coordinator has not counted yet: those members wait until they time out or the barrier's deadline breaks it"
            }
            Role::Release(_) => {
                "purging it loses release notices: members waiting for a phase of this parity may wait until they find the release in the published state or time out"
            }
            Role::DeadLetter => {
                "purging it loses the rejected messages and the reasons the console shows for them"
            }
            Role::State => {
                "purging it removes the published state: the console and status show no coordinator until it writes again, and a coordinator starting meanwhile goes by the older copy kept in the check-in queue's tags"
            }
            Role::Lease => {
                "purging it removes the lease token: no coordinator may decide (release a phase) until a coordinator makes a new one"
            }
        }
    }
}

/// A barrier's queue: the barrier's name, the queue's role, and whether
/// the barrier's check-in queue is FIFO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Membership {
    pub barrier: String,
    pub role: Role,
}

/// The barrier a queue's name says it belongs to, if any (not checked
/// against SQS).
fn candidate(queue: &str) -> Option<(String, Role)> {
    const SUFFIXES: &[(&str, Role)] = &[
        ("-checkin.fifo", Role::CheckIn),
        ("-checkin", Role::CheckIn),
        ("-release-0", Role::Release(0)),
        ("-release-1", Role::Release(1)),
        ("-dlq.fifo", Role::DeadLetter),
        ("-dlq", Role::DeadLetter),
        ("-state", Role::State),
        ("-lease.fifo", Role::Lease),
    ];
    SUFFIXES.iter().find_map(|(suffix, role)| {
        let name = queue.strip_suffix(suffix)?;
        validate_barrier_name(name).ok()?;
        Some((name.to_owned(), *role))
    })
}

/// Finds which barriers exist, remembering the answers of one request.
pub(crate) struct Finder<'a> {
    sqs: &'a Sqs,
    /// Queue names known to exist (from a listing).
    known: HashSet<String>,
    /// Barrier name: `Some(fifo)` if it exists.
    found: HashMap<String, Option<bool>>,
}

impl<'a> Finder<'a> {
    pub fn new(sqs: &'a Sqs, known: impl IntoIterator<Item = String>) -> Self {
        Self {
            sqs,
            known: known.into_iter().collect(),
            found: HashMap::new(),
        }
    }

    async fn exists(&self, queue: &str) -> bool {
        if self.known.contains(queue) {
            return true;
        }
        self.sqs
            .client()
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .is_ok()
    }

    /// Whether barrier `name` exists, and if so whether it is FIFO.
    async fn barrier(&mut self, name: &str) -> Option<bool> {
        if let Some(f) = self.found.get(name) {
            return *f;
        }
        let mut fifo = None;
        for f in [false, true] {
            let names = QueueNames::new(name, f);
            if self.exists(&names.checkin).await {
                if self.exists(&names.release[0]).await {
                    fifo = Some(f);
                }
                break;
            }
        }
        self.found.insert(name.to_owned(), fifo);
        fifo
    }

    /// The barrier `queue` belongs to, and its role, if it is one of a
    /// barrier's queues.
    pub async fn membership(&mut self, queue: &str) -> Option<Membership> {
        let (barrier, role) = candidate(queue)?;
        let fifo = self.barrier(&barrier).await?;
        let names = QueueNames::new(&barrier, fifo);
        names
            .all()
            .contains(&queue)
            .then_some(Membership { barrier, role })
    }
}

/// The barrier's side of a queue's details: its role, what purging and
/// deleting would do, and who coordinates it (read from the coordinator's
/// published state, which takes nothing from anyone).
pub(crate) async fn details(sqs: &Sqs, m: &Membership) -> Value {
    let coordinator = match admin::open(sqs, &m.barrier).await {
        Ok(info) => match info.state.as_ref() {
            Some(s) => {
                let (kind, host) = coordinator_kind(&s.coordinator);
                json!({
                    "id": s.coordinator,
                    "kind": kind,
                    "where": host,
                    "stopped": s.stopped,
                    "standbys": s.standbys,
                    "heartbeat_ms": s.heartbeat_ms,
                    "note": "from the newest state the coordinator published",
                })
            }
            None => json!({
                "kind": "unknown",
                "note": "no coordinator has published a state yet",
            }),
        },
        Err(e) => json!({"kind": "unknown", "note": e.to_string()}),
    };
    json!({
        "name": m.barrier,
        "role": m.role.name(),
        "purpose": m.role.purpose(),
        "purge_effect": m.role.purge_effect(),
        "delete_effect": delete_effect(&m.barrier),
        "teardown": teardown(&m.barrier),
        "coordinator": coordinator,
    })
}

/// What deleting any of a barrier's queues does.
pub(crate) fn delete_effect(barrier: &str) -> String {
    format!(
        "deleting it breaks barrier {barrier}: its members and coordinators fail on the missing queue, and setting the barrier up again takes a new barrier; to remove the barrier, use {}",
        teardown(barrier)
    )
}

/// The command that removes a barrier whole.
pub(crate) fn teardown(barrier: &str) -> String {
    format!("sqs-barrier teardown {barrier}")
}

/// Who a coordinator id names: a Lambda function (`…@lambda/FUNCTION`) or
/// a process (`…@HOST/PID`).
pub(crate) fn coordinator_kind(id: &str) -> (&'static str, String) {
    match id.split_once('@') {
        Some((_, rest)) => match rest.strip_prefix("lambda/") {
            Some(function) => ("lambda", function.to_owned()),
            None => ("process", rest.to_owned()),
        },
        None => ("unknown", id.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_name() {
        assert_eq!(
            candidate("etl-checkin"),
            Some(("etl".into(), Role::CheckIn))
        );
        assert_eq!(
            candidate("etl-checkin.fifo"),
            Some(("etl".into(), Role::CheckIn))
        );
        assert_eq!(
            candidate("etl-release-1"),
            Some(("etl".into(), Role::Release(1)))
        );
        assert_eq!(
            candidate("etl-lease.fifo"),
            Some(("etl".into(), Role::Lease))
        );
        assert_eq!(
            candidate("etl-dlq.fifo"),
            Some(("etl".into(), Role::DeadLetter))
        );
        assert_eq!(candidate("etl"), None);
        assert_eq!(candidate("-state"), None);
        assert_eq!(
            coordinator_kind("0a@lambda/fn"),
            ("lambda", "fn".to_owned())
        );
        assert_eq!(
            coordinator_kind("0a@host/12"),
            ("process", "host/12".to_owned())
        );
    }
}
