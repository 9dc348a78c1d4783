//! `warehouse`: the operator command line. Every subcommand prints its answer
//! as JSON on stdout and a one-line error on stderr with a non-zero exit.
//! Each command group's arguments and work are in `commands/`; what they
//! share is in `common`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod common;

use commands::{
    analytics, backfill, dlq, engagement, errors, flags, forget, generate, migrate, pipeline,
    reconcile, status, verify,
};

#[derive(Parser)]
#[command(name = "warehouse", version, about = "Operate the analytics warehouse")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (DATABASE_URL or the DB_* settings).
    Migrate(migrate::MigrateArgs),
    /// The whole pipeline locally on the real function binaries: moto queues
    /// with dead-letter queues, the functions under `cargo lambda watch`'s
    /// control plane, an event source mapping per queue; the backfill
    /// function enqueues the export, the loaders drain the queues, the
    /// reconcile function compares, the analytics API answers a report.
    Pipeline(pipeline::PipelineArgs),
    /// Load a mongoexport JSON Lines export (plain or gzip, local or s3://),
    /// resumably: re-run with the same --run-id to continue.
    Backfill(backfill::BackfillArgs),
    /// One presentation's report (ANALYTICS.md §1).
    Report(analytics::ReportArgs),
    /// The viewers of one presentation, filtered, sorted and paged (ANALYTICS.md §2).
    Viewers(analytics::ViewersArgs),
    /// One presentation's attendance timeline, the audience curve
    /// (ANALYTICS.md §4), as JSON or drawn as an SVG chart.
    Timeline(analytics::TimelineArgs),
    /// A tenant's presentations, filtered, sorted and paged (ANALYTICS.md §3).
    Presentations(analytics::PresentationsArgs),
    /// Recompute the stale presentation summaries the list reads (the
    /// loaders refresh them after every batch; use after a release that
    /// changes their format).
    RefreshSummaries(analytics::RefreshSummariesArgs),
    /// A tenant's engagement score weights (ANALYTICS.md §5): set, get.
    Engagement(engagement::EngagementArgs),
    /// The analytics API's rollout flags per tenant and data point: set, list.
    Flags(flags::FlagsArgs),
    /// Erase a viewer everywhere, for good (ANALYTICS.md §8): their name and
    /// email, and what ties them to their questions; prints the receipt.
    Forget(forget::ForgetArgs),
    /// Compare an export (the source of truth) with the warehouse ledger and
    /// report what is missing, unexpected or conflicting; optionally repair.
    Reconcile(reconcile::ReconcileArgs),
    /// Release check: replay a diagonal slice of presentations from the export
    /// the old way and compare each report with the warehouse's, field by field.
    Verify(verify::VerifyArgs),
    /// Write a synthetic export made to the contract (for benchmarks and load tests).
    Generate(generate::GenerateArgs),
    /// On call: each data point's loads, errors and queues, the last
    /// reconciliation and the unfinished runs (JSON; a table with --pretty).
    Status(status::StatusArgs),
    /// A data point's dead-letter queue: list (peek), redrive (back to its queue).
    Dlq(dlq::DlqArgs),
    /// The inputs set aside in error_event, grouped by reason, newest examples.
    Errors(errors::ErrorsArgs),
}

fn main() -> ExitCode {
    shared::return_freed_memory_promptly();
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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate(args) => migrate::run(args),
        Command::Pipeline(args) => pipeline::run(args),
        Command::Backfill(args) => backfill::run(args),
        Command::Report(args) => analytics::report(args),
        Command::Viewers(args) => analytics::viewers(args),
        Command::Timeline(args) => analytics::timeline(args),
        Command::Presentations(args) => analytics::presentations(args),
        Command::RefreshSummaries(args) => analytics::refresh_summaries(args),
        Command::Engagement(args) => engagement::run(args),
        Command::Flags(args) => flags::run(args),
        Command::Forget(args) => forget::run(args),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Status(args) => status::run(args),
        Command::Dlq(args) => dlq::run(args),
        Command::Errors(args) => errors::run(args),
    }
}

/// The command `warehouse ARGS…` means (tests of the command files).
#[cfg(test)]
fn parse(args: &[&str]) -> Command {
    Cli::try_parse_from(std::iter::once("warehouse").chain(args.iter().copied()))
        .expect("valid arguments")
        .command
}
