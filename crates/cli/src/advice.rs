//! What the command line adds to a library error: the `sqs-barrier`
//! command (or flag) that deals with it. The library's messages describe
//! the problem for every caller (the Python package, the Lambda function);
//! the commands are this binary's.

use sqs_barrier::Error;

/// The command-line advice for `e`, if there is any.
pub fn of(e: &Error) -> Option<String> {
    Some(match e {
        Error::NotSetUp { barrier, .. } => {
            format!("run `sqs-barrier setup --barrier {barrier} --parties N` first")
        }
        Error::Conflict { barrier, .. } => {
            format!("tear it down with `sqs-barrier teardown --barrier {barrier}`")
        }
        Error::Corrupt { barrier, .. } => format!(
            "`sqs-barrier teardown --barrier {barrier}`, then `sqs-barrier setup` 60 s later"
        ),
        Error::Outdated { barrier, .. } => format!(
            "run `sqs-barrier setup --barrier {barrier}` again with the same --parties, --members, --deadline, --fifo and --quorum"
        ),
        Error::NoRegion => "pass --region".into(),
        Error::Unreachable { .. } => {
            "check --endpoint-url; for a local endpoint, start `sqs-barrier local`".into()
        }
        Error::CoordinatorSilent { barrier, .. } => {
            format!("start one with `sqs-barrier coordinator --barrier {barrier}`")
        }
        Error::NotExpected { barrier, .. } => {
            format!("run `sqs-barrier join --barrier {barrier}` to take part again")
        }
        _ => return None,
    })
}

/// `e`'s message, with the command-line advice after it.
pub fn message(e: &Error) -> String {
    match of(e) {
        Some(advice) => format!("{e} ({advice})"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_for_the_problems_they_solve() {
        let e = Error::NotSetUp {
            barrier: "etl".into(),
            endpoint: "http://127.0.0.1:9324".into(),
        };
        let m = message(&e);
        assert!(m.starts_with("barrier \"etl\" is not set up"), "{m}");
        assert!(
            m.contains("`sqs-barrier setup --barrier etl --parties N`"),
            "{m}"
        );
        assert_eq!(message(&Error::Cancelled), Error::Cancelled.to_string());
        assert!(message(&Error::NoRegion).contains("--region"));
    }
}
