//! The one error type of the crate: an SQS error code plus a human message.
//!
//! Both the pure model and the wire layer report failures as [`SqsError`]; only the
//! HTTP front decides how an error is rendered (status, `__type`, `x-amzn-query-error`).
//! Keeping the code as an enum (not a string) lets tests match on it exhaustively.

use std::fmt;

/// An SQS error code, named after the error shape of the SQS API model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Two entries of a batch share an `Id`.
    BatchEntryIdsNotDistinct,
    /// The entries of a batch are together larger than 1 MiB.
    BatchRequestTooLong,
    /// A batch without entries.
    EmptyBatchRequest,
    /// The queue URL is not an address of this endpoint.
    InvalidAddress,
    /// An unknown or read-only attribute name.
    InvalidAttributeName,
    /// An attribute value out of range or malformed.
    InvalidAttributeValue,
    /// A batch entry `Id` with characters other than `[A-Za-z0-9_-]` or over 80 long.
    InvalidBatchEntryId,
    /// A message body or attribute value with characters SQS does not allow.
    InvalidMessageContents,
    /// A parameter out of range (not a shape of the model, but what SQS answers).
    InvalidParameterValue,
    /// A limit was hit: a short-poll `ReceiveMessage` on a standard queue with as
    /// many messages in flight as the quota allows.
    OverLimit,
    /// A required parameter is absent.
    MissingParameter,
    /// `ChangeMessageVisibility` on a message that is not in flight.
    MessageNotInflight,
    /// `PurgeQueue` within 60 s of the previous one.
    PurgeQueueInProgress,
    /// `CreateQueue` for a name whose queue was deleted less than 60 s ago.
    QueueDeletedRecently,
    /// The queue does not exist.
    QueueDoesNotExist,
    /// `CreateQueue` for an existing name with different attributes.
    QueueNameExists,
    /// A receipt handle that was never issued by this queue.
    ReceiptHandleIsInvalid,
    /// A message-move task's source or destination queue, or the task itself, does
    /// not exist (HTTP 404).
    ResourceNotFoundException,
    /// A batch with more than 10 entries.
    TooManyEntriesInBatchRequest,
    /// An unknown `X-Amz-Target` operation.
    UnsupportedOperation,
    /// A request body that is not JSON of the expected shape.
    SerializationException,
    /// The request is too large to be read.
    RequestEntityTooLarge,
    /// A bug in this server: answered with HTTP 500.
    InternalFailure,
    /// SQS's throttling error (HTTP 400, retried by the SDKs): a tagging action over
    /// the account's quota (see [`crate::throttle`]), or an injected fault.
    RequestThrottled,
    /// Injected fault: the generic AWS throttling error (HTTP 400, retried).
    ThrottlingException,
    /// Injected fault: HTTP 500 `InternalError` (retried by the SDKs).
    InternalError,
    /// Injected fault: HTTP 503 `ServiceUnavailable` (retried by the SDKs).
    ServiceUnavailable,
}

