//! The queue table: every queue whose name starts with a prefix (SQS's
//! `ListQueues`, 1000 a page, followed to the end), sorted by a column and
//! served a page at a time with a cursor.
//!
//! Sorting by name needs only the names: attributes are read for the
//! queues of the page served. Sorting by another column needs every
//! queue's attributes (one `GetQueueAttributes` each), so it is refused
//! beyond [`MAX_SORTED`] queues: narrow the prefix, or sort by name.

use std::cmp::Ordering;
use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName as A;
use serde_json::{Map, Value, json};
use sqs_barrier::Sqs;
use sqs_barrier::clock::wall_ms;
use tokio::task::JoinSet;

use super::barrier::Finder;
use super::errors::{self, Failure, Outcome};

/// The most queue names listed (ten pages of `ListQueues`).
pub(crate) const MAX_LISTED: usize = 10_000;
/// The most queues sorted by a column other than the name.
pub(crate) const MAX_SORTED: usize = 1_000;
/// Page sizes accepted, and the default.
pub(crate) const PAGE_SIZES: std::ops::RangeInclusive<usize> = 1..=1000;
const DEFAULT_PAGE: usize = 25;
/// `GetQueueAttributes` requests in flight at once.
const PARALLEL: usize = 8;

/// The columns a table sorts by.
const SORTS: &[&str] = &["name", "type", "created", "visible", "in_flight", "delayed"];

/// One queue's row.
struct Row {
    name: String,
    url: String,
    attrs: HashMap<A, String>,
}

impl Row {
    fn fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }

    fn num(&self, a: &A) -> Option<u64> {
        self.attrs.get(a).and_then(|v| v.parse().ok())
    }

    /// The row's value in column `sort`, as text that orders as the
    /// column does (numbers zero-padded; a missing number first).
    fn key(&self, sort: &str) -> String {
        let n = |a: A| {
            self.num(&a)
                .map_or_else(String::new, |v| format!("{v:020}"))
        };
        match sort {
            "type" => if self.fifo() { "FIFO" } else { "Standard" }.to_owned(),
            "created" => n(A::CreatedTimestamp),
            "visible" => n(A::ApproximateNumberOfMessages),
            "in_flight" => n(A::ApproximateNumberOfMessagesNotVisible),
            "delayed" => n(A::ApproximateNumberOfMessagesDelayed),
            _ => String::new(),
        }
    }

    fn to_json(&self, barrier: Option<Value>) -> Value {
        let a = &self.attrs;
        let encryption = if a.get(&A::KmsMasterKeyId).is_some_and(|v| !v.is_empty()) {
            "SSE-KMS"
        } else if a.get(&A::SqsManagedSseEnabled).is_some_and(|v| v == "true") {
            "SSE-SQS"
        } else {
            "Disabled"
        };
        let cbd = self.fifo().then(|| {
            a.get(&A::ContentBasedDeduplication)
                .is_some_and(|v| v == "true")
        });
        json!({
            "name": self.name,
            "url": self.url,
            "type": if self.fifo() { "FIFO" } else { "Standard" },
            "created": self.num(&A::CreatedTimestamp),
            "visible": self.num(&A::ApproximateNumberOfMessages),
            "in_flight": self.num(&A::ApproximateNumberOfMessagesNotVisible),
            "delayed": self.num(&A::ApproximateNumberOfMessagesDelayed),
            "encryption": encryption,
            "content_based_deduplication": cbd,
            "has_dead_letter_queue": a.get(&A::RedrivePolicy).is_some_and(|v| !v.is_empty()),
            "barrier": barrier,
        })
    }
}

/// What a page of the table asks for.
struct Query {
    prefix: Option<String>,
    sort: String,
    descending: bool,
    page_size: usize,
    /// After this row: (key, name).
    after: Option<(String, String)>,
}

impl Query {
    fn parse(body: &Map<String, Value>) -> Result<Self, Failure> {
        let text = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let prefix = text("prefix").map(str::to_owned);
        if let Some(p) = &prefix {
            super::attributes::check_name(p).map_err(|_| {
                Failure::bad("prefix: letters, digits, hyphens and underscores only")
            })?;
        }
        let sort = text("sort").unwrap_or("name").to_owned();
        if !SORTS.contains(&sort.as_str()) {
            return Err(Failure::bad(format!(
                "sort must be one of {}",
                SORTS.join(", ")
            )));
        }
        let descending = match text("order").unwrap_or("asc") {
            "asc" => false,
            "desc" => true,
            _ => return Err(Failure::bad("order must be asc or desc")),
        };
        let page_size = match body.get("page_size") {
            None | Some(Value::Null) => DEFAULT_PAGE,
            Some(v) => match v.as_u64().map(|n| n as usize) {
                Some(n) if PAGE_SIZES.contains(&n) => n,
                _ => return Err(Failure::bad("page_size must be from 1 to 1000")),
            },
        };
        let after = match text("cursor") {
            None => None,
            Some(c) => {
                let mut parts = c.splitn(4, '|');
                let (s, o, k, n) = (parts.next(), parts.next(), parts.next(), parts.next());
                let order = if descending { "desc" } else { "asc" };
                match (s, o, k, n) {
                    (Some(s), Some(o), Some(k), Some(n)) if s == sort && o == order => {
                        Some((k.to_owned(), n.to_owned()))
                    }
                    _ => {
                        return Err(Failure::bad(
                            "the cursor belongs to another sort or order, or is malformed: start from the first page",
                        ));
                    }
                }
            }
        };
        Ok(Self {
            prefix,
            sort,
            descending,
            page_size,
            after,
        })
    }

