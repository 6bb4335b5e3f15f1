//! SQS's rate quota on tagging actions: which requests it counts, and a token
//! bucket that decides whether one more fits.
//!
//! SQS limits the tagging actions (TagQueue, UntagQueue and ListQueueTags) per AWS
//! account, all three together. The endpoint serves one account, so it keeps one
//! [`TokenBucket`] for the whole server: a burst of N requests at once, then N per
//! second. A request over the quota is answered as SQS answers throttling
//! ([`SqsError::rate_exceeded`](crate::SqsError::rate_exceeded): HTTP 400,
//! `RequestThrottled`, "Rate exceeded") and has no effect. `CreateQueue` with tags is
//! not counted, and no other operation is limited.
//!
//! Like the queue model, the bucket has no clock: every call takes `now` in
//! milliseconds, so unit tests step a virtual clock. [`TaggingQuota`] is the one
//! place that reads a clock for it (a monotonic one), for the server and for the
//! test kit's proxy in front of other endpoints.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::model::Millis;

/// An account's tagging quota as a server applies it: one [`TokenBucket`] shared
/// by every connection, on a monotonic clock that starts with it (a change of the
/// wall clock neither refills nor starves it).
#[derive(Debug)]
pub struct TaggingQuota {
    /// `None`: no quota (0 actions a second asked for).
    bucket: Option<Mutex<TokenBucket>>,
    started: Instant,
}

impl TaggingQuota {
    /// `tps` tagging actions a second with a burst of `tps`; 0 turns it off.
    pub fn per_second(tps: u32) -> Self {
        Self {
            bucket: (tps > 0).then(|| Mutex::new(TokenBucket::per_second(tps, 0))),
            started: Instant::now(),
        }
    }

    /// Counts one tagging action: `false` if it is over the quota (and must be
    /// refused).
    pub fn admit(&self) -> bool {
        let Some(bucket) = &self.bucket else {
            return true;
        };
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_take(now)
    }
}

/// SQS's tagging quota as the endpoint applies it by default: 5 tagging actions per
/// second per account (see [`crate::Options::tagging_tps`]).
pub const DEFAULT_TAGGING_TPS: u32 = 5;

/// The operations the tagging quota counts, as named in `X-Amz-Target` after
/// `AmazonSQS.`.
pub const TAGGING_ACTIONS: [&str; 3] = ["TagQueue", "UntagQueue", "ListQueueTags"];

/// Whether an `X-Amz-Target` value names a tagging action: `AmazonSQS.TagQueue`,
/// `AmazonSQS.UntagQueue` or `AmazonSQS.ListQueueTags` (or the bare operation name,
/// which [`decode_request`](crate::decode_request) accepts too).
pub fn is_tagging_action(target: &str) -> bool {
    let operation = target.strip_prefix("AmazonSQS.").unwrap_or(target);
    TAGGING_ACTIONS.contains(&operation)
}

/// Thousandths of a token: at `rate` tokens per second a bucket gains exactly `rate`
/// of them per millisecond, so refills are exact integer arithmetic.
const MILLI: u64 = 1000;

