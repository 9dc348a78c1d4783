//! What a finished run reports: its log line and its CloudWatch metrics.

use crate::contract::DataPoint;

use super::{Kind, ReconcileSummary};

/// CloudWatch Embedded Metric Format documents for a run (namespace
/// `Warehouse`): `Discrepancies` per `DataPoint` and `Kind` (one document per
/// pair, zeros included so an alarm sees data every night), and
/// `EventsCompared` once.
pub fn emf_documents(summary: &ReconcileSummary, timestamp_ms: i64) -> Vec<serde_json::Value> {
    let mut documents = Vec::new();
    for dp in DataPoint::ALL {
        let counts = summary.by_data_point.get(&dp).cloned().unwrap_or_default();
        for (kind, value) in [
            (Kind::Missing, counts.missing),
            (Kind::Unexpected, counts.unexpected),
            (Kind::Conflicting, counts.conflicting),
        ] {
            documents.push(serde_json::json!({
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": "Warehouse",
                        "Dimensions": [["DataPoint", "Kind"]],
                        "Metrics": [{"Name": "Discrepancies", "Unit": "Count"}]
                    }]
                },
                "DataPoint": dp.as_str(),
                "Kind": kind.as_str(),
                "Discrepancies": value,
                "runId": summary.run_id
            }));
        }
    }
    documents.push(serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Warehouse",
                "Dimensions": [[]],
                "Metrics": [{"Name": "EventsCompared", "Unit": "Count"}, {"Name": "DiscrepanciesTotal", "Unit": "Count"}]
            }]
        },
        "EventsCompared": summary.totals.compared,
        "DiscrepanciesTotal": summary.totals.missing + summary.totals.unexpected + summary.totals.conflicting,
        "runId": summary.run_id
    }));
    documents
}

/// The run's structured log line and its EMF metric documents (stdout, one
/// JSON document per line, where CloudWatch Logs extracts the metrics).
pub fn log_summary(summary: &ReconcileSummary) {
    tracing::info!(
        run_id = summary.run_id,
        source = %summary.source,
        compared = summary.totals.compared,
        missing = summary.totals.missing,
        unexpected = summary.totals.unexpected,
        conflicting = summary.totals.conflicting,
        repaired = summary.repaired,
        blocks_differing = summary.blocks_differing,
        elapsed_seconds = summary.elapsed_seconds,
        "reconciliation finished"
    );
    for document in emf_documents(summary, crate::store::now_ms()) {
        println!("{document}");
    }
}
