//! Fault injection: the endpoint misbehaves the way SQS is allowed to.
//!
//! A [`ChaosSpec`] is parsed from a small text format (see `docs/ENDPOINT.md`,
//! section "Fault injection"):
//!
//! ```text
//! SPEC   := RULE (',' RULE)*
//! RULE   := SCOPE [ '[' FILTER (';' FILTER)* ']' ] '.' FAULT '=' VALUE
//! SCOPE  := any | send | receive | delete | visibility | admin
//! FILTER := 'queue=' SUFFIX       the request's queue name ends with SUFFIX
//!         | 'key=' AKID           the request is SigV4-signed with this access key id
//!         | 'from=' SECS          at least SECS seconds after the server started
//!         | 'to=' SECS            less than SECS seconds after the server started
//! VALUE  := PROB [':' RANGE]      PROB: 0..1 (0.05) or a percentage (5%)
//! RANGE  := MS | MS '-' MS        milliseconds
//! ```
//!
//! | fault         | scopes          | effect                                                        |
//! |---------------|-----------------|---------------------------------------------------------------|
//! | `throttle`    | all             | HTTP 400 `RequestThrottled` / `ThrottlingException`, not applied |
//! | `error`       | all             | HTTP 500 `InternalError` / 503 `ServiceUnavailable`, not applied |
//! | `error_after` | all             | the operation takes effect, then HTTP 500 / 503 is answered    |
//! | `slow`        | all             | the answer comes `RANGE` ms later (default 10-100)             |
//! | `delay_ms`    | all             | `delay_ms=RANGE`: shorthand for `slow=1:RANGE`                 |
//! | `late`        | send            | a sent message is visible only after `RANGE` ms (default 100-2000) |
//! | `duplicate`   | receive         | a deleted (once) or in-flight message is delivered again       |
//! | `reorder`     | receive         | messages come out starting at a random one, not the oldest     |
//! | `empty`       | receive         | an empty answer, although messages exist, after `RANGE` ms (default: a random part of the wait) |
//!
//! `any.F` applies to every operation; a rule for a scope overrides `any` for
//! that scope. `late`, `duplicate` and `reorder` leave FIFO queues alone
//! (their order and exactly-once processing are guaranteed by AWS).
//!
//! A rule with filters applies only to the requests that match all of its
//! filters (e.g. `any[queue=-state;key=coordA;from=20;to=50].error=1` cuts
//! one client off one kind of queue for 30 s, like a network partition).
//! Several rules may give the same scope and fault with different filters;
//! among the rules that match a request, one decides, the first of:
//!
//! 1. a rule of the request's own scope with filters,
//! 2. an `any` rule with filters,
//! 3. the rule of the request's own scope without filters,
//! 4. the `any` rule without filters,
//!
//! and within 1 or 2 the first one written. Its whole setting (probability
//! and range) applies; a matching rule with probability 0 exempts the request.
//!
//! Decisions come from one seeded generator per server, drawn in a fixed
//! number per request (filters do not change it), so the fault decisions of
//! a given sequence of requests are reproducible from the seed (and, with
//! `from`/`to` filters, from the times the requests arrive). Concurrent
//! clients interleave their requests differently from run to run, so a
//! concurrent run is not.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ops::Request;

mod filter;

use filter::Filters;
pub(crate) use filter::{RequestFacts, access_key_id, queue_of};

/// Which operations a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scope {
    /// `SendMessage`, `SendMessageBatch`.
    Send,
    /// `ReceiveMessage`.
    Receive,
    /// `DeleteMessage`, `DeleteMessageBatch`.
    Delete,
    /// `ChangeMessageVisibility`, `ChangeMessageVisibilityBatch`.
    Visibility,
    /// Everything else: queues, attributes, tags, purge.
    Admin,
}

impl Scope {
    const ALL: [Scope; 5] = [
        Scope::Send,
        Scope::Receive,
        Scope::Delete,
        Scope::Visibility,
        Scope::Admin,
    ];

