mod load;
pub use load::{commit_batch, load_batch, record_rejects, BatchCounts, Item, Reject, RejectKind};
