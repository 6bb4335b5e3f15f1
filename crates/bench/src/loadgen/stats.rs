//! Statistics: percentiles of latency samples, and [`Rounds`], the per-round
//! values of each named metric, reported as medians.

use std::time::Duration;

use serde_json::{Value, json};

pub(super) fn percentile_us(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64) * p).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1].as_secs_f64() * 1e6
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Per-round values of named metrics; reported as medians.
#[derive(Default)]
pub(super) struct Rounds(Vec<(String, Vec<f64>)>);

impl Rounds {
    pub(super) fn push(&mut self, name: &str, value: f64) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(value),
            None => self.0.push((name.to_owned(), vec![value])),
        }
    }

    pub(super) fn median(&self, name: &str) -> f64 {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or(f64::NAN, |(_, v)| median(v))
    }

    pub(super) fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for (name, values) in &self.0 {
            map.insert(
                name.clone(),
                json!({ "median": median(values), "rounds": values }),
            );
        }
        Value::Object(map)
    }
}
