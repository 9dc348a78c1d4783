//! Why sending to a queue failed: which queue, and whether SQS refused a
//! message for good or the call kept failing.

use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;

use crate::contract::DataPoint;

/// A failed send. The texts are the ones operators have been reading.
#[derive(Debug)]
pub enum QueueError {
    /// No queue URL is configured for a data point that has messages.
    NoQueue { data_point: DataPoint },
    /// SQS refused a message permanently (`sender_fault`): retrying cannot help.
    Refused {
        queue: String,
        code: String,
        message: String,
    },
    /// The `SendMessageBatch` call itself failed, on its last attempt.
    CallFailed {
        queue: String,
        error: Box<SdkError<SendMessageBatchError>>,
    },
    /// Messages the service kept failing on its side after every retry.
    StillFailing { queue: String, messages: usize },
    /// A sending task panicked or was cancelled.
    Task(tokio::task::JoinError),
}

impl QueueError {
    /// The queue's URL, when the failure is about one.
    pub fn queue(&self) -> Option<&str> {
        match self {
            QueueError::Refused { queue, .. }
            | QueueError::CallFailed { queue, .. }
            | QueueError::StillFailing { queue, .. } => Some(queue),
            QueueError::NoQueue { .. } | QueueError::Task(_) => None,
        }
    }
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::NoQueue { data_point } => {
                write!(f, "no queue URL for the {data_point} data point")
            }
            QueueError::Refused {
                queue,
                code,
                message,
            } => write!(f, "SQS refused a message for {queue}: {code} {message}"),
            QueueError::CallFailed { queue, error } => write!(
                f,
                "cannot send to {queue}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(error.as_ref())
            ),
            QueueError::StillFailing { queue, messages } => {
                write!(
                    f,
                    "{messages} messages for {queue} still failed after retries"
                )
            }
            QueueError::Task(e) => write!(f, "sending failed: {e}"),
        }
    }
}

impl std::error::Error for QueueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QueueError::CallFailed { error, .. } => Some(error.as_ref()),
            QueueError::Task(e) => Some(e),
            _ => None,
        }
    }
}
