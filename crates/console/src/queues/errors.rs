//! Failures of the queues API, in plain words: refusals of the console
//! itself (a value out of range, a missing confirmation) and SQS's errors,
//! each named with its SQS code alongside.

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::http;

/// A request the API did not carry out, and why (boxed: it travels in
/// every `Result` of the API).
#[derive(Debug)]
pub(crate) struct Failure(Box<Failed>);

/// What a [`Failure`] holds.
#[derive(Debug)]
pub(crate) struct Failed {
    /// The HTTP status answered.
    pub status: StatusCode,
    /// What went wrong, in plain words.
    pub error: String,
    /// The SQS operation that failed, if SQS refused.
    pub operation: Option<&'static str>,
    /// SQS's error code, if SQS answered with one.
    pub sqs_code: Option<String>,
    /// SQS's own message, if any.
    pub sqs_message: Option<String>,
    /// More to show (what an action would do to a barrier, ...).
    pub details: Option<Value>,
}

impl std::ops::Deref for Failure {
    type Target = Failed;
    fn deref(&self) -> &Failed {
        &self.0
    }
}

impl std::ops::DerefMut for Failure {
    fn deref_mut(&mut self) -> &mut Failed {
        &mut self.0
    }
}

impl Failure {
    /// A refusal by the console itself.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self(Box::new(Failed {
            status,
            error: error.into(),
            operation: None,
            sqs_code: None,
            sqs_message: None,
            details: None,
        }))
    }

    /// A request the console refuses as malformed or out of range (400).
    pub fn bad(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    /// With more to show under `details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The JSON answer: `{"ok": false, "error", "operation", "sqs_code",
    /// "sqs_message", "details"}` (absent fields are null).
    pub fn response(&self) -> Response<Full<Bytes>> {
        http::json(
            self.status,
            &json!({
                "ok": false,
                "error": self.error,
                "operation": self.operation,
                "sqs_code": self.sqs_code,
                "sqs_message": self.sqs_message,
                "details": self.details,
            }),
        )
    }
}

/// The result of one endpoint: the JSON to answer (200), or a failure.
pub(crate) type Outcome = Result<Value, Failure>;

