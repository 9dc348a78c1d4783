//! What a job (a backfill, a reconciliation's repair) needs beyond its
//! options: the database, the AWS clients, the queues, which exports it may
//! read, its batches' bounds, and the seams for a progress display and for
//! tests.

use std::sync::Arc;
use std::time::Duration;

use crate::export::ExportScope;
use crate::redrive::QueueUrls;
use crate::store::Database;

/// What a run needs beyond its options.
pub struct JobContext {
    pub db: Arc<Database>,
    pub s3: Option<aws_sdk_s3::Client>,
    pub sqs: Option<aws_sdk_sqs::Client>,
    pub queues: QueueUrls,
    /// Which exports the job may read: a function's own, or any the
    /// operator names (the CLI). Checked before anything is read.
    pub exports: ExportScope,
    /// A backfill batch (one transaction per lane) holds at most this many
    /// lines and this many bytes of lines (`backfill::DEFAULT_BATCH_LINES`,
    /// `backfill::DEFAULT_BATCH_BYTES`): memory stays bounded whatever the
    /// lines' lengths.
    pub batch_lines: usize,
    pub batch_bytes: usize,
    /// Called after each committed batch (progress display).
    pub on_progress: Option<ProgressCallback>,
    /// Runs in a lane's transaction just before it commits, with the lane and
    /// the batch's last line number: a seam for tests that make one lane fail
    /// while another goes on (`None` in production).
    pub before_lane_commit: Option<LaneHook>,
}

pub type LaneHook = Arc<dyn Fn(usize, u64) + Send + Sync>;

pub type ProgressCallback = Box<dyn Fn(&BackfillProgress) + Send + Sync>;

/// Where a backfill stands, for a progress display.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillProgress {
    pub lines: u64,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub elapsed: Duration,
}
