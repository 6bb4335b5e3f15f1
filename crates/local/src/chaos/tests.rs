//! Unit tests of fault injection: parsing, filters, decisions.

use super::*;

#[test]
fn parses_the_documented_example() {
    let spec: ChaosSpec = "receive.duplicate=0.05, receive.empty=10%,send.error=0.02,any.throttle=0.01,any.delay_ms=0-20,send.late=0.05:100-500,receive.reorder=0.2,any.error_after=0.01"
        .parse()
        .unwrap();
    let s = |scope, fault| spec.setting(scope, fault).map(|s| s.probability);
    assert_eq!(s(Scope::Receive, Fault::Duplicate), Some(0.05));
    assert_eq!(s(Scope::Receive, Fault::Empty), Some(0.1));
    assert_eq!(s(Scope::Send, Fault::Error), Some(0.02));
    assert_eq!(s(Scope::Delete, Fault::Error), None);
    assert_eq!(s(Scope::Delete, Fault::Throttle), Some(0.01));
    assert_eq!(s(Scope::Admin, Fault::ErrorAfter), Some(0.01));
    let slow = spec.setting(Scope::Send, Fault::Slow).unwrap();
    assert_eq!((slow.probability, slow.range_ms), (1.0, Some((0, 20))));
    let late = spec.setting(Scope::Send, Fault::Late).unwrap();
    assert_eq!(late.range_ms, Some((100, 500)));
    // Display round-trips.
    let again: ChaosSpec = spec.to_string().parse().unwrap();
    assert_eq!(again, spec);
}

#[test]
fn a_scope_rule_overrides_any() {
    let spec: ChaosSpec = "any.error=0.5,delete.error=0".parse().unwrap();
    assert_eq!(
        spec.setting(Scope::Send, Fault::Error).unwrap().probability,
        0.5
    );
    assert_eq!(
        spec.setting(Scope::Delete, Fault::Error)
            .unwrap()
            .probability,
        0.0
    );
}

#[test]
fn parse_errors_name_the_rule_and_the_problem() {
    let err = |text: &str| text.parse::<ChaosSpec>().unwrap_err().to_string();
    assert!(err("").contains("empty"), "{}", err(""));
    assert!(err("receive.duplicate").contains("SCOPE.FAULT=VALUE"));
    assert!(err("duplicate=0.1").contains("SCOPE.FAULT=VALUE"));
    assert!(err("recv.duplicate=0.1").contains("unknown scope \"recv\""));
    assert!(err("receive.dup=0.1").contains("unknown fault \"dup\""));
    assert!(err("receive.duplicate=1.5").contains("outside 0..1"));
    assert!(err("receive.duplicate=abc").contains("not a probability"));
    assert!(err("receive.duplicate=150%").contains("outside 0..1"));
    assert!(err("send.duplicate=0.1").contains("receive only: write receive.duplicate"));
    assert!(err("any.late=0.1").contains("send only"));
    assert!(err("any.delay_ms=20-10").contains("backwards"));
    assert!(err("any.delay_ms=x").contains("milliseconds"));
    assert!(err("any.error=0.1:5-10").contains("takes no range"));
    assert!(err("any.error=0.1,any.error=0.2").contains("given twice"));
    let e = "send.error=0.1,receive.bogus=1"
        .parse::<ChaosSpec>()
        .unwrap_err();
    assert_eq!(e.rule, "receive.bogus=1");
}

