//! `sqs-barrier bench-report`: `bench --json` lines to a Markdown table and
//! a hand-written SVG line chart (release p50 and requests per
//! participant-episode against N); the table shows release p50 as a
//! multiple of the fan-out floor and tagging actions per
//! participant-episode where a line has them; runs with `--work` get a
//! second table,
//! the cost of waiting, and runs with `--sample-queues` a third, and a chart
//! of their own (`--svg-queues`, see `queue_chart`). `xml` holds what both
//! charts use.

mod queue_chart;
mod xml;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use self::xml::esc;
use crate::Failed;
use crate::args::BenchReportArgs;

/// One point of a series.
#[derive(Clone, Debug)]
struct Row {
    series: String,
    n: f64,
    p50: f64,
    p99: f64,
    handoff: f64,
    ratio: f64,
    /// Release p50 / fan-out floor p50 (lines of versions before it: none).
    floor_ratio: Option<f64>,
    requests: f64,
    /// Tagging actions per participant-episode (idem).
    tagging: Option<f64>,
    eps: f64,
    episodes: u64,
    waiting: Option<WaitingRow>,
}

/// The cost of waiting, of a run with `--work`.
#[derive(Clone, Debug)]
struct WaitingRow {
    work: f64,
    mean_wait: f64,
    checkin: f64,
    per_wait: f64,
    per_minute: f64,
    receives_per_minute: f64,
    coordinator: f64,
    open: Option<f64>,
    quiet: Option<f64>,
    idle: Option<f64>,
}

fn waiting_row(v: &Value) -> Option<WaitingRow> {
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    let rate = |k: &str| v.get(k)?.get("requests_per_minute")?.as_f64();
    let work = f("work_s").filter(|w| *w > 0.0)?;
    let w = v.get("waiting")?;
    Some(WaitingRow {
        work,
        mean_wait: f("waiting_mean_s")?,
        checkin: f("checkin_requests_per_participant_episode")?,
        per_wait: f("waiting_requests_per_participant_episode")?,
        per_minute: w.get("requests_per_minute")?.as_f64()?,
        receives_per_minute: w
            .get("by_operation")?
            .get("ReceiveMessage")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        coordinator: rate("coordinator")?,
        open: rate("coordinator_open"),
        quiet: rate("coordinator_quiet"),
        idle: rate("coordinator_idle"),
    })
}

fn row(v: &Value) -> Option<Row> {
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    let endpoint = v.get("endpoint")?.as_str()?;
    let mode = v.get("mode")?.as_str()?;
    Some(Row {
        series: format!("{mode} @ {endpoint}"),
        n: f("parties")?,
        p50: f("release_p50_ms")?,
        p99: f("release_p99_ms")?,
        handoff: f("handoff_p50_ms")?,
        ratio: f("ratio_to_handoff")?,
        floor_ratio: f("ratio_to_fanout_floor"),
        requests: f("requests_per_participant_episode")?,
        tagging: f("tagging_actions_per_participant_episode"),
        eps: f("episodes_per_second")?,
        episodes: v.get("episodes")?.as_u64()?,
        waiting: waiting_row(v),
    })
}

