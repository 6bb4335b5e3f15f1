//! The arithmetic of the figures: percentiles, rounding, request counts,
//! tagging actions, and the sums behind the cost of waiting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Counts;

/// Nearest-rank percentile of sorted `v`.
pub(super) fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

pub(super) fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

pub(super) fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `a / b` rounded to three decimals; 0 if `b` is not positive.
pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { r3(a / b) } else { 0.0 }
}

/// A floor's samples summed up: p50 and max (nearest rank, rounded to
/// three decimals) and how many there are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct FloorFigures {
    pub(super) p50: f64,
    pub(super) max: f64,
    pub(super) samples: usize,
}

impl FloorFigures {
    pub(super) fn of(samples: &[f64]) -> Self {
        let s = sorted(samples.to_vec());
        Self {
            p50: r3(pct(&s, 0.5)),
            max: r3(pct(&s, 1.0)),
            samples: s.len(),
        }
    }
}

/// The two-hop floor (`gather_p50 + fanout_p50`, rounded to three
/// decimals) and `release_p50` over it.
pub(super) fn two_hop(release_p50: f64, gather_p50: f64, fanout_p50: f64) -> (f64, f64) {
    let floor = gather_p50 + fanout_p50;
    (r3(floor), ratio(release_p50, floor))
}

/// Rounded to six decimals (for minutes: a few tens of microseconds).
pub(super) fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The requests counted between two snapshots of a counter.
pub(super) fn diff(end: &Counts, start: &Counts) -> Counts {
    end.iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*start.get(k).unwrap_or(&0))))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Adds `more` to `to`.
pub(super) fn add(to: &mut Counts, more: &Counts) {
    for (k, v) in more {
        *to.entry(k.clone()).or_default() += v;
    }
}

/// Counts divided by `by` (per participant-episode, per minute...), rounded
/// to three decimals; nothing if `by` is not positive.
pub(super) fn per(c: &Counts, by: f64) -> BTreeMap<String, f64> {
    if by <= 0.0 {
        return BTreeMap::new();
    }
    c.iter()
        .map(|(k, v)| (k.clone(), r3(*v as f64 / by)))
        .collect()
}

/// The operations SQS counts as tagging actions, of which it allows 5 per
/// second per account.
pub(super) const TAGGING: [&str; 3] = ["ListQueueTags", "TagQueue", "UntagQueue"];

/// The tagging actions among `c`: its `TagQueue`, `UntagQueue` and
/// `ListQueueTags` counts summed.
pub(super) fn tagging(c: &Counts) -> u64 {
    TAGGING.iter().filter_map(|op| c.get(*op)).sum()
}

/// The tagging figures of a run's counted window.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Tagging {
    /// Tagging request attempts (retries included).
    pub(super) actions: u64,
    /// `actions` over the participant-episodes (N x E), rounded to three
    /// decimals.
    pub(super) per_participant_episode: f64,
    /// `actions` over the minutes of the counted window, rounded to three
    /// decimals.
    pub(super) per_barrier_minute: f64,
    /// The tagging attempts that failed (most likely throttled).
    pub(super) failed: u64,
}

impl Tagging {
    /// From the window's request counts and failed attempts (participants
    /// and coordinator together), its participant-episodes and its minutes;
    /// a rate whose divisor is not positive is 0.
    pub(super) fn new(
        requests: &Counts,
        errors: &Counts,
        participant_episodes: f64,
        minutes: f64,
    ) -> Self {
        let actions = tagging(requests);
        let rate = |by: f64| {
            if by > 0.0 {
                r3(actions as f64 / by)
            } else {
                0.0
            }
        };
        Self {
            actions,
            per_participant_episode: rate(participant_episodes),
            per_barrier_minute: rate(minutes),
            failed: tagging(errors),
        }
    }
}

/// What the participants' waits cost, summed over participants and the
/// measured episodes. A participant waits from the moment its check-in has
/// been sent until its wait returns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Waiting {
    /// Participant-episodes summed.
    pub(super) episodes: u64,
    /// Time spent waiting, in microseconds.
    pub(super) waited_us: u64,
    /// The check-ins' requests: the `SendMessage` attempts (retries
    /// included) made until the check-in call returned.
    pub(super) checkin: Counts,
    /// Every other request the participants made from the start of their
    /// check-in until their wait returned.
    pub(super) requests: Counts,
}

impl Waiting {
    /// Adds one participant-episode: its requests from just before the
    /// check-in (`start`), when the check-in call returned (`checked_in`)
    /// and when its wait returned (`end`), snapshots of its own counter;
    /// and how long it waited.
    pub(super) fn add_episode(
        &mut self,
        start: &Counts,
        checked_in: &Counts,
        end: &Counts,
        waited_us: u64,
    ) {
        const SEND: &str = "SendMessage";
        let sent = diff(checked_in, start).get(SEND).copied().unwrap_or(0);
        let mut all = diff(end, start);
        if sent > 0 {
            *self.checkin.entry(SEND.to_owned()).or_default() += sent;
            if let Some(v) = all.get_mut(SEND) {
                *v -= sent;
            }
            all.retain(|_, v| *v > 0);
        }
        add(&mut self.requests, &all);
        self.episodes += 1;
        self.waited_us += waited_us;
    }

