//! Where the data points' queues are.

use std::collections::BTreeMap;

use crate::contract::DataPoint;
use crate::store::{env_lookup, required, ConfigError, Lookup};

/// Where the queues of `enqueue` mode (and of queue repairs) are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueUrls(pub BTreeMap<DataPoint, String>);

impl QueueUrls {
    /// `QUEUE_URL_PRESENTATION`, `QUEUE_URL_ATTENDANCE`, `QUEUE_URL_POLLS`,
    /// `QUEUE_URL_SURVEYS`, `QUEUE_URL_QNA`.
    pub fn from_env() -> Result<QueueUrls, ConfigError> {
        QueueUrls::from_lookup(&env_lookup)
    }

    pub fn from_lookup(lookup: Lookup) -> Result<QueueUrls, ConfigError> {
        let mut urls = BTreeMap::new();
        for dp in DataPoint::ALL {
            let name = format!("QUEUE_URL_{}", dp.as_str().to_uppercase());
            let url = required(
                lookup,
                &name,
                &format!("the {dp} queue's URL (enqueue mode)"),
            )?;
            urls.insert(dp, url);
        }
        Ok(QueueUrls(urls))
    }
}