/// A token bucket: holds up to `burst` tokens, gains `rate` per second, and every
/// admitted request takes one. It starts full.
///
/// `now` is any millisecond clock; a `now` earlier than one seen before counts as no
/// time passed (the bucket never refills from a clock that went backwards).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens gained per second (= thousandths gained per millisecond).
    rate: u32,
    /// Most thousandths held.
    capacity: u64,
    /// Thousandths held at `last`.
    level: u64,
    /// The latest `now` seen.
    last: Millis,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens that gains `rate` tokens per second, at `now`.
    /// A bucket with `burst` 0 admits nothing; one with `rate` 0 never refills.
    pub fn new(rate: u32, burst: u32, now: Millis) -> Self {
        let capacity = u64::from(burst) * MILLI;
        TokenBucket {
            rate,
            capacity,
            level: capacity,
            last: now,
        }
    }

    /// A quota of `tps` requests per second with a burst of `tps`, full at `now`.
    pub fn per_second(tps: u32, now: Millis) -> Self {
        Self::new(tps, tps, now)
    }

    /// Tokens gained per second.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Most tokens held (the burst).
    pub fn burst(&self) -> u32 {
        u32::try_from(self.capacity / MILLI).unwrap_or(u32::MAX)
    }

    /// Thousandths held at `now`, without changing the bucket.
    fn level_at(&self, now: Millis) -> u64 {
        let elapsed = now.saturating_sub(self.last);
        let gained = elapsed.saturating_mul(u64::from(self.rate));
        self.level.saturating_add(gained).min(self.capacity)
    }

    /// Whole tokens available at `now`.
    pub fn available(&self, now: Millis) -> u32 {
        u32::try_from(self.level_at(now) / MILLI).unwrap_or(u32::MAX)
    }

    /// Admits one request at `now` if a token is there and takes it: `true`.
    /// `false`: over the quota; nothing is taken, so refused requests do not delay
    /// the next token.
    pub fn try_take(&mut self, now: Millis) -> bool {
        if now > self.last {
            self.level = self.level_at(now);
            self.last = now;
        }
        if self.level >= MILLI {
            self.level -= MILLI;
            true
        } else {
            false
        }
    }

    /// The first millisecond, not before `now`, at which a token is there: `now`
    /// itself if one is. `None` if none ever comes (`rate` 0 or `burst` 0).
    pub fn next_token_at(&self, now: Millis) -> Option<Millis> {
        let now = now.max(self.last);
        let level = self.level_at(now);
        if level >= MILLI {
            return Some(now);
        }
        if self.rate == 0 || self.capacity < MILLI {
            return None;
        }
        let rate = u64::from(self.rate);
        Some(now.saturating_add((MILLI - level).div_ceil(rate)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;

    /// Takes as many tokens as the bucket admits at `now`.
    fn drain(bucket: &mut TokenBucket, now: Millis) -> u32 {
        let mut taken = 0;
        while bucket.try_take(now) {
            taken += 1;
            assert!(taken <= 1_000, "a bucket that never runs dry");
        }
        taken
    }

    #[test]
    fn starts_full_with_a_burst_of_five_then_refuses() {
        let mut bucket = TokenBucket::per_second(DEFAULT_TAGGING_TPS, T0);
        assert_eq!((bucket.rate(), bucket.burst()), (5, 5));
        assert_eq!(bucket.available(T0), 5);
        for i in 0..5 {
            assert!(bucket.try_take(T0), "request {i} of the burst");
        }
        assert!(!bucket.try_take(T0), "the 6th in the same millisecond");
        assert_eq!(bucket.available(T0), 0);
    }

    #[test]
    fn one_token_every_200_ms_at_five_per_second() {
        let mut bucket = TokenBucket::per_second(5, T0);
        assert_eq!(drain(&mut bucket, T0), 5);
        assert!(!bucket.try_take(T0 + 199));
        assert_eq!(bucket.next_token_at(T0 + 199), Some(T0 + 200));
        assert!(bucket.try_take(T0 + 200));
        assert!(!bucket.try_take(T0 + 200));
        assert!(!bucket.try_take(T0 + 399));
        assert!(bucket.try_take(T0 + 400));
    }

    #[test]
    fn a_second_later_the_whole_burst_is_back_and_never_more() {
        let mut bucket = TokenBucket::per_second(5, T0);
        assert_eq!(drain(&mut bucket, T0), 5);
        assert_eq!(bucket.available(T0 + 1_000), 5);
        assert_eq!(drain(&mut bucket, T0 + 1_000), 5);
        // A long idle time refills up to the burst, not beyond.
        assert_eq!(bucket.available(T0 + 60_000), 5);
        assert_eq!(drain(&mut bucket, T0 + 60_000), 5);
    }

    #[test]
    fn steady_pacing_at_the_rate_is_never_refused() {
        let mut bucket = TokenBucket::per_second(5, T0);
        assert_eq!(drain(&mut bucket, T0), 5);
        for i in 1..=100 {
            assert!(bucket.try_take(T0 + i * 200), "paced request {i}");
        }
        // Over a long run at most burst + rate * seconds are admitted.
        let mut bucket = TokenBucket::per_second(5, T0);
        let admitted = (0..=10_000).filter(|ms| bucket.try_take(T0 + ms)).count();
        assert_eq!(admitted, 5 + 50);
    }

    #[test]
    fn refused_requests_take_nothing() {
        let mut bucket = TokenBucket::per_second(5, T0);
        assert_eq!(drain(&mut bucket, T0), 5);
        for ms in 0..200 {
            assert!(!bucket.try_take(T0 + ms), "at {ms} ms");
        }
        assert!(
            bucket.try_take(T0 + 200),
            "refusals did not push the token back"
        );
    }

    #[test]
    fn a_rate_that_does_not_divide_a_second_rounds_up_to_the_next_millisecond() {
        // 3 per second: a token every 333.3 ms, so the first one is whole at 334 ms.
        let mut bucket = TokenBucket::per_second(3, T0);
        assert_eq!(drain(&mut bucket, T0), 3);
        assert_eq!(bucket.next_token_at(T0), Some(T0 + 334));
        assert!(!bucket.try_take(T0 + 333));
        assert!(bucket.try_take(T0 + 334));
        // The fraction carries over: three tokens in exactly one second.
        assert_eq!(drain(&mut bucket, T0 + 1_000), 2);
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let mut bucket = TokenBucket::per_second(5, T0);
        assert_eq!(drain(&mut bucket, T0 + 1_000), 5);
        assert!(!bucket.try_take(T0), "an earlier now is no time passed");
        assert!(!bucket.try_take(T0 + 1_199));
        assert!(
            bucket.try_take(T0 + 1_200),
            "refills from the latest now seen"
        );
        assert_eq!(bucket.next_token_at(T0), Some(T0 + 1_400));
    }

    #[test]
    fn extreme_clocks_do_not_overflow() {
        let mut bucket = TokenBucket::per_second(u32::MAX, 0);
        assert!(bucket.try_take(Millis::MAX));
        assert_eq!(bucket.available(Millis::MAX), u32::MAX - 1);
        let mut bucket = TokenBucket::per_second(5, 0);
        assert_eq!(drain(&mut bucket, Millis::MAX), 5);
        assert_eq!(bucket.next_token_at(Millis::MAX), Some(Millis::MAX));
    }

    #[test]
    fn empty_or_never_refilled_buckets() {
        let mut none = TokenBucket::new(5, 0, T0);
        assert!(!none.try_take(T0 + 10_000));
        assert_eq!(none.next_token_at(T0), None);
        let mut once = TokenBucket::new(0, 2, T0);
        assert_eq!(drain(&mut once, T0 + 10_000), 2);
        assert_eq!(once.next_token_at(T0 + 10_000), None);
    }

    #[test]
    fn only_the_three_tagging_actions_are_counted() {
        for target in [
            "AmazonSQS.TagQueue",
            "AmazonSQS.UntagQueue",
            "AmazonSQS.ListQueueTags",
            "ListQueueTags",
        ] {
            assert!(is_tagging_action(target), "{target}");
        }
        for target in [
            "AmazonSQS.CreateQueue",
            "AmazonSQS.SendMessage",
            "AmazonSQS.ListQueues",
            "AmazonSQS.tagqueue",
            "AmazonSQS.TagQueueX",
            "",
        ] {
            assert!(!is_tagging_action(target), "{target}");
        }
    }
}
