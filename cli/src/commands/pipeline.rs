//! `warehouse pipeline`: the whole pipeline locally on the real function
//! binaries (`warehouse_cli::local`), from a fresh or existing database to
//! the analytics API's report on the busiest presentation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use mysql::prelude::Queryable;
use shared::store::{Database, DatabaseSettings, Secret};

use crate::common::{context, database, print_json, runtime};

#[derive(clap::Args)]
pub struct PipelineArgs {
    /// The export to load (defaults to the sample beside the repository).
    #[arg(long)]
    source: Option<PathBuf>,
    /// Drop and recreate the database of DATABASE_URL first, so the run
    /// starts from an empty warehouse.
    #[arg(long)]
    fresh: bool,
    /// Most messages per loader invocation.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Give up when the queues are not empty after this many seconds.
    #[arg(long, default_value_t = 900)]
    drain_seconds: u64,
    /// The chaos rehearsal: loaders killed mid-batch and restarted, their
    /// database connections killed, batches delivered twice and a backfill
    /// invocation killed, as planned by this seed (`warehouse_cli::chaos`).
    #[arg(long, value_name = "SEED")]
    chaos: Option<u64>,
}

pub fn run(args: PipelineArgs) -> anyhow::Result<()> {
    let source = args.source.unwrap_or_else(default_sample);
    let source = std::fs::canonicalize(&source)
        .map_err(|e| anyhow::anyhow!("cannot read the export {}: {e}", source.display()))?;
    let settings = DatabaseSettings::from_env()?;
    let DatabaseSettings::Url(database_url) = settings.clone() else {
        anyhow::bail!("the local pipeline needs DATABASE_URL (mysql://root@127.0.0.1:3306/warehouse_pipeline), not the RDS settings");
    };
    if args.fresh {
        shared::store::drop_database(&settings)?;
    }
    shared::store::create_database_if_missing(&settings)?;
    let db = database(1)?;
    shared::store::migrate::run(&db)?;
    let summary = runtime()?.block_on(async {
        let mut stack =
            warehouse_cli::local::LocalStack::start(warehouse_cli::local::LocalOptions {
                database_url: database_url.clone(),
                batch_size: args.batch_size,
                visibility_timeout: visibility_timeout(args.chaos),
                queue_prefix: "warehouse".into(),
                moto_endpoint: None,
                chaos: args.chaos,
            })
            .await?;
        warehouse_cli::local::run_pipeline(
            &mut stack,
            &source,
            std::time::Duration::from_secs(args.drain_seconds),
            || busiest_presentation(&db),
        )
        .await
    })?;
    let Some(chaos) = &summary.chaos else {
        return print_json(&summary, true);
    };
    let calm = calm_comparison(&database_url, &source, &db)?;
    let discrepancies: u64 = ["missing", "unexpected", "conflicting"]
        .iter()
        .filter_map(|kind| summary.reconciliation[*kind].as_u64())
        .sum();
    let passed = discrepancies == 0 && calm.differing.is_empty();
    let mut output = serde_json::to_value(&summary)?;
    output["chaos"] = serde_json::json!({
        "seed": chaos.seed,
        "faults": chaos.faults,
        "planned": chaos.planned,
        "messagesDeliveredTwice": chaos.messages_delivered_twice,
        "calmRun": calm,
        "passed": passed,
    });
    print_json(&output, true)?;
    if !passed {
        anyhow::bail!("the chaos rehearsal failed: {discrepancies} discrepancies in the reconciliation, {} answers differ from the calm run", calm.differing.len());
    }
    Ok(())
}

/// The rehearsal's answers compared with those of a calm load of the same
/// export.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CalmComparison {
    /// The calm load's database, beside DATABASE_URL's (`…_calm`).
    database: String,
    /// Answers compared: each presentation's report and viewer list, each
    /// tenant's presentation list.
    answers: usize,
    /// Those that differ.
    differing: Vec<String>,
}

/// Loads `source` without faults (a direct backfill: the loaders' own code,
/// no queues) into a fresh database named after DATABASE_URL's with
/// `_calm`, and compares every answer with the rehearsal's warehouse.
fn calm_comparison(
    url: &Secret,
    source: &Path,
    rehearsal: &Database,
) -> anyhow::Result<CalmComparison> {
    let (calm_url, name) = sibling_database(url.expose(), "_calm")?;
    let settings = DatabaseSettings::Url(Secret::new(calm_url));
    shared::store::drop_database(&settings)?;
    shared::store::create_database_if_missing(&settings)?;
    let calm = Database::connect_blocking(settings, 2)?;
    shared::store::migrate::run(&calm)?;
    let options = shared::jobs::backfill::BackfillOptions {
        source: source.to_string_lossy().into_owned(),
        mode: shared::jobs::backfill::Mode::Direct,
        filters: Default::default(),
        dry_run: false,
        lanes: 1,
    };
    let calm = runtime()?.block_on(async {
        let ctx = context(
            calm,
            None,
            None,
            Default::default(),
            shared::jobs::backfill::DEFAULT_BATCH_LINES,
            shared::jobs::backfill::DEFAULT_BATCH_BYTES,
        );
        shared::jobs::backfill::run(&ctx, &options, None, None).await?;
        Ok::<_, anyhow::Error>(ctx.db)
    })?;
    let (ours, theirs) = (answers(rehearsal)?, answers(&calm)?);
    let keys: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    Ok(CalmComparison {
        database: name,
        answers: keys.len(),
        differing: keys
            .into_iter()
            .filter(|key| ours.get(*key) != theirs.get(*key))
            .cloned()
            .collect(),
    })
}

