//! Plain-text tables.

use sqs_barrier::admin::QueueRow;

/// The SQS console's queue table.
pub fn queues(rows: &[QueueRow]) -> String {
    let header = [
        "Name",
        "Type",
        "Created",
        "Messages available",
        "Messages in flight",
        "Encryption",
        "Content-based deduplication",
    ];
    let opt = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
    let body: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.kind.clone(),
                r.created.map_or("-".into(), utc),
                opt(r.messages_available),
                opt(r.messages_in_flight),
                r.encryption.clone(),
                r.content_based_deduplication.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &body {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let l: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(l.join("  ").trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &body {
        line(row);
    }
    if rows.is_empty() {
        out.push_str("(no queues)\n");
    }
    out
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_656_349_388), "2022-06-27 17:03:08 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn table_has_console_columns() {
        let t = queues(&[QueueRow {
            name: "MyTestQueue".into(),
            kind: "Standard".into(),
            created: Some(0),
            messages_available: Some(3),
            messages_in_flight: Some(1),
            messages_delayed: Some(0),
            encryption: "SSE-SQS".into(),
            content_based_deduplication: "-".into(),
            url: "http://x/0/MyTestQueue".into(),
        }]);
        assert!(t.starts_with("Name"));
        assert!(t.contains("Messages available"));
        assert!(t.contains("MyTestQueue  Standard"));
    }
}
