//! The SQS side of the environment: the release queues' notices and
//! the check-in queue's copies.

use std::collections::BTreeMap;

use sqs_barrier_core::wire::Message;

use crate::state::{State, flag};

/// One notice sent: a copy on the release queue of its generation's parity.
/// The ghost records whom a release went on without.
pub(crate) fn notify(s: &mut State, generation: u64, body: String) {
    if let Ok(Message::Release { without, .. }) = Message::decode(&body)
        && let Some(w) = s.without.get_mut(generation as usize)
    {
        for name in without {
            match name.parse::<u8>() {
                Ok(e) if e < 8 => *w |= 1 << e,
                _ => {
                    let why = format!("a release of {generation} without a stranger {name:?}");
                    flag(s, why);
                    return;
                }
            }
        }
    }
    let p = (generation % 2) as u8;
    *s.release[p as usize].entry(body.clone()).or_insert(0) += 1;
    s.notices.insert((p, body));
}

/// The generation of a notice body, if it is one.
pub(crate) fn notice_generation(body: &str) -> Option<u64> {
    match Message::decode(body) {
        Ok(Message::Release { generation, .. } | Message::Broken { generation, .. }) => {
            Some(generation)
        }
        _ => None,
    }
}

pub(crate) fn take_one(q: &mut BTreeMap<String, u8>, body: &str) -> bool {
    match q.get_mut(body) {
        Some(n) if *n > 1 => {
            *n -= 1;
            true
        }
        Some(_) => {
            q.remove(body);
            true
        }
        None => false,
    }
}