/// `url` naming the database `<its database><suffix>`, and that name.
fn sibling_database(url: &str, suffix: &str) -> anyhow::Result<(String, String)> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (server, name) = base
        .rsplit_once('/')
        .filter(|(server, name)| {
            server.contains("//") && !name.is_empty() && !server.ends_with('/')
        })
        .context("DATABASE_URL names no database")?;
    let sibling = format!("{name}{suffix}");
    Ok((format!("{server}/{sibling}{query}"), sibling))
}

/// Every answer of a warehouse, by name: each presentation's report and
/// full viewer list, each tenant's full presentation list.
fn answers(db: &Database) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    let mut conn = db.conn()?;
    let presentations: Vec<(String, String)> = conn.query(
        "SELECT tenant_id, presentation_id FROM dim_presentation ORDER BY tenant_id, presentation_id",
    )?;
    let page = shared::read::MAX_LIMIT;
    let mut answers = BTreeMap::new();
    for (tenant, id) in &presentations {
        let report = shared::read::presentation_report_read_only(&mut conn, tenant, id)?;
        answers.insert(
            format!("report {tenant}/{id}"),
            serde_json::to_value(report)?,
        );
        let mut viewers = Vec::new();
        loop {
            let query = shared::read::ViewerQuery {
                limit: page,
                offset: viewers.len() as u64,
                ..Default::default()
            };
            let list = shared::read::viewer_list(&mut conn, tenant, id, &query)?;
            let last = list.viewers.len() < page as usize;
            viewers.extend(list.viewers);
            if last {
                break;
            }
        }
        answers.insert(
            format!("viewers {tenant}/{id}"),
            serde_json::to_value(viewers)?,
        );
    }
    let tenants: BTreeSet<&String> = presentations.iter().map(|(tenant, _)| tenant).collect();
    for tenant in tenants {
        let mut rows = Vec::new();
        loop {
            let query = shared::read::PresentationQuery {
                limit: page,
                offset: rows.len() as u64,
                ..Default::default()
            };
            let list = shared::read::presentation_list(&mut conn, tenant, &query)?;
            let last = list.presentations.len() < page as usize;
            rows.extend(list.presentations);
            if last {
                break;
            }
        }
        answers.insert(
            format!("presentations {tenant}"),
            serde_json::to_value(rows)?,
        );
    }
    Ok(answers)
}

/// The queues' visibility timeout. A killed batch comes back after it, so a
/// rehearsal waits less with a shorter one; still several times a loader
/// invocation's time, so a batch is not delivered again while it loads.
fn visibility_timeout(chaos: Option<u64>) -> std::time::Duration {
    std::time::Duration::from_secs(if chaos.is_some() { 10 } else { 30 })
}

/// The presentation with the most viewers, for the pipeline's report.
fn busiest_presentation(db: &Database) -> anyhow::Result<Option<(String, String)>> {
    let mut conn = db.conn()?;
    Ok(mysql::prelude::Queryable::query_first(
        &mut conn,
        "SELECT p.tenant_id, p.presentation_id FROM dim_presentation p \
         LEFT JOIN fact_session s ON s.presentation_key = p.presentation_key AND s.join_version IS NOT NULL \
         GROUP BY p.presentation_key, p.tenant_id, p.presentation_id ORDER BY COUNT(s.session_id) DESC, p.presentation_id LIMIT 1",
    )?)
}

fn default_sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/samples/events.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calm_database_is_named_beside_the_rehearsals() {
        assert_eq!(
            sibling_database("mysql://root@127.0.0.1:3306/warehouse", "_calm").unwrap(),
            (
                "mysql://root@127.0.0.1:3306/warehouse_calm".to_string(),
                "warehouse_calm".to_string()
            )
        );
        assert_eq!(
            sibling_database("mysql://u:p@h:1/w?prefer_socket=false", "_calm")
                .unwrap()
                .0,
            "mysql://u:p@h:1/w_calm?prefer_socket=false"
        );
        assert!(sibling_database("mysql://root@127.0.0.1:3306/", "_calm").is_err());
        assert!(sibling_database("mysql://root@127.0.0.1:3306", "_calm").is_err());
    }
}