    fn name(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::Receive => "receive",
            Scope::Delete => "delete",
            Scope::Visibility => "visibility",
            Scope::Admin => "admin",
        }
    }

    /// The scope of a decoded request.
    pub fn of(request: &Request) -> Scope {
        match request {
            Request::SendMessage(_) | Request::SendMessageBatch(_) => Scope::Send,
            Request::ReceiveMessage(_) => Scope::Receive,
            Request::DeleteMessage(_) | Request::DeleteMessageBatch(_) => Scope::Delete,
            Request::ChangeMessageVisibility(_) | Request::ChangeMessageVisibilityBatch(_) => {
                Scope::Visibility
            }
            _ => Scope::Admin,
        }
    }
}

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Fault {
    /// HTTP 400 throttling error; the operation does not happen.
    Throttle,
    /// HTTP 500/503; the operation does not happen.
    Error,
    /// HTTP 500/503 after the operation took effect.
    ErrorAfter,
    /// Added latency.
    Slow,
    /// A sent message becomes visible late.
    Late,
    /// A message is delivered again.
    Duplicate,
    /// Messages come out of order.
    Reorder,
    /// An empty receive although messages exist.
    Empty,
}

impl Fault {
    const ALL: [Fault; 8] = [
        Fault::Throttle,
        Fault::Error,
        Fault::ErrorAfter,
        Fault::Slow,
        Fault::Late,
        Fault::Duplicate,
        Fault::Reorder,
        Fault::Empty,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::Error => "error",
            Fault::ErrorAfter => "error_after",
            Fault::Slow => "slow",
            Fault::Late => "late",
            Fault::Duplicate => "duplicate",
            Fault::Reorder => "reorder",
            Fault::Empty => "empty",
        }
    }

    /// The only scope the fault makes sense for, if it is limited to one.
    fn only_scope(self) -> Option<Scope> {
        match self {
            Fault::Late => Some(Scope::Send),
            Fault::Duplicate | Fault::Reorder | Fault::Empty => Some(Scope::Receive),
            _ => None,
        }
    }

    fn default_range(self) -> Option<(u64, u64)> {
        match self {
            Fault::Slow => Some((10, 100)),
            Fault::Late => Some((100, 2000)),
            _ => None,
        }
    }

    fn takes_range(self) -> bool {
        matches!(self, Fault::Slow | Fault::Late | Fault::Empty)
    }
}

/// One fault's setting: a probability and, for timed faults, a range of
/// milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    /// Probability per request (per message for `late`), 0..=1.
    pub probability: f64,
    /// Milliseconds, inclusive; `None` for the fault's default.
    pub range_ms: Option<(u64, u64)>,
}

/// A parse error of a chaos spec, naming the rule at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid chaos rule {rule:?}: {reason}")]
pub struct ChaosSpecError {
    /// The rule as written.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One rule of a spec.
#[derive(Clone, Debug, PartialEq)]
struct Rule {
    /// `None` is `any`.
    scope: Option<Scope>,
    fault: Fault,
    filters: Filters,
    setting: Setting,
}

impl Rule {
    /// Precedence among the rules matching a request: lower wins (see the
    /// module documentation).
    fn rank(&self) -> u8 {
        u8::from(self.filters.is_empty()) * 2 + u8::from(self.scope.is_none())
    }
}

/// Which faults to inject, and how often. Parse one with [`str::parse`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChaosSpec {
    /// Kept in the order written: it decides among filtered rules, and
    /// `Display` keeps it.
    rules: Vec<Rule>,
}

impl ChaosSpec {
    /// The setting of `fault` for operations of `scope` given by the rules
    /// without filters (a scope's own rule, else the `any` rule).
    pub fn setting(&self, scope: Scope, fault: Fault) -> Option<Setting> {
        self.decide_among(scope, fault, |rule| rule.filters.is_empty())
    }

    /// The setting of `fault` for a request of `scope` with these facts,
    /// `elapsed` after the server started (see the module documentation for
    /// which rule decides).
    pub(crate) fn setting_for(
        &self,
        scope: Scope,
        fault: Fault,
        facts: &RequestFacts,
        elapsed: Duration,
    ) -> Option<Setting> {
        self.decide_among(scope, fault, |rule| rule.filters.matches(facts, elapsed))
    }

    fn decide_among(
        &self,
        scope: Scope,
        fault: Fault,
        applies: impl Fn(&Rule) -> bool,
    ) -> Option<Setting> {
        self.rules
            .iter()
            .filter(|r| r.fault == fault && r.scope.is_none_or(|s| s == scope))
            .filter(|r| applies(r))
            // The first of the lowest rank: the first written among equals.
            .min_by_key(|r| r.rank())
            .map(|r| r.setting)
    }

    /// Whether some rule gives `fault` to `scope` (with any filters, with any
    /// probability).
    fn mentions(&self, scope: Scope, fault: Fault) -> bool {
        self.rules
            .iter()
            .any(|r| r.fault == fault && r.scope.is_none_or(|s| s == scope))
    }