/// Runs `bench-report`: prints the tables and writes the charts, or says
/// why it cannot.
pub(crate) fn report(a: BenchReportArgs) -> Result<(), Failed> {
    let mut rows = Vec::new();
    let mut sampled = Vec::new();
    for f in &a.files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("sqs-barrier bench-report: {}: {e}", f.display());
                return Err(Failed::Usage);
            }
        };
        for v in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            rows.extend(row(&v));
            sampled.extend(queue_chart::run(&v));
        }
    }
    if rows.is_empty() {
        eprintln!("sqs-barrier bench-report: no `bench --json` lines found");
        return Err(Failed::Usage);
    }
    print!("{}", table(&rows));
    if !sampled.is_empty() {
        print!("{}", queue_chart::table(&sampled));
    }
    let mut charts = Vec::new();
    if let Some(path) = &a.svg {
        charts.push((path, svg(&rows)));
    }
    if let Some(path) = &a.svg_queues {
        if sampled.is_empty() {
            eprintln!(
                "sqs-barrier bench-report: --svg-queues: no run with `bench --sample-queues` found"
            );
            return Err(Failed::Usage);
        }
        charts.push((path, queue_chart::svg(&sampled)));
    }
    for (path, chart) in charts {
        if let Err(e) = std::fs::write(path, chart) {
            eprintln!("sqs-barrier bench-report: {}: {e}", path.display());
            return Err(Failed::Infrastructure);
        }
        eprintln!("sqs-barrier bench-report: wrote {}", path.display());
    }
    Ok(())
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| series | N | episodes | release p50 ms | release p99 ms | hand-off p50 ms | p50 / hand-off | p50 / fan-out floor | requests / participant-episode | tagging actions / participant-episode | episodes/s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let opt =
        |x: Option<f64>, digits: usize| x.map_or("n/a".to_owned(), |v| format!("{v:.digits$}"));
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.3} | {} | {:.1} |",
            r.series,
            r.n,
            r.episodes,
            r.p50,
            r.p99,
            r.handoff,
            r.ratio,
            opt(r.floor_ratio, 2),
            r.requests,
            opt(r.tagging, 3),
            r.eps
        );
    }
    if rows.iter().any(|r| r.waiting.is_some()) {
        s.push_str(
            "\nCost of waiting (`--work`): requests per minute of waiting are the participants' requests from their check-in sent until their wait returned, over the participant-minutes waited.\n\n\
             | series | N | episodes | work s | mean wait s | check-in requests / participant-episode | waiting requests / participant-episode | participant requests / min of waiting | of which ReceiveMessage | coordinator requests / min | while open | of which quiet (3 s after an arrival on) | while idle |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let one = |x: Option<f64>| opt(x, 1);
        for r in rows {
            let Some(w) = &r.waiting else { continue };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.2} | {:.3} | {:.3} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
                r.series,
                r.n,
                r.episodes,
                w.work,
                w.mean_wait,
                w.checkin,
                w.per_wait,
                w.per_minute,
                w.receives_per_minute,
                w.coordinator,
                one(w.open),
                one(w.quiet),
                one(w.idle)
            );
        }
    }
    s
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];
const W: f64 = 460.0;
const H: f64 = 320.0;
const LEFT: f64 = 60.0;
const TOP: f64 = 40.0;
const PW: f64 = 370.0;
const PH: f64 = 230.0;

/// A panel: x = log10 N; y linear or log10.
struct Panel {
    x0: f64,
    lo_x: f64,
    hi_x: f64,
    lo_y: f64,
    hi_y: f64,
    log_y: bool,
}

impl Panel {
    fn x(&self, n: f64) -> f64 {
        let t = (n.log10() - self.lo_x) / (self.hi_x - self.lo_x).max(1e-9);
        self.x0 + LEFT + t * PW
    }
    fn y(&self, v: f64) -> f64 {
        let (v, lo, hi) = if self.log_y {
            (v.max(1e-3).log10(), self.lo_y, self.hi_y)
        } else {
            (v, self.lo_y, self.hi_y)
        };
        TOP + PH - (v - lo) / (hi - lo).max(1e-9) * PH
    }
}

