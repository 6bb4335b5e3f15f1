//! `bench-report --svg-queues`: the barrier's queue counts over time, from
//! the `queue_series` of runs with `bench --sample-queues`. Per run, a row
//! of two panels: the messages of each queue (visible solid, in flight
//! dashed) and the episodes completed per second between samples. A table
//! says whether the counts stayed flat: the largest counts in the first and
//! the second half of the run.

use std::fmt::Write as _;

use serde_json::Value;

use super::xml::esc;

/// One sample: seconds, episodes complete, visible and in flight per queue.
type Sample = (f64, f64, Vec<f64>, Vec<f64>);

/// One sampled run.
pub(super) struct Run {
    title: String,
    queues: Vec<String>,
    samples: Vec<Sample>,
    errors: u64,
}

/// The sampled run of a `bench --json` line, if it has a series.
pub(super) fn run(v: &Value) -> Option<Run> {
    let q = v.get("queue_series")?;
    let nums =
        |x: &Value| -> Option<Vec<f64>> { x.as_array()?.iter().map(Value::as_f64).collect() };
    let samples = q
        .get("samples")?
        .as_array()?
        .iter()
        .map(|s| {
            Some((
                s.get("t_s")?.as_f64()?,
                s.get("episodes")?.as_f64()?,
                nums(s.get("visible")?)?,
                nums(s.get("in_flight")?)?,
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    let queues: Vec<String> = q
        .get("queues")?
        .as_array()?
        .iter()
        .map(|x| x.as_str().map(short))
        .collect::<Option<_>>()?;
    let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let limit = v
        .get("duration_limit_s")
        .and_then(Value::as_f64)
        .map_or(String::new(), |d| format!(", {d} s"));
    Some(Run {
        title: format!(
            "N = {}, {} episodes{limit}, {} ({} process(es))",
            f("parties"),
            f("episodes"),
            v.get("endpoint").and_then(Value::as_str).unwrap_or("?"),
            f("processes"),
        ),
        queues,
        samples,
        errors: q.get("errors").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// `bench-1234abcd-release-0` → `release-0`.
fn short(q: &str) -> String {
    let parts: Vec<&str> = q.split('-').collect();
    match parts.as_slice() {
        [.., "release", p] => format!("release-{p}"),
        [.., last] => (*last).to_owned(),
        [] => q.to_owned(),
    }
}

fn max(it: impl Iterator<Item = f64>) -> f64 {
    it.fold(0.0, f64::max)
}

/// The Markdown table: per run and queue, the largest counts over the run
/// and in its first and second half (by time).
pub(super) fn table(runs: &[Run]) -> String {
    let mut s = String::from(
        "\nQueue counts over time (`--sample-queues`): the largest count over the run, and in its first / second half.\n\n\
         | run | samples | failed reads | episodes/s, 1st / 2nd half | queue | visible max | 1st / 2nd half | in flight max | 1st / 2nd half |\n\
         |---|---:|---:|---:|---|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let Some(t_end) = r.samples.last().map(|x| x.0) else {
            continue;
        };
        let mid = t_end / 2.0;
        let (first, second): (Vec<_>, Vec<_>) = r.samples.iter().partition(|s| s.0 <= mid);
        let rate = |a: Option<&&Sample>, b: Option<&&Sample>| match (a, b) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) / (b.0 - a.0),
            _ => 0.0,
        };
        let rates = format!(
            "{:.1} / {:.1}",
            rate(first.first(), first.last()),
            rate(first.last(), second.last())
        );
        for (i, q) in r.queues.iter().enumerate() {
            let m =
                |v: &[&Sample], vis: bool| max(v.iter().map(|s| if vis { s.2[i] } else { s.3[i] }));
            let all: Vec<_> = r.samples.iter().collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {q} | {} | {} / {} | {} | {} / {} |",
                r.title,
                r.samples.len(),
                r.errors,
                rates,
                m(&all, true),
                m(&first, true),
                m(&second, true),
                m(&all, false),
                m(&first, false),
                m(&second, false),
            );
        }
    }
    s
}

const COLORS: [&str; 5] = ["#8c564b", "#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
const W: f64 = 460.0;
const H: f64 = 330.0;
const LEFT: f64 = 60.0;
const TOP: f64 = 50.0;
const PW: f64 = 370.0;
const PH: f64 = 220.0;

/// A round step for about five ticks up to `hi`.
fn step(hi: f64) -> f64 {
    let raw = (hi / 5.0).max(1e-9);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

/// A panel of a row: x = seconds, y linear from 0.
struct Panel {
    x0: f64,
    y0: f64,
    hi_x: f64,
    hi_y: f64,
}

impl Panel {
    fn x(&self, t: f64) -> f64 {
        self.x0 + LEFT + t / self.hi_x.max(1e-9) * PW
    }
    fn y(&self, v: f64) -> f64 {
        self.y0 + TOP + PH - v / self.hi_y.max(1e-9) * PH
    }

    fn axes(&self, s: &mut String, title: &str, y_label: &str) {
        let (x0, top, bottom) = (self.x0 + LEFT, self.y0 + TOP, self.y0 + TOP + PH);
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" font-weight="bold">{}</text><rect x="{x0}" y="{top}" width="{PW}" height="{PH}" fill="none" stroke="#333"/>"##,
            self.x0 + 10.0,
            top - 10.0,
            esc(title)
        );
        let sx = step(self.hi_x);
        let mut t = 0.0;
        while t <= self.hi_x + 1e-9 {
            let x = self.x(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{t}</text>"##,
                bottom + 16.0
            );
            t += sx;
        }
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle">seconds</text>"##,
            x0 + PW / 2.0,
            bottom + 32.0
        );
        let sy = step(self.hi_y);
        let mut v = 0.0;
        while v <= self.hi_y + 1e-9 {
            let y = self.y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v}</text>"##,
                x0 + PW,
                x0 - 6.0,
                y + 4.0
            );
            v += sy;
        }
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" font-size="11">{}</text>"##,
            x0 + 4.0,
            top + 12.0,
            esc(y_label)
        );
    }

    fn line(&self, s: &mut String, pts: &[(f64, f64)], color: &str, dash: Option<&str>) {
        let path: Vec<String> = pts
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", self.x(*t), self.y(*v)))
            .collect();
        let dash = dash.map_or(String::new(), |d| format!(r#" stroke-dasharray="{d}""#));
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"{dash}/>"#,
            path.join(" ")
        );
    }
}

/// The chart: one row of two panels per run.
pub(super) fn svg(runs: &[Run]) -> String {
    let total_h = H * runs.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{total_h}" viewBox="0 0 {w} {total_h}" font-family="sans-serif" font-size="12">"#,
        w = 2.0 * W
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (row, r) in runs.iter().enumerate() {
        let y0 = H * row as f64;
        let hi_x = max(r.samples.iter().map(|x| x.0)).max(1.0);
        let hi_msgs = max(r
            .samples
            .iter()
            .flat_map(|x| x.2.iter().chain(&x.3).copied()))
        .max(4.0);
        let rates: Vec<(f64, f64)> = r
            .samples
            .windows(2)
            .filter(|w| w[1].0 > w[0].0)
            .map(|w| (w[1].0, (w[1].1 - w[0].1) / (w[1].0 - w[0].0)))
            .collect();
        let msgs = Panel {
            x0: 0.0,
            y0,
            hi_x,
            hi_y: hi_msgs + step(hi_msgs) / 2.0,
        };
        let hi_rate = max(rates.iter().map(|x| x.1)).max(1.0);
        let eps = Panel {
            x0: W,
            y0,
            hi_x,
            hi_y: hi_rate * 1.1,
        };
        let _ = writeln!(
            s,
            r##"<text x="10" y="{}" font-weight="bold" font-size="13">{}</text>"##,
            y0 + 18.0,
            esc(&r.title)
        );
        msgs.axes(
            &mut s,
            "messages per queue — solid: visible, dashed: in flight",
            "messages",
        );
        eps.axes(&mut s, "episodes completed per second", "episodes/s");
        for (i, q) in r.queues.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let vis: Vec<(f64, f64)> = r.samples.iter().map(|x| (x.0, x.2[i])).collect();
            let fly: Vec<(f64, f64)> = r.samples.iter().map(|x| (x.0, x.3[i])).collect();
            msgs.line(&mut s, &vis, c, None);
            msgs.line(&mut s, &fly, c, Some("5,3"));
            let lx = LEFT + 90.0 * i as f64;
            let ly = y0 + TOP + PH + 48.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
                lx + 18.0,
                lx + 22.0,
                ly + 4.0,
                esc(q)
            );
        }
        eps.line(&mut s, &rates, "#333", None);
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(step(10.0), 2.0);
        assert_eq!(step(600.0), 200.0);
        assert_eq!(step(4.0), 1.0);
        assert_eq!(step(2300.0), 500.0);
    }

    #[test]
    fn short_names() {
        assert_eq!(short("bench-1a2b3c4d-release-1"), "release-1");
        assert_eq!(short("bench-1a2b3c4d-checkin"), "checkin");
        assert_eq!(short("bench-1a2b3c4d-dlq"), "dlq");
    }
}