    /// Whether some rule filters on queues.
    pub(crate) fn filters_queues(&self) -> bool {
        self.rules.iter().any(|r| r.filters.queue.is_some())
    }

    /// Whether some rule filters on access keys.
    pub(crate) fn filters_keys(&self) -> bool {
        self.rules.iter().any(|r| r.filters.key.is_some())
    }

    /// Whether no fault is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.iter().all(|r| r.setting.probability == 0.0)
    }
}

fn parse_probability(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.strip_suffix('%') {
        Some(p) => (p.trim(), 100.0),
        None => (text, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a probability (write 0.05 or 5%)"))?;
    let p = value / scale;
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return Err(format!("probability {text} is outside 0..1 (0%..100%)"));
    }
    Ok(p)
}

fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let ms = |t: &str| {
        t.trim()
            .parse::<u64>()
            .ok()
            .filter(|v| *v <= 600_000)
            .ok_or_else(|| format!("{t:?} is not a number of milliseconds (0..=600000)"))
    };
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (ms(a)?, ms(b)?),
        None => {
            let v = ms(text)?;
            (v, v)
        }
    };
    if a > b {
        return Err(format!("range {text} runs backwards"));
    }
    Ok((a, b))
}

/// Splits a spec at the commas outside brackets.
fn split_rules(text: &str) -> Vec<&str> {
    let mut rules = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                rules.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    rules.push(&text[start..]);
    rules
}

/// Parses one (trimmed) rule.
fn parse_rule(rule: &str) -> Result<Rule, String> {
    const SHAPE: &str = "expected SCOPE.FAULT=VALUE or SCOPE[FILTER;...].FAULT=VALUE";
    let scope_end = rule.find(['[', '.', '=']).ok_or(SHAPE)?;
    let scope_name = &rule[..scope_end];
    let mut rest = &rule[scope_end..];
    let mut filters = Filters::default();
    if let Some(after) = rest.strip_prefix('[') {
        let close = after
            .find(']')
            .ok_or("'[' without ']': write SCOPE[FILTER;...].FAULT=VALUE")?;
        let inside = &after[..close];
        if inside.contains('[') {
            return Err("'[' inside filters".into());
        }
        filters = Filters::parse(inside)?;
        rest = &after[close + 1..];
        if !rest.starts_with('.') {
            return Err("expected '.FAULT=VALUE' after ']'".into());
        }
    }
    let (fault_name, value) = rest
        .strip_prefix('.')
        .and_then(|r| r.split_once('='))
        .ok_or(SHAPE)?;
    let fault_name = fault_name.trim();
    let scope = match scope_name {
        "any" => None,
        name => Some(
            Scope::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown scope {name:?}; scopes: any, send, receive, delete, visibility, admin"
                    )
                })?,
        ),
    };
    let value = value.trim();
    let (fault, setting) = if fault_name == "delay_ms" {
        let range = parse_range(value)?;
        (
            Fault::Slow,
            Setting {
                probability: 1.0,
                range_ms: Some(range),
            },
        )
    } else {
        let fault = Fault::ALL
            .into_iter()
            .find(|f| f.name() == fault_name)
            .ok_or_else(|| {
                format!(
                    "unknown fault {fault_name:?}; faults: throttle, error, error_after, slow, delay_ms, late, duplicate, reorder, empty"
                )
            })?;
        let (probability, range) = match value.split_once(':') {
            Some((p, r)) => (p.trim(), Some(r.trim())),
            None => (value, None),
        };
        let probability = parse_probability(probability)?;
        let range_ms = match range {
            Some(_) if !fault.takes_range() => {
                return Err(format!("{fault_name} takes no range of milliseconds"));
            }
            Some(r) => Some(parse_range(r)?),
            None => None,
        };
        (
            fault,
            Setting {
                probability,
                range_ms,
            },
        )
    };
    if let Some(only) = fault.only_scope()
        && scope != Some(only)
    {
        return Err(format!(
            "{} applies to {} only: write {}.{}",
            fault.name(),
            only.name(),
            only.name(),
            fault.name()
        ));
    }
    Ok(Rule {
        scope,
        fault,
        filters,
        setting,
    })
}