fn svg(rows: &[Row]) -> String {
    let mut series: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        series.entry(&r.series).or_default().push(r);
    }
    for v in series.values_mut() {
        v.sort_by(|a, b| a.n.total_cmp(&b.n));
    }
    let lo_x = rows
        .iter()
        .map(|r| r.n)
        .fold(f64::MAX, f64::min)
        .log10()
        .floor();
    let hi_x = rows
        .iter()
        .map(|r| r.n)
        .fold(0.0, f64::max)
        .log10()
        .ceil()
        .max(lo_x + 1.0);
    let min_ms = rows
        .iter()
        .flat_map(|r| [r.p50, r.handoff])
        .fold(f64::MAX, f64::min)
        .max(1e-3);
    let max_ms = rows.iter().map(|r| r.p50).fold(0.0, f64::max).max(1e-2);
    let lat = Panel {
        x0: 0.0,
        lo_x,
        hi_x,
        lo_y: min_ms.log10().floor(),
        hi_y: max_ms.log10().ceil().max(min_ms.log10().floor() + 1.0),
        log_y: true,
    };
    let max_req = rows.iter().map(|r| r.requests).fold(4.0, f64::max).ceil();
    let req = Panel {
        x0: W,
        lo_x,
        hi_x,
        lo_y: 0.0,
        hi_y: max_req,
        log_y: false,
    };
    let legend_h = 18.0 * series.len() as f64 + 10.0;
    let total_h = H + legend_h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{total_h}" viewBox="0 0 {w} {total_h}" font-family="sans-serif" font-size="12">"#,
        w = 2.0 * W
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (panel, title) in [
        (
            &lat,
            "release latency p50 (ms, log) — dashed: endpoint hand-off p50",
        ),
        (
            &req,
            "SQS requests per participant-episode — dotted: 3.0 target, 2.0 floor",
        ),
    ] {
        axes(&mut s, panel, title);
    }
    // Reference lines of the requests panel.
    for (v, dash) in [(3.0, "2,3"), (2.0, "1,4")] {
        let y = req.y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#888" stroke-dasharray="{dash}"/>"##,
            req.x0 + LEFT,
            req.x0 + LEFT + PW
        );
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        line(&mut s, &lat, pts, |r| r.p50, c, None);
        line(&mut s, &lat, pts, |r| r.handoff, c, Some("5,4"));
        line(&mut s, &req, pts, |r| r.requests, c, None);
        let y = H + 14.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{y}" x2="{x2}" y2="{y}" stroke="{c}" stroke-width="2"/><text x="{tx}" y="{ty}">{}</text>"#,
            esc(name),
            x = LEFT,
            x2 = LEFT + 24.0,
            tx = LEFT + 30.0,
            ty = y + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn axes(s: &mut String, p: &Panel, title: &str) {
    let (x0, y0) = (p.x0 + LEFT, TOP + PH);
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" font-weight="bold">{}</text>"##,
        p.x0 + 10.0,
        TOP - 18.0,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{TOP}" width="{PW}" height="{PH}" fill="none" stroke="#333"/>"##
    );
    // x ticks: decades.
    let mut e = p.lo_x;
    while e <= p.hi_x + 1e-9 {
        let n = 10f64.powf(e);
        let x = p.x(n);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{y0}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            y0 + 16.0,
            n
        );
        e += 1.0;
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" text-anchor="middle">participants N (log)</text>"##,
        x0 + PW / 2.0,
        y0 + 34.0
    );
    // y ticks.
    let ticks: Vec<f64> = if p.log_y {
        let mut v = Vec::new();
        let mut e = p.lo_y;
        while e <= p.hi_y + 1e-9 {
            v.push(10f64.powf(e));
            e += 1.0;
        }
        v
    } else {
        (0..=p.hi_y as usize).map(|i| i as f64).collect()
    };
    for t in ticks {
        let y = p.y(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 + PW,
            x0 - 6.0,
            y + 4.0,
            t
        );
    }
}

fn line(
    s: &mut String,
    p: &Panel,
    pts: &[&Row],
    f: impl Fn(&Row) -> f64,
    color: &str,
    dash: Option<&str>,
) {
    let path: Vec<String> = pts
        .iter()
        .map(|r| format!("{:.1},{:.1}", p.x(r.n), p.y(f(r))))
        .collect();
    let dash = dash.map_or(String::new(), |d| format!(r#" stroke-dasharray="{d}""#));
    let _ = writeln!(
        s,
        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
        path.join(" ")
    );
    if dash.is_empty() {
        for pt in &path {
            let (x, y) = pt.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
        }
    }
}
