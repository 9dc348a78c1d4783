//! What stops a job, typed by where it failed: the warehouse, a queue,
//! reading the export, or the job's own setup. Each keeps its cause as `source()`.

use std::fmt;

use crate::export::ExportReadError;
use crate::redrive::QueueError;
use crate::store::DbError;

#[derive(Debug)]
pub enum JobError {
    Database(DbError),
    Queue(QueueError),
    Export(ExportReadError),
    /// The job cannot run as asked or configured (e.g. a queue mode without
    /// an SQS client): fix the request or the settings.
    Setup(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Database(e) => e.fmt(f),
            JobError::Queue(e) => e.fmt(f),
            JobError::Export(e) => e.fmt(f),
            JobError::Setup(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for JobError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JobError::Database(e) => Some(e),
            JobError::Queue(e) => Some(e),
            JobError::Export(e) => Some(e),
            JobError::Setup(_) => None,
        }
    }
}

impl From<DbError> for JobError {
    fn from(e: DbError) -> JobError {
        JobError::Database(e)
    }
}

impl From<QueueError> for JobError {
    fn from(e: QueueError) -> JobError {
        JobError::Queue(e)
    }
}

impl From<ExportReadError> for JobError {
    fn from(e: ExportReadError) -> JobError {
        JobError::Export(e)
    }
}