impl FromStr for ChaosSpec {
    type Err = ChaosSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut spec = ChaosSpec::default();
        if text.trim().is_empty() {
            return Err(ChaosSpecError {
                rule: String::new(),
                reason: "the spec is empty; write e.g. receive.duplicate=0.05,any.error=0.01"
                    .into(),
            });
        }
        for raw in split_rules(text) {
            let rule = raw.trim();
            let fail = |reason: String| ChaosSpecError {
                rule: rule.to_owned(),
                reason,
            };
            let parsed = parse_rule(rule).map_err(fail)?;
            if spec.rules.iter().any(|r| {
                r.scope == parsed.scope && r.fault == parsed.fault && r.filters == parsed.filters
            }) {
                return Err(fail(format!(
                    "{}{}.{} is given twice",
                    parsed.scope.map_or("any", Scope::name),
                    parsed.filters,
                    parsed.fault.name()
                )));
            }
            spec.rules.push(parsed);
        }
        Ok(spec)
    }
}

impl fmt::Display for ChaosSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(
                f,
                "{}{}.{}={}",
                rule.scope.map_or("any", Scope::name),
                rule.filters,
                rule.fault.name(),
                rule.setting.probability
            )?;
            if let Some((a, b)) = rule.setting.range_ms {
                write!(f, ":{a}-{b}")?;
            }
        }
        Ok(())
    }
}

/// How many faults of each kind a server injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ChaosCounts {
    /// Throttling errors answered.
    pub throttle: u64,
    /// 5xx answered before the operation took effect.
    pub error: u64,
    /// 5xx answered after the operation took effect.
    pub error_after: u64,
    /// Responses slowed down.
    pub slow: u64,
    /// Messages made visible late.
    pub late: u64,
    /// In-flight messages delivered again (visibility lapsed early).
    pub duplicate: u64,
    /// Deleted messages delivered again.
    pub resurrected: u64,
    /// Receives that started at a random message.
    pub reorder: u64,
    /// Empty (early) receive answers.
    pub empty: u64,
}

impl ChaosCounts {
    /// All faults injected.
    pub fn total(&self) -> u64 {
        self.throttle
            + self.error
            + self.error_after
            + self.slow
            + self.late
            + self.duplicate
            + self.resurrected
            + self.reorder
            + self.empty
    }
}

impl fmt::Display for ChaosCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "throttle {}, error {}, error_after {}, slow {}, late {}, duplicate {}, resurrected {}, reorder {}, empty {}",
            self.throttle,
            self.error,
            self.error_after,
            self.slow,
            self.late,
            self.duplicate,
            self.resurrected,
            self.reorder,
            self.empty
        )
    }
}

/// Counter slots, one per [`Counted`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counted {
    Throttle,
    Error,
    ErrorAfter,
    Slow,
    Late,
    Duplicate,
    Resurrected,
    Reorder,
    Empty,
}

/// SplitMix64: tiny, seedable, and stable across dependency versions.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The faults decided for one request. Every request draws the same number
/// of values, whatever its scope, so decisions depend only on the seed and
/// the order of requests.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Decision {
    /// Answer a throttling error (which of two codes).
    pub throttle: Option<bool>,
    /// Answer 500 (false) or 503 (true) before applying.
    pub error: Option<bool>,
    /// Answer 500 (false) or 503 (true) after applying.
    pub error_after: Option<bool>,
    /// Added latency, ms.
    pub slow_ms: Option<u64>,
    /// Receive: answer empty after this fraction of the wait (or these ms).
    pub empty: Option<EmptyAfter>,
    /// Receive: redeliver a message; the value picks which.
    pub duplicate: Option<usize>,
    /// Receive: start at this (modulo) visible message.
    pub reorder: Option<usize>,
    /// Send: the `late` setting of the rule that decides for this request.
    pub late: Option<Setting>,
}

/// When an injected empty answer comes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum EmptyAfter {
    /// This fraction of the request's wait.
    Fraction(f64),
    /// These many milliseconds (at most the wait).
    Millis(u64),
}

/// The per-server fault injector.
#[derive(Debug)]
pub(crate) struct Chaos {
    spec: ChaosSpec,
    seed: u64,
    rng: Mutex<Rng>,
    counts: [AtomicU64; 9],
    /// When the server started: the origin of `from=` and `to=`.
    started: Instant,
    /// Whether some rule gives `send.late` (then every sent message draws).
    late_drawn: bool,
}

fn pick_in(rng: &mut Rng, (a, b): (u64, u64)) -> u64 {
    a + rng.next_u64() % (b - a + 1)
}

