//! `warehouse verify`: the release check, replaying a sample of
//! presentations from the export and comparing with the warehouse's reports;
//! exits non-zero when any differ.

use crate::common::{aws_if, database, print_json, runtime};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The export the warehouse was loaded from (path or s3://).
    #[arg(long)]
    source: String,
    /// How many presentations to check.
    #[arg(long, default_value_t = 10)]
    sample: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let VerifyArgs {
        source,
        sample,
        seed,
    } = args;
    let report = runtime()?.block_on(async {
        let aws = aws_if(source.starts_with("s3://")).await;
        let s3 = aws.as_ref().map(shared::store::s3_client);
        let db = database(1)?;
        Ok::<_, anyhow::Error>(
            shared::jobs::verify::verify(&db, s3.as_ref(), &source, sample, seed).await?,
        )
    })?;
    for (presentation, fields) in &report.differences {
        eprintln!("{presentation} differs from the replay:");
        for field in fields {
            eprintln!("  {field}");
        }
    }
    print_json(&report, true)?;
    if !report.passed() {
        anyhow::bail!(
            "{} of {} presentations differ from the old computation (fields listed above)",
            report.differences.len(),
            report.checked.len()
        );
    }
    Ok(())
}
