//! `warehouse migrate`: applies the pending migrations.

use shared::store::DatabaseSettings;

use crate::common::{database, print_json};

#[derive(clap::Args)]
pub struct MigrateArgs {
    /// Create the database named in DATABASE_URL first if it does not exist.
    #[arg(long)]
    create_database: bool,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    if args.create_database {
        shared::store::create_database_if_missing(&DatabaseSettings::from_env()?)?;
    }
    let report = shared::store::migrate::run(&database(1)?)?;
    print_json(
        &serde_json::json!({"applied": report.applied, "alreadyApplied": report.already_applied}),
        false,
    )
}