impl ErrorCode {
    /// The shape name as it appears after `com.amazonaws.sqs#` in `__type`.
    pub fn shape_name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BatchEntryIdsNotDistinct => "BatchEntryIdsNotDistinct",
            BatchRequestTooLong => "BatchRequestTooLong",
            EmptyBatchRequest => "EmptyBatchRequest",
            InvalidAddress => "InvalidAddress",
            InvalidAttributeName => "InvalidAttributeName",
            InvalidAttributeValue => "InvalidAttributeValue",
            InvalidBatchEntryId => "InvalidBatchEntryId",
            InvalidMessageContents => "InvalidMessageContents",
            InvalidParameterValue => "InvalidParameterValue",
            OverLimit => "OverLimit",
            MissingParameter => "MissingParameter",
            MessageNotInflight => "MessageNotInflight",
            PurgeQueueInProgress => "PurgeQueueInProgress",
            QueueDeletedRecently => "QueueDeletedRecently",
            QueueDoesNotExist => "QueueDoesNotExist",
            QueueNameExists => "QueueNameExists",
            ReceiptHandleIsInvalid => "ReceiptHandleIsInvalid",
            ResourceNotFoundException => "ResourceNotFoundException",
            TooManyEntriesInBatchRequest => "TooManyEntriesInBatchRequest",
            UnsupportedOperation => "UnsupportedOperation",
            SerializationException => "SerializationException",
            RequestEntityTooLarge => "RequestEntityTooLarge",
            InternalFailure => "InternalFailure",
            RequestThrottled => "RequestThrottled",
            ThrottlingException => "ThrottlingException",
            InternalError => "InternalError",
            ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The legacy query-protocol code sent in `x-amzn-query-error`.
    ///
    /// SQS is `awsQueryCompatible`: both aws-sdk-sqs and botocore take the error code
    /// from this header, so it must match the codes of the old XML API exactly
    /// (taken from the SQS service model's `awsQueryError` entries).
    pub fn query_code(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BatchEntryIdsNotDistinct => "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            BatchRequestTooLong => "AWS.SimpleQueueService.BatchRequestTooLong",
            EmptyBatchRequest => "AWS.SimpleQueueService.EmptyBatchRequest",
            InvalidBatchEntryId => "AWS.SimpleQueueService.InvalidBatchEntryId",
            MessageNotInflight => "AWS.SimpleQueueService.MessageNotInflight",
            PurgeQueueInProgress => "AWS.SimpleQueueService.PurgeQueueInProgress",
            QueueDeletedRecently => "AWS.SimpleQueueService.QueueDeletedRecently",
            QueueDoesNotExist => "AWS.SimpleQueueService.NonExistentQueue",
            QueueNameExists => "QueueAlreadyExists",
            TooManyEntriesInBatchRequest => "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            UnsupportedOperation => "AWS.SimpleQueueService.UnsupportedOperation",
            other => other.shape_name(),
        }
    }

    /// Whether the caller is to blame (`Sender`) or the server (`Receiver`).
    pub fn is_sender_fault(self) -> bool {
        !matches!(
            self,
            ErrorCode::InternalFailure | ErrorCode::InternalError | ErrorCode::ServiceUnavailable
        )
    }

    /// The HTTP status of an answer with this error.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::ResourceNotFoundException => 404,
            code if code.is_sender_fault() => 400,
            _ => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shape_name())
    }
}

/// An SQS error: a code and the message returned to the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SqsError {
    /// What went wrong, as SQS names it.
    pub code: ErrorCode,
    /// Human-readable explanation, returned as `message`.
    pub message: String,
}

impl SqsError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        SqsError {
            code,
            message: message.into(),
        }
    }

    /// `InvalidParameterValue` with `message`.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }

    /// `MissingParameter` naming `parameter`.
    pub fn missing(parameter: &str) -> Self {
        Self::new(
            ErrorCode::MissingParameter,
            format!("The request must contain the parameter {parameter}."),
        )
    }

    /// `QueueDoesNotExist` with the message AWS uses.
    pub fn no_queue() -> Self {
        Self::new(
            ErrorCode::QueueDoesNotExist,
            "The specified queue does not exist.",
        )
    }

    /// `RequestThrottled` with the message AWS uses for a request over a rate
    /// quota: "Rate exceeded".
    pub fn rate_exceeded() -> Self {
        Self::new(ErrorCode::RequestThrottled, "Rate exceeded")
    }

    /// `ReceiptHandleIsInvalid` quoting the handle.
    pub fn bad_handle(handle: &str) -> Self {
        Self::new(
            ErrorCode::ReceiptHandleIsInvalid,
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        )
    }
}

impl SqsError {
    /// The body of the answer: `{"__type":"com.amazonaws.sqs#<Shape>","message":"..."}`,
    /// sent with [`ErrorCode::http_status`] and `Content-Type:
    /// application/x-amz-json-1.0`.
    pub fn json_body(&self) -> String {
        serde_json::json!({
            "__type": format!("com.amazonaws.sqs#{}", self.code.shape_name()),
            "message": self.message,
        })
        .to_string()
    }

    /// The value of the `x-amzn-query-error` header of the answer: `<query
    /// code>;Sender` or `<query code>;Receiver`. aws-sdk-sqs and botocore take the
    /// error code from it (SQS is `awsQueryCompatible`), so their typed errors
    /// depend on it.
    pub fn query_error_header(&self) -> String {
        let fault = if self.code.is_sender_fault() {
            "Sender"
        } else {
            "Receiver"
        };
        format!("{};{fault}", self.code.query_code())
    }
}

/// Results of this crate.
pub type Result<T, E = SqsError> = std::result::Result<T, E>;