    /// Adds another group's sums.
    pub(super) fn merge(&mut self, o: &Self) {
        self.episodes += o.episodes;
        self.waited_us += o.waited_us;
        add(&mut self.checkin, &o.checkin);
        add(&mut self.requests, &o.requests);
    }

    /// Minutes spent waiting.
    pub(super) fn minutes(&self) -> f64 {
        self.waited_us as f64 / 60e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(pct(&v, 0.5), 50.0);
        assert_eq!(pct(&v, 0.99), 99.0);
        assert_eq!(pct(&v, 1.0), 100.0);
        assert_eq!(pct(&[7.0], 0.5), 7.0);
    }

    #[test]
    fn floor_figures_of_unsorted_samples() {
        let f = FloorFigures::of(&[3.0, 1.0004, 9.5, 2.0, 4.0]);
        assert_eq!(
            f,
            FloorFigures {
                p50: 3.0,
                max: 9.5,
                samples: 5
            }
        );
        assert_eq!(
            FloorFigures::of(&[]),
            FloorFigures {
                p50: 0.0,
                max: 0.0,
                samples: 0
            }
        );
        // An even count: the lower middle (nearest rank).
        assert_eq!(FloorFigures::of(&[2.0, 1.0]).p50, 1.0);
    }

    #[test]
    fn the_two_hop_floor_adds_the_gather_and_the_fan_out() {
        assert_eq!(two_hop(30.0, 5.0, 7.0), (12.0, 2.5));
        assert_eq!(two_hop(10.0, 1.0004, 2.0), (3.0, 3.333));
        // No floor measured: no ratio.
        assert_eq!(two_hop(10.0, 0.0, 0.0), (0.0, 0.0));
    }

    #[test]
    fn ratios() {
        // Release p50 12.3 ms over a floor of 4.1 ms: 3 x the floor.
        assert_eq!(ratio(12.3, 4.1), 3.0);
        assert_eq!(ratio(10.0, 3.0), 3.333);
        assert_eq!(ratio(5.0, 0.0), 0.0);
    }

    fn counts(v: &[(&str, u64)]) -> Counts {
        v.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    }

    #[test]
    fn tagging_actions_are_the_three_tagging_operations() {
        // Participants' and coordinator's counts over the window, as the
        // run adds them up.
        let mut all = counts(&[
            ("SendMessage", 170),
            ("ReceiveMessage", 400),
            ("ListQueueTags", 6),
        ]);
        add(&mut all, &counts(&[("TagQueue", 20), ("ListQueueTags", 3)]));
        add(
            &mut all,
            &counts(&[("UntagQueue", 1), ("DeleteMessage", 9)]),
        );
        assert_eq!(tagging(&all), 30);
        let errors = counts(&[("TagQueue", 2), ("ReceiveMessage", 5)]);
        // N = 8, E = 20: 160 participant-episodes; a window of 1.5 minutes.
        let t = Tagging::new(&all, &errors, 160.0, 1.5);
        assert_eq!(
            t,
            Tagging {
                actions: 30,
                per_participant_episode: 0.188,
                per_barrier_minute: 20.0,
                failed: 2,
            }
        );
        // None at all, or nothing to divide by.
        let none = Tagging::new(&counts(&[("SendMessage", 5)]), &Counts::new(), 4.0, 0.0);
        assert_eq!(
            (none.actions, none.per_participant_episode, none.failed),
            (0, 0.0, 0)
        );
        assert_eq!(none.per_barrier_minute, 0.0);
    }

    #[test]
    fn the_check_in_is_counted_apart_from_the_wait() {
        let mut w = Waiting::default();
        let start = counts(&[("SendMessage", 4), ("ReceiveMessage", 9)]);
        // The wait's first receive may be counted before the check-in call
        // has returned; it belongs to the wait.
        let checked_in = counts(&[("SendMessage", 5), ("ReceiveMessage", 10)]);
        // A re-send while waiting is a wait's request.
        let end = counts(&[
            ("SendMessage", 6),
            ("ReceiveMessage", 12),
            ("ListQueueTags", 1),
        ]);
        w.add_episode(&start, &checked_in, &end, 90_000_000);
        assert_eq!(w.checkin, counts(&[("SendMessage", 1)]));
        assert_eq!(
            w.requests,
            counts(&[
                ("SendMessage", 1),
                ("ReceiveMessage", 3),
                ("ListQueueTags", 1)
            ])
        );
        let mut total = Waiting::default();
        total.merge(&w);
        total.merge(&w);
        assert_eq!(total.episodes, 2);
        assert_eq!(total.minutes(), 3.0);
        assert_eq!(total.requests["ReceiveMessage"], 6);
        assert_eq!(per(&total.requests, 3.0)["ReceiveMessage"], 2.0);
    }
}
