//! `warehouse pipeline`: the whole pipeline locally on the real function
//! binaries (`warehouse_cli::local`), from a fresh or existing database to
//! the analytics API's report on the busiest presentation.

use std::path::PathBuf;

use shared::store::{Database, DatabaseSettings};

use crate::common::{database, print_json, runtime};

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
                database_url,
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
    print_json(&summary, true)
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