impl Chaos {
    pub fn new(spec: ChaosSpec, seed: u64) -> Self {
        Chaos {
            late_drawn: spec.mentions(Scope::Send, Fault::Late),
            spec,
            seed,
            rng: Mutex::new(Rng(seed)),
            counts: Default::default(),
            started: Instant::now(),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn spec(&self) -> &ChaosSpec {
        &self.spec
    }

    /// Whether deleted messages must be remembered for `duplicate` (by some
    /// rule, whatever its filters).
    pub fn resurrects(&self) -> bool {
        self.spec.rules.iter().any(|r| {
            r.fault == Fault::Duplicate
                && r.scope == Some(Scope::Receive)
                && r.setting.probability > 0.0
        })
    }

    /// The facts of a request the rules' filters look at: its `Authorization`
    /// header and body. Only what some rule filters on is worked out.
    pub fn facts(&self, authorization: Option<&str>, body: &[u8]) -> RequestFacts {
        RequestFacts {
            queue: if self.spec.filters_queues() {
                queue_of(body)
            } else {
                None
            },
            key: if self.spec.filters_keys() {
                authorization.and_then(access_key_id).map(str::to_owned)
            } else {
                None
            },
        }
    }

    pub fn count(&self, what: Counted) {
        self.counts[what as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> ChaosCounts {
        let c = |what: Counted| self.counts[what as usize].load(Ordering::Relaxed);
        ChaosCounts {
            throttle: c(Counted::Throttle),
            error: c(Counted::Error),
            error_after: c(Counted::ErrorAfter),
            slow: c(Counted::Slow),
            late: c(Counted::Late),
            duplicate: c(Counted::Duplicate),
            resurrected: c(Counted::Resurrected),
            reorder: c(Counted::Reorder),
            empty: c(Counted::Empty),
        }
    }

    /// Decides the faults of one request of `scope`: 14 draws, always,
    /// whatever the rules and their filters.
    pub fn decide(&self, scope: Scope, facts: &RequestFacts) -> Decision {
        let elapsed = self.started.elapsed();
        let setting = |fault| self.spec.setting_for(scope, fault, facts, elapsed);
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut draws = [0u64; 14];
        for d in &mut draws {
            *d = rng.next_u64();
        }
        drop(rng);
        let unit = |v: u64| (v >> 11) as f64 / (1u64 << 53) as f64;
        let fires = |fault: Fault, v: u64| {
            setting(fault).filter(|s| s.probability > 0.0 && unit(v) < s.probability)
        };
        let mut sub = Rng(draws[13]);
        let mut d = Decision {
            throttle: fires(Fault::Throttle, draws[0]).map(|_| draws[1] & 1 == 1),
            error: fires(Fault::Error, draws[2]).map(|_| draws[3] & 1 == 1),
            error_after: fires(Fault::ErrorAfter, draws[4]).map(|_| draws[5] & 1 == 1),
            ..Decision::default()
        };
        if let Some(s) = fires(Fault::Slow, draws[6]) {
            let range = s.range_ms.or(Fault::Slow.default_range()).unwrap_or((0, 0));
            d.slow_ms = Some(pick_in(&mut sub, range));
        }
        if let Some(s) = fires(Fault::Empty, draws[7]) {
            d.empty = Some(match s.range_ms {
                Some(range) => EmptyAfter::Millis(pick_in(&mut sub, range)),
                None => EmptyAfter::Fraction(unit(draws[8])),
            });
        }
        d.duplicate = fires(Fault::Duplicate, draws[9]).map(|_| draws[10] as usize);
        d.reorder = fires(Fault::Reorder, draws[11]).map(|_| (draws[12] >> 1) as usize);
        if scope == Scope::Send {
            d.late = setting(Fault::Late);
        }
        d
    }

    /// Decides whether one message sent by the request of `decision` is held
    /// back, and for how long (ms). Two draws per message if some rule gives
    /// `send.late`, whether it matches the request or not; none otherwise.
    pub fn late(&self, decision: &Decision) -> Option<u64> {
        if !self.late_drawn {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let (u, v) = (rng.unit(), rng.next_u64());
        drop(rng);
        let setting = decision.late?;
        if setting.probability == 0.0 || u >= setting.probability {
            return None;
        }
        let (a, b) = setting
            .range_ms
            .or(Fault::Late.default_range())
            .unwrap_or((0, 0));
        Some(a + v % (b - a + 1))
    }
}

#[cfg(test)]
mod tests;
