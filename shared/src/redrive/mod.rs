//! Re-driving events onto the data points' queues: where the queues are,
//! and sending to them in batches within SQS's limits, retrying what failed
//! on the service's side. Used by the backfill's `enqueue` mode and by the
//! reconciliation's queue repair; knows the contract and the store only.

mod error;
mod queues;
mod send;

pub use error::QueueError;
pub use queues::QueueUrls;
pub use send::{send_events, string_attribute, Outgoing, MAX_SQS_PAYLOAD_BYTES};
