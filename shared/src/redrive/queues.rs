//! Where the data points' queues are.

use std::collections::BTreeMap;

use crate::contract::DataPoint;

/// Where the queues of `enqueue` mode (and of queue repairs) are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueUrls(pub BTreeMap<DataPoint, String>);

impl QueueUrls {
    /// `QUEUE_URL_PRESENTATION`, `QUEUE_URL_ATTENDANCE`, `QUEUE_URL_POLLS`,
    /// `QUEUE_URL_SURVEYS`, `QUEUE_URL_QNA`.
    pub fn from_env() -> Result<QueueUrls, crate::store::ConfigError> {
        let mut urls = BTreeMap::new();
        for dp in DataPoint::ALL {
            let name = format!("QUEUE_URL_{}", dp.as_str().to_uppercase());
            urls.insert(
                dp,
                crate::store::required_env(&name, &format!("the {dp} queue's URL (enqueue mode)"))?,
            );
        }
        Ok(QueueUrls(urls))
    }
}
