//! The report: the Markdown tables of the medians, embedded next to moto, with
//! the targets each figure is held to.

use super::BODY_BYTES;
use super::options::Options;
use super::stats::Rounds;

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "-".to_owned()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn row(what: &str, e: f64, m: f64, ratio: f64, target: &str) {
    println!(
        "| {what:<38} | {:>10} | {:>10} | {:>8} | {target:<22} |",
        fmt(e),
        fmt(m),
        if ratio.is_nan() {
            "-".to_owned()
        } else {
            format!("{ratio:.1}x")
        }
    );
}

/// PASS or MISS; `-` when a side was not measured (the comparison is NaN).
fn verdict(value: f64, ok: bool) -> &'static str {
    if value.is_nan() {
        "-"
    } else if ok {
        "PASS"
    } else {
        "MISS"
    }
}

pub(super) fn report(o: &Options, e: &Rounds, m: &Rounds) {
    println!();
    println!(
        "Medians over {} rounds. Ratio: embedded/moto for rates, moto/embedded for latencies (how many times faster).",
        o.rounds
    );
    println!();
    println!(
        "| {:<38} | {:>10} | {:>10} | {:>8} | {:<22} |",
        "metric", "embedded", "moto", "ratio", "target"
    );
    println!(
        "|{:-<40}|{:-<12}|{:-<12}|{:-<10}|{:-<24}|",
        "", "", "", "", ""
    );
    let rate = |name: &str| {
        (
            e.median(name),
            m.median(name),
            e.median(name) / m.median(name),
        )
    };
    let lat = |name: &str| {
        (
            e.median(name),
            m.median(name),
            m.median(name) / e.median(name),
        )
    };
    let (a, b, r) = rate("seq_calls_per_s");
    row(
        "seq SendMessage calls/s",
        a,
        b,
        r,
        &format!("≥ 20x: {}", verdict(r, r >= 20.0)),
    );
    let (a, b, r) = lat("seq_p50_us");
    row("seq SendMessage p50 µs", a, b, r, "");
    let (a, b, r) = lat("seq_p99_us");
    row("seq SendMessage p99 µs", a, b, r, "");
    let (a, b, r) = lat("handoff_p50_us");
    row(
        "send → long poll p50 µs",
        a,
        b,
        r,
        &format!(
            "≤ 500 µs: {}, ≥ 10x: {}",
            verdict(a, a <= 500.0),
            verdict(r, r >= 10.0)
        ),
    );
    let (a, b, r) = lat("handoff_p99_us");
    row("send → long poll p99 µs", a, b, r, "");
    let (a, b, r) = rate("conc_calls_per_s");
    row(
        &format!("{} clients SendMessage calls/s", o.clients),
        a,
        b,
        r,
        "",
    );
    let (a, b, _) = rate("conc_server_cores");
    row(
        "  server CPU (cores)",
        a,
        b,
        f64::NAN,
        &format!("> 1.0: {}", verdict(a, a > 1.0)),
    );
    // moto (werkzeug) runs each connection on a new, short-lived thread, whose time
    // is gone from /proc when it exits: its per-thread figures mean nothing.
    let (a, _, _) = rate("conc_server_thread1_cores");
    row("  server busiest thread (cores)", a, f64::NAN, f64::NAN, "");
    let (a, _, _) = rate("conc_server_thread2_cores");
    row(
        "  server 2nd busiest thread (cores)",
        a,
        f64::NAN,
        f64::NAN,
        "",
    );
    let (a, b, _) = rate("conc_client_cores");
    row("  client CPU (cores)", a, b, f64::NAN, "");
    println!();
    let deep_rows = [
        ("send_per_s", "SendMessage/s"),
        ("receive_calls_per_s", "ReceiveMessage (10) calls/s"),
        ("receive_msgs_per_s", "  messages received/s"),
        ("delete_per_s", "DeleteMessage/s"),
    ];
    if !e.median("rss_at_depth_mib").is_nan() || !e.median("deep_send_per_s").is_nan() {
        println!(
            "Embedded at depth: {} messages of {BODY_BYTES} bytes (fill {} msgs/s with SendMessageBatch)",
            o.depth,
            fmt(e.median("fill_msgs_per_s"))
        );
        println!(
            "  server RSS {} MiB (before the fill {} MiB, peak {} MiB): < 1024 MiB: {}",
            fmt(e.median("rss_at_depth_mib")),
            fmt(e.median("rss_before_fill_mib")),
            fmt(e.median("rss_peak_mib")),
            verdict(e.median("rss_peak_mib"), e.median("rss_peak_mib") < 1024.0)
        );
        println!();
        println!(
            "| {:<30} | {:>10} | {:>12} | {:>11} |",
            "operation", "depth ~0", "depth", "depth/0"
        );
        println!("|{:-<32}|{:-<12}|{:-<14}|{:-<13}|", "", "", "", "");
        for (key, label) in deep_rows {
            let a = e.median(&format!("depth0_{key}"));
            let b = e.median(&format!("deep_{key}"));
            println!(
                "| {label:<30} | {:>10} | {:>12} | {:>10.2}x |",
                fmt(a),
                fmt(b),
                b / a
            );
        }
        println!();
    }
    if !m.median("depth0_send_per_s").is_nan() {
        println!(
            "moto at depth 0 and {} (illustration; {} ops per phase):",
            o.moto_depth, o.moto_ops
        );
        println!(
            "| {:<30} | {:>10} | {:>12} | {:>11} |",
            "operation", "depth ~0", "depth", "depth/0"
        );
        println!("|{:-<32}|{:-<12}|{:-<14}|{:-<13}|", "", "", "", "");
        for (key, label) in deep_rows {
            let a = m.median(&format!("depth0_{key}"));
            let b = m.median(&format!("deep_{key}"));
            println!(
                "| {label:<30} | {:>10} | {:>12} | {:>10.2}x |",
                fmt(a),
                fmt(b),
                b / a
            );
        }
    }
}