/// SQS's error codes (both the query protocol's and the JSON protocol's
/// spellings) in plain words, with the status the console answers.
fn plain(code: &str) -> Option<(StatusCode, &'static str)> {
    let code = code.strip_prefix("AWS.SimpleQueueService.").unwrap_or(code);
    Some(match code {
        "NonExistentQueue" | "QueueDoesNotExist" => (
            StatusCode::NOT_FOUND,
            "no queue of this name exists (it was deleted, or never created)",
        ),
        "QueueDeletedRecently" => (
            StatusCode::CONFLICT,
            "a queue of this name was deleted less than 60 s ago; SQS refuses the name until then",
        ),
        "PurgeQueueInProgress" => (
            StatusCode::CONFLICT,
            "a purge ran less than 60 s ago; SQS allows one purge a minute per queue",
        ),
        "QueueAlreadyExists" | "QueueNameExists" => (
            StatusCode::CONFLICT,
            "a queue of this name already exists with different attributes",
        ),
        "AccessDenied" | "AccessDeniedException" => (
            StatusCode::FORBIDDEN,
            "the console's credentials are not allowed to do this (access denied)",
        ),
        "Throttling" | "ThrottlingException" | "RequestThrottled" => (
            StatusCode::TOO_MANY_REQUESTS,
            "SQS is throttling requests (a quota was reached): try again in a moment",
        ),
        "OverLimit" => (
            StatusCode::TOO_MANY_REQUESTS,
            "an SQS limit was reached (in-flight messages, tags, or queues)",
        ),
        "InvalidAttributeName" => (
            StatusCode::BAD_REQUEST,
            "SQS does not know this attribute (or it does not apply to this kind of queue)",
        ),
        "InvalidAttributeValue" | "InvalidParameterValue" | "InvalidParameterValueException" => {
            (StatusCode::BAD_REQUEST, "SQS refused a value")
        }
        "MissingParameter" => (StatusCode::BAD_REQUEST, "SQS misses a value it needs"),
        "InvalidMessageContents" => (
            StatusCode::BAD_REQUEST,
            "the message contains characters SQS does not allow",
        ),
        "ReceiptHandleIsInvalid" | "InvalidReceiptHandle" | "InvalidIdFormat" => (
            StatusCode::BAD_REQUEST,
            "the receipt handle is not valid (the message was received again since, or deleted)",
        ),
        "TooManyEntriesInBatchRequest"
        | "EmptyBatchRequest"
        | "BatchEntryIdsNotDistinct"
        | "BatchRequestTooLong"
        | "InvalidBatchEntryId" => (
            StatusCode::BAD_REQUEST,
            "SQS refused the batch (1 to 10 entries, distinct, 256 KiB in all)",
        ),
        "UnsupportedOperation" => (
            StatusCode::CONFLICT,
            "SQS does not allow this operation on this queue or in this state",
        ),
        "ResourceNotFoundException" => (
            StatusCode::NOT_FOUND,
            "the queue or task named does not exist",
        ),
        "InvalidSecurity" => (
            StatusCode::FORBIDDEN,
            "SQS refused the request's security (HTTPS and a valid signature are required)",
        ),
        "InvalidAddress" => (
            StatusCode::BAD_REQUEST,
            "SQS refused the address (the queue URL or ARN is not valid)",
        ),
        "RequestExpired"
        | "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "ExpiredToken"
        | "InvalidSignatureException" => (
            StatusCode::FORBIDDEN,
            "SQS refused the console's credentials (unknown, expired, or a clock too far off)",
        ),
        c if c.starts_with("Kms") || c.starts_with("KMS") => (
            StatusCode::BAD_REQUEST,
            "the KMS key could not be used (it does not exist, is disabled, or may not be used by these credentials)",
        ),
        _ => return None,
    })
}

/// SQS's answer to `operation`, in plain words with its code.
pub(crate) fn sqs<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (code, message) = (
        err.code().map(str::to_owned),
        err.message().map(str::to_owned),
    );
    let failure = |status: StatusCode, error: String| {
        Failure(Box::new(Failed {
            status,
            error,
            operation: Some(operation),
            sqs_code: code.clone(),
            sqs_message: message.clone(),
            details: None,
        }))
    };
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            return failure(
                StatusCode::BAD_GATEWAY,
                format!(
                    "{operation}: the SQS endpoint could not be reached or did not answer in time ({})",
                    DisplayErrorContext(&err)
                ),
            );
        }
        SdkError::ResponseError(_) => {
            return failure(
                StatusCode::BAD_GATEWAY,
                format!(
                    "{operation}: the endpoint's answer could not be read (HTTP {}): it may not implement this operation",
                    status.map_or_else(|| "?".to_owned(), |s| s.to_string())
                ),
            );
        }
        _ => {}
    }
    if let Some((st, words)) = code.as_deref().and_then(plain) {
        let error = match &message {
            Some(m) if !m.is_empty() => format!("{operation}: {words} ({m})"),
            _ => format!("{operation}: {words}"),
        };
        return failure(st, error);
    }
    if let Some(c) = code
        .as_deref()
        .filter(|c| !c.is_empty() && *c != "InternalFailure")
    {
        let error = match &message {
            Some(m) if !m.is_empty() => format!("{operation}: SQS answered {c}: {m}"),
            _ => format!("{operation}: SQS answered {c}"),
        };
        return failure(StatusCode::BAD_GATEWAY, error);
    }
    // No SQS error code: the endpoint failed, or does not know the
    // operation (some emulators answer HTTP 500 or 501 then).
    let status = status.map_or_else(|| "no status".to_owned(), |s| format!("HTTP {s}"));
    failure(
        StatusCode::BAD_GATEWAY,
        format!(
            "{operation}: the endpoint failed without an SQS error code ({status}); it probably does not implement {operation}"
        ),
    )
}