    fn order(&self, a: (&str, &str), b: (&str, &str)) -> Ordering {
        let o = a.cmp(&b);
        if self.descending { o.reverse() } else { o }
    }

    fn cursor(&self, key: &str, name: &str) -> String {
        let order = if self.descending { "desc" } else { "asc" };
        format!("{}|{order}|{key}|{name}", self.sort)
    }
}

/// Every queue URL whose name starts with `prefix` (at most
/// [`MAX_LISTED`]), and whether there were more.
async fn urls(sqs: &Sqs, prefix: Option<&str>) -> Result<(Vec<String>, bool), Failure> {
    let mut urls = Vec::new();
    let mut token = None;
    loop {
        let out = sqs
            .client()
            .list_queues()
            .set_queue_name_prefix(prefix.map(str::to_owned))
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| errors::sqs("ListQueues", e))?;
        urls.extend(out.queue_urls.unwrap_or_default());
        token = out.next_token;
        if urls.len() >= MAX_LISTED {
            urls.truncate(MAX_LISTED);
            return Ok((urls, token.is_some()));
        }
        if token.is_none() {
            return Ok((urls, false));
        }
    }
}

pub(crate) fn name_of(url: &str) -> String {
    url.rsplit('/').next().unwrap_or(url).to_owned()
}

/// Every attribute of each queue, in parallel; queues deleted meanwhile
/// are left out.
async fn with_attributes(sqs: &Sqs, urls: Vec<String>) -> Result<Vec<Row>, Failure> {
    let mut rows = Vec::with_capacity(urls.len());
    for chunk in urls.chunks(PARALLEL) {
        let mut set = JoinSet::new();
        for (i, url) in chunk.iter().enumerate() {
            let (sqs, url) = (sqs.clone(), url.clone());
            set.spawn(async move {
                let out = sqs
                    .client()
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(A::All)
                    .send()
                    .await;
                (i, url, out)
            });
        }
        let mut got = Vec::new();
        while let Some(done) = set.join_next().await {
            let (i, url, out) = done.map_err(|e| Failure::bad(format!("internal error: {e}")))?;
            match out {
                Ok(o) => got.push((
                    i,
                    Row {
                        name: name_of(&url),
                        url,
                        attrs: o.attributes.unwrap_or_default(),
                    },
                )),
                Err(e) if super::is_missing(&e) => {}
                Err(e) => return Err(errors::sqs("GetQueueAttributes", e)),
            }
        }
        got.sort_by_key(|(i, _)| *i);
        rows.extend(got.into_iter().map(|(_, r)| r));
    }
    Ok(rows)
}

/// A page of the queue table (see the module documentation of `queues`).
pub(crate) async fn page(sqs: &Sqs, body: &Map<String, Value>) -> Outcome {
    let q = Query::parse(body)?;
    let (urls, truncated) = urls(sqs, q.prefix.as_deref()).await?;
    // The attributes are read after this (the console's clock).
    let read_ms = wall_ms();
    let total = urls.len();
    let names: Vec<String> = urls.iter().map(|u| name_of(u)).collect();
    let after = |key: &str, name: &str| {
        q.after
            .as_ref()
            .is_none_or(|(k, n)| q.order((key, name), (k, n)) == Ordering::Greater)
    };
    let (rows, more) = if q.sort == "name" {
        let mut urls: Vec<String> = urls
            .into_iter()
            .filter(|u| after("", &name_of(u)))
            .collect();
        urls.sort_by(|a, b| q.order(("", &name_of(a)), ("", &name_of(b))));
        let more = urls.len() > q.page_size;
        urls.truncate(q.page_size);
        (with_attributes(sqs, urls).await?, more)
    } else {
        if total > MAX_SORTED {
            return Err(Failure::bad(format!(
                "sorting by {} reads every queue's attributes: {total} queues match, more than {MAX_SORTED}; narrow the prefix or sort by name",
                q.sort
            )));
        }
        let mut rows: Vec<Row> = with_attributes(sqs, urls)
            .await?
            .into_iter()
            .filter(|r| after(&r.key(&q.sort), &r.name))
            .collect();
        rows.sort_by(|a, b| q.order((&a.key(&q.sort), &a.name), (&b.key(&q.sort), &b.name)));
        let more = rows.len() > q.page_size;
        rows.truncate(q.page_size);
        (rows, more)
    };
    let next_cursor = more
        .then(|| rows.last().map(|r| q.cursor(&r.key(&q.sort), &r.name)))
        .flatten();
    let mut finder = Finder::new(sqs, names);
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let barrier = finder
            .membership(&r.name)
            .await
            .map(|m| json!({"name": m.barrier, "role": m.role.name()}));
        out.push(r.to_json(barrier));
    }
    Ok(json!({
        "queues": out,
        "next_cursor": next_cursor,
        "total": total,
        "truncated": truncated,
        "prefix": q.prefix,
        "sort": q.sort,
        "order": if q.descending { "desc" } else { "asc" },
        "page_size": q.page_size,
        "read_ms": read_ms,
    }))
}
