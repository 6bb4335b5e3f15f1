//! A latency model: a delay added to every response, as one in-region round trip to
//! SQS would add it.
//!
//! ```text
//! SPEC := DURATION | DURATION '..' DURATION     e.g. 10ms, 5ms..20ms (uniform)
//! DURATION := INTEGER ('us' | 'ms' | 's')
//! ```
//!
//! The server sleeps inside the request's own future after the operation has run, so
//! other requests go on meanwhile, and a long poll waits its full time and is answered
//! late, not woken late. It does not model bandwidth, server-side queueing, tail
//! latency or throttling.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A fixed delay or a uniform range of delays, parsed from a SPEC (see the
/// [module documentation](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencySpec {
    min: Duration,
    max: Duration,
}

/// Why a latency SPEC was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid latency {spec:?}: {reason} (expected a duration such as 10ms or a range such as 5ms..20ms)"
)]
pub struct LatencySpecError {
    spec: String,
    reason: String,
}

impl LatencySpec {
    /// The same delay for every response.
    pub fn fixed(delay: Duration) -> Self {
        LatencySpec {
            min: delay,
            max: delay,
        }
    }

    /// A delay drawn uniformly from `min..=max` for each response; `None` if
    /// `min > max`.
    pub fn uniform(min: Duration, max: Duration) -> Option<Self> {
        (min <= max).then_some(LatencySpec { min, max })
    }

    /// The shortest delay.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The longest delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Draws one delay.
    pub fn sample(&self) -> Duration {
        if self.min == self.max {
            return self.min;
        }
        // Nanoseconds fit in u64 for any delay under 584 years.
        let lo = u64::try_from(self.min.as_nanos()).unwrap_or(u64::MAX);
        let hi = u64::try_from(self.max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(lo..=hi))
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration is missing".to_owned());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (us, ms or s)"))?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!("{text:?} does not start with a number"));
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{digits:?} is too large"))?;
    let delay = match unit {
        "us" => Duration::from_micros(value),
        "ms" => Duration::from_millis(value),
        "s" => Duration::from_secs(value),
        other => return Err(format!("unknown unit {other:?} (use us, ms or s)")),
    };
    // A latency model, not a way to hang clients: keep it below SDK timeouts.
    if delay > Duration::from_secs(60) {
        return Err(format!("{text:?} is longer than 60s"));
    }
    Ok(delay)
}

impl FromStr for LatencySpec {
    type Err = LatencySpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| LatencySpecError {
            spec: spec.to_owned(),
            reason,
        };
        match spec.split_once("..") {
            None => parse_duration(spec).map(LatencySpec::fixed).map_err(error),
            Some((lo, hi)) => {
                let lo = parse_duration(lo).map_err(error)?;
                let hi = parse_duration(hi).map_err(error)?;
                LatencySpec::uniform(lo, hi)
                    .ok_or_else(|| error("the range's start is after its end".to_owned()))
            }
        }
    }
}

impl fmt::Display for LatencySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = |d: Duration| {
            if !d.subsec_nanos().is_multiple_of(1_000_000) {
                format!("{}us", d.as_micros())
            } else {
                format!("{}ms", d.as_millis())
            }
        };
        if self.min == self.max {
            f.write_str(&one(self.min))
        } else {
            write!(f, "{}..{}", one(self.min), one(self.max))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixed_and_ranges() {
        let ms = Duration::from_millis;
        assert_eq!("10ms".parse(), Ok(LatencySpec::fixed(ms(10))));
        assert_eq!("0ms".parse(), Ok(LatencySpec::fixed(ms(0))));
        assert_eq!("1s".parse(), Ok(LatencySpec::fixed(ms(1000))));
        assert_eq!(
            "250us".parse(),
            Ok(LatencySpec::fixed(Duration::from_micros(250)))
        );
        assert_eq!(
            " 5ms..20ms ".parse(),
            Ok(LatencySpec::uniform(ms(5), ms(20)).unwrap())
        );
        assert_eq!(
            "5ms..5ms".parse::<LatencySpec>().unwrap(),
            LatencySpec::fixed(ms(5))
        );
        for text in ["10ms", "5ms..20ms", "250us", "1000ms"] {
            assert_eq!(text.parse::<LatencySpec>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn malformed_specs_say_what_is_wrong() {
        for (spec, says) in [
            ("", "a duration is missing"),
            ("10", "no unit"),
            ("ms", "does not start with a number"),
            ("10 ms", "unknown unit"),
            ("10min", "unknown unit"),
            ("-5ms", "does not start with a number"),
            ("1.5ms", "unknown unit"),
            ("20ms..5ms", "start is after its end"),
            ("5ms..", "a duration is missing"),
            ("5ms..10ms..20ms", "unknown unit"),
            ("61s", "longer than 60s"),
            ("99999999999999999999999ms", "too large"),
        ] {
            let message = spec.parse::<LatencySpec>().unwrap_err().to_string();
            assert!(message.contains(says), "{spec:?}: {message}");
            assert!(message.contains("such as 10ms"), "{spec:?}: {message}");
        }
    }

    #[test]
    fn samples_stay_in_the_range_and_vary() {
        let spec: LatencySpec = "5ms..20ms".parse().unwrap();
        let samples: Vec<Duration> = (0..1000).map(|_| spec.sample()).collect();
        assert!(
            samples
                .iter()
                .all(|d| (spec.min()..=spec.max()).contains(d))
        );
        let below_mid = samples
            .iter()
            .filter(|d| **d < Duration::from_micros(12_500))
            .count();
        // Uniform: about half below the midpoint (the chance of leaving 350..650 is
        // astronomically small).
        assert!((350..650).contains(&below_mid), "{below_mid}");
        assert_eq!(
            LatencySpec::fixed(Duration::from_millis(7)).sample(),
            Duration::from_millis(7)
        );
    }
}
