//! `warehouse`: the operator command line. Every subcommand prints its answer
//! as JSON on stdout and a one-line error on stderr with a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shared::config::DatabaseSettings;
use shared::db::Database;

#[derive(Parser)]
#[command(name = "warehouse", version, about = "Operate the analytics warehouse")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (DATABASE_URL or the DB_* settings).
    Migrate {
        /// Create the database named in DATABASE_URL first if it does not exist.
        #[arg(long)]
        create_database: bool,
    },
    /// The whole pipeline locally: migrate, load an export, print its summary.
    Pipeline {
        /// The export to load (defaults to the sample beside the repository).
        #[arg(long)]
        source: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    shared::telemetry::init_cli();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("warehouse: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn database(max_connections: usize) -> anyhow::Result<Database> {
    let settings = DatabaseSettings::from_env()?;
    Ok(Database::connect_blocking(settings, max_connections)?)
}

fn default_sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/samples/events.jsonl")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate { create_database } => {
            if create_database {
                shared::db::create_database_if_missing(&DatabaseSettings::from_env()?)?;
            }
            let report = shared::migrate::run(&database(1)?)?;
            println!(
                "{}",
                serde_json::json!({"applied": report.applied, "alreadyApplied": report.already_applied})
            );
        }
        Command::Pipeline { source } => {
            let source = source.unwrap_or_else(default_sample);
            shared::db::create_database_if_missing(&DatabaseSettings::from_env()?)?;
            let db = database(2)?;
            shared::migrate::run(&db)?;
            let reader = shared::export::open_local(&source, 0)?;
            let lines = shared::export::LineReader::new(reader, 0, 0);
            let summary = shared::backfill::load_all(
                &db,
                "pipeline",
                lines,
                shared::backfill::DEFAULT_BATCH_LINES,
            )?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
    }
    Ok(())
}