#[test]
fn decisions_are_seeded() {
    let spec: ChaosSpec = "any.error=0.3,receive.empty=0.3,receive.duplicate=0.3"
        .parse()
        .unwrap();
    let run = |seed| {
        let chaos = Chaos::new(spec.clone(), seed);
        (0..200)
            .map(|i| {
                let d = chaos.decide(
                    if i % 2 == 0 {
                        Scope::Receive
                    } else {
                        Scope::Send
                    },
                    &RequestFacts::default(),
                );
                (d.error, d.empty.is_some(), d.duplicate)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let errors = run(7).iter().filter(|d| d.0.is_some()).count();
    assert!((30..=90).contains(&errors), "{errors} of 200 at p = 0.3");
    // Faults limited to receive never fire elsewhere.
    assert!(
        run(7)
            .iter()
            .skip(1)
            .step_by(2)
            .all(|d| !d.1 && d.2.is_none())
    );
}

fn facts(queue: Option<&str>, key: Option<&str>) -> RequestFacts {
    RequestFacts {
        queue: queue.map(str::to_owned),
        key: key.map(str::to_owned),
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn parses_filters() {
    let spec: ChaosSpec =
        "any[queue=-state;key=coordA;from=20;to=50].error=1, send[ key = k1 ].slow=0.5:5-10,receive[queue=-lease.fifo;from=2.5].empty=10%,send[to=3].late=1:10-20,any.error=1%"
            .parse()
            .unwrap();
    assert_eq!(spec.rules.len(), 5);
    let r = &spec.rules[0];
    assert_eq!((r.scope, r.fault), (None, Fault::Error));
    assert_eq!(
        r.filters,
        Filters {
            queue: Some("-state".into()),
            key: Some("coordA".into()),
            from: Some(20.0),
            to: Some(50.0),
        }
    );
    assert_eq!(spec.rules[1].filters.key.as_deref(), Some("k1"));
    assert_eq!(spec.rules[1].setting.range_ms, Some((5, 10)));
    assert_eq!(spec.rules[2].filters.from, Some(2.5));
    assert_eq!(spec.rules[2].filters.queue.as_deref(), Some("-lease.fifo"));
    assert_eq!(spec.rules[3].filters.to, Some(3.0));
    // Filters and the order of rules survive Display.
    let text = spec.to_string();
    assert!(
        text.starts_with("any[queue=-state;key=coordA;from=20;to=50].error=1,"),
        "{text}"
    );
    let again: ChaosSpec = text.parse().unwrap();
    assert_eq!(again, spec);
    // `setting` sees only the rules without filters.
    assert_eq!(
        spec.setting(Scope::Send, Fault::Error).unwrap().probability,
        0.01
    );
    assert_eq!(spec.setting(Scope::Send, Fault::Slow), None);
    // The same scope and fault with other filters is no repetition.
    assert!(
        "any.error=0.01,any[key=a].error=1,any[key=b].error=1,any[key=a;to=5].error=0"
            .parse::<ChaosSpec>()
            .is_ok()
    );
}

#[test]
fn filter_errors_name_the_problem() {
    let err = |text: &str| text.parse::<ChaosSpec>().unwrap_err().to_string();
    let has = |text: &str, part: &str| {
        let e = err(text);
        assert!(e.contains(part), "{text}: {e}");
        assert!(e.starts_with("invalid chaos rule"), "{e}");
    };
    has("any[].error=1", "holds no filter");
    has("any[ ].error=1", "holds no filter");
    has("any[key=a.error=1", "'[' without ']'");
    has("any[key=a,send.error=1", "'[' without ']'");
    has("any[key=a,queue=-x].error=1", "separated by ';'");
    has("any[key=a;;to=3].error=1", "empty filter");
    has("any[key=a;].error=1", "empty filter");
    has("any[color=red].error=1", "unknown filter \"color\"");
    has("any[key].error=1", "filter \"key\" is not NAME=VALUE");
    has("any[key=].error=1", "key= needs an access key id");
    has("any[key=a b].error=1", "not an access key id");
    has("any[key=a/b].error=1", "not an access key id");
    has(
        "any[queue=].error=1",
        "queue= needs the end of a queue name",
    );
    has("any[queue=-st*te].error=1", "cannot end a queue name");
    has(
        "any[from=soon].error=1",
        "from=\"soon\" is not a number of seconds",
    );
    has(
        "any[to=inf].error=1",
        "to=\"inf\" is not a number of seconds",
    );
    has("any[from=-1].error=1", "negative");
    has("any[from=5;to=5].error=1", "is empty");
    has("any[from=6;to=5].error=1", "is empty");
    has("any[to=0].error=1", "is empty");
    has("any[key=a;key=b].error=1", "filter key= is given twice");
    has("any[from=1;from=2].error=1", "filter from= is given twice");
    has("any[key=a]x.error=1", "expected '.FAULT=VALUE' after ']'");
    has("any[key=a]", "expected '.FAULT=VALUE' after ']'");
    has("any[key=a].error", "SCOPE.FAULT=VALUE");
    has("any[key=a[b]].error=1", "'[' inside filters");
    has("recv[key=a].error=1", "unknown scope \"recv\"");
    has("send[key=a].duplicate=1", "receive only");
    has(
        "any[key=a;to=5].error=1,any[to=5;key=a].error=0",
        "any[key=a;to=5].error is given twice",
    );
    // The error names the rule at fault, filters and all.
    let e = "send.error=0.1,any[key=a;from=x].error=1"
        .parse::<ChaosSpec>()
        .unwrap_err();
    assert_eq!(e.rule, "any[key=a;from=x].error=1");
}

#[test]
fn filters_match_queue_key_and_time() {
    let spec: ChaosSpec = "any[queue=-state;key=coordA;from=20;to=50].error=1"
        .parse()
        .unwrap();
    let p = |queue, key, at| {
        spec.setting_for(Scope::Send, Fault::Error, &facts(queue, key), secs(at))
            .map(|s| s.probability)
    };
    assert_eq!(p(Some("b-state"), Some("coordA"), 20.0), Some(1.0));
    assert_eq!(p(Some("b-state"), Some("coordA"), 49.999), Some(1.0));
    assert_eq!(p(Some("b-state"), Some("coordA"), 19.999), None);
    assert_eq!(p(Some("b-state"), Some("coordA"), 50.0), None);
    assert_eq!(p(Some("b-state-x"), Some("coordA"), 30.0), None);
    assert_eq!(p(Some("b-state"), Some("coorda"), 30.0), None);
    assert_eq!(p(Some("b-state"), None, 30.0), None);
    assert_eq!(p(None, Some("coordA"), 30.0), None);
    // One-sided windows.
    let spec: ChaosSpec = "any[from=2].error=1,send[to=2].throttle=1".parse().unwrap();
    let at = |fault, t| {
        spec.setting_for(Scope::Send, fault, &facts(None, None), secs(t))
            .is_some()
    };
    assert!(!at(Fault::Error, 1.9) && at(Fault::Error, 2.0) && at(Fault::Error, 1e6));
    assert!(at(Fault::Throttle, 0.0) && at(Fault::Throttle, 1.9) && !at(Fault::Throttle, 2.0));
}

#[test]
fn precedence_filtered_then_own_scope_then_first_written() {
    let spec: ChaosSpec = "any.error=0.01,delete.error=0,any[key=a].error=1,any[key=a;queue=-x].error=0.5,delete[key=a].error=0.25,send[key=b].error=0"
        .parse()
        .unwrap();
    let p = |scope, queue, key| {
        spec.setting_for(scope, Fault::Error, &facts(queue, key), secs(0.0))
            .map(|s| s.probability)
    };
    // Unfiltered rules as before: the scope's own rule over `any`.
    assert_eq!(p(Scope::Send, None, None), Some(0.01));
    assert_eq!(p(Scope::Delete, None, None), Some(0.0));
    // A matching filtered rule beats the unfiltered ones, even a scope's.
    assert_eq!(p(Scope::Send, None, Some("a")), Some(1.0));
    assert_eq!(p(Scope::Receive, Some("q-x"), Some("a")), Some(1.0)); // written first
    // Among filtered rules, the scope's own beats `any`.
    assert_eq!(p(Scope::Delete, Some("q-x"), Some("a")), Some(0.25));
    // Probability 0 exempts.
    assert_eq!(p(Scope::Send, None, Some("b")), Some(0.0));
    assert_eq!(p(Scope::Receive, None, Some("b")), Some(0.01));
    // Rules of another scope never apply.
    assert_eq!(
        spec.setting_for(
            Scope::Admin,
            Fault::Throttle,
            &facts(None, Some("a")),
            secs(0.0)
        ),
        None
    );
    // A later, more specific rule is written first to win.
    let spec: ChaosSpec = "any[key=a;queue=-x].error=0.5,any[key=a].error=1"
        .parse()
        .unwrap();
    let p = |queue| {
        spec.setting_for(
            Scope::Send,
            Fault::Error,
            &facts(queue, Some("a")),
            secs(0.0),
        )
        .map(|s| s.probability)
    };
    assert_eq!(p(Some("q-x")), Some(0.5));
    assert_eq!(p(Some("q-y")), Some(1.0));
}

#[test]
fn request_facts_come_from_the_signature_and_the_body() {
    let auth = "AWS4-HMAC-SHA256 Credential=coordA/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
    assert_eq!(access_key_id(auth), Some("coordA"));
    assert_eq!(
        access_key_id("AWS4-HMAC-SHA256 SignedHeaders=host,Credential=K/x, Signature=abc"),
        Some("K")
    );
    assert_eq!(access_key_id("AWS AKID:signature"), None);
    assert_eq!(access_key_id("AWS4-HMAC-SHA256Credential=K/x"), None);
    assert_eq!(access_key_id("AWS4-HMAC-SHA256 Credential=K"), None);
    assert_eq!(access_key_id("AWS4-HMAC-SHA256 Credential=/x/y"), None);
    assert_eq!(access_key_id("Bearer K"), None);
    assert_eq!(access_key_id(""), None);

    let q = |body: &str| queue_of(body.as_bytes());
    assert_eq!(
        q(r#"{"QueueUrl":"http://127.0.0.1:9324/000000000000/run-state","MessageBody":"m"}"#),
        Some("run-state".into())
    );
    assert_eq!(
        q(r#"{"QueueUrl":"http://h/1/q.fifo/"}"#),
        Some("q.fifo".into())
    );
    assert_eq!(q(r#"{"QueueUrl":"000000000000/q"}"#), Some("q".into()));
    assert_eq!(q(r#"{"QueueUrl":"http://h"}"#), None);
    assert_eq!(
        q(r#"{"QueueName":"b-lease.fifo","Attributes":{"FifoQueue":"true"}}"#),
        Some("b-lease.fifo".into())
    );
    assert_eq!(q(r#"{"QueueNamePrefix":"b-"}"#), None);
    assert_eq!(q("{}"), None);
    assert_eq!(q(""), None);

    // Only what some rule filters on is worked out.
    let chaos = |text: &str| Chaos::new(text.parse().unwrap(), 1);
    let body = br#"{"QueueUrl":"http://h/1/q-x"}"#;
    assert_eq!(
        chaos("any[key=a].error=1").facts(Some(auth), body),
        facts(None, Some("coordA"))
    );
    assert_eq!(
        chaos("any[queue=-x].error=1").facts(Some(auth), body),
        facts(Some("q-x"), None)
    );
    assert_eq!(
        chaos("any.error=1").facts(Some(auth), body),
        facts(None, None)
    );
}

#[test]
fn filters_do_not_change_the_draws() {
    // The same seed, requests and unfiltered rules: the same decisions,
    // whatever filtered rules are added and whether they match.
    let run = |text: &str| {
        let chaos = Chaos::new(text.parse().unwrap(), 11);
        (0..300)
            .map(|i| {
                let f = facts(Some("q-x"), (i % 3 == 0).then_some("k"));
                let scope = if i % 2 == 0 {
                    Scope::Send
                } else {
                    Scope::Receive
                };
                let d = chaos.decide(scope, &f);
                let late = (0..2).map(|_| chaos.late(&d)).collect::<Vec<_>>();
                (
                    d.error,
                    d.empty.is_some(),
                    late.iter().flatten().count() > 0,
                )
            })
            .collect::<Vec<_>>()
    };
    let base = run("any.error=0.3,receive.empty=0.3,send.late=0");
    let errors =
        |r: &[(Option<bool>, bool, bool)]| r.iter().map(|d| (d.0, d.1)).collect::<Vec<_>>();
    for other in [
        "any.error=0.3,receive.empty=0.3,send[key=k].late=1",
        "any.error=0.3,receive.empty=0.3,send.late=0,any[key=k].throttle=1,receive[queue=-y].slow=1",
        "any[key=zz].error=1,any.error=0.3,receive.empty=0.3,send[to=0.001].late=1",
    ] {
        assert_eq!(errors(&run(other)), errors(&base), "{other}");
    }
    // The filtered `late` fired for `k` only (every 6th request is a send by k).
    let late = run("any.error=0.3,receive.empty=0.3,send[key=k].late=1");
    assert!(late.iter().enumerate().all(|(i, d)| d.2 == (i % 6 == 0)));
}
