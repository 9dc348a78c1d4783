//! `warehouse reconcile`: compares an export with the warehouse ledger and
//! optionally repairs what is missing, through the jobs' context.

use shared::jobs::backfill;
use shared::jobs::reconcile::{ReconcileOptions, Repair};
use shared::redrive::QueueUrls;

use crate::common::{aws_if, context, database, parse_time, print_json, runtime};

#[derive(clap::Args)]
pub struct ReconcileArgs {
    /// A local path, s3://bucket/key, or s3://bucket/prefix/ for every object under it.
    #[arg(long)]
    source: String,
    /// Window start on occurredAt (RFC 3339); defaults to the export's first event.
    #[arg(long)]
    from: Option<String>,
    /// Window end on occurredAt (RFC 3339); defaults to the export's last event.
    #[arg(long)]
    to: Option<String>,
    /// Re-drive missing events to their queues (QUEUE_URL_*) or load them directly.
    #[arg(long, value_enum)]
    repair: Option<RepairArg>,
}

/// `--repair`: the spellings of `Repair::parse`, CLI-side so `shared` needs no clap.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum RepairArg {
    Queue,
    Direct,
}

impl From<RepairArg> for Repair {
    fn from(arg: RepairArg) -> Repair {
        match arg {
            RepairArg::Queue => Repair::Queue,
            RepairArg::Direct => Repair::Direct,
        }
    }
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let options = ReconcileOptions {
        source: args.source,
        from_ms: args.from.as_deref().map(parse_time).transpose()?,
        to_ms: args.to.as_deref().map(parse_time).transpose()?,
        repair: args.repair.map(Into::into),
    };
    let summary = runtime()?.block_on(async {
        let queue_repair = options.repair == Some(Repair::Queue);
        let uses_s3 = options.source.starts_with("s3://");
        let aws = aws_if(uses_s3 || queue_repair).await;
        let queues = if queue_repair {
            QueueUrls::from_env()?
        } else {
            QueueUrls::default()
        };
        let ctx = context(
            database(2)?,
            aws.as_ref()
                .filter(|_| uses_s3)
                .map(shared::store::s3_client),
            aws.as_ref()
                .filter(|_| queue_repair)
                .map(shared::store::sqs_client),
            queues,
            backfill::DEFAULT_BATCH_LINES,
            backfill::DEFAULT_BATCH_BYTES,
        );
        let (summary, _) =
            shared::jobs::reconcile::run_to_end(&ctx.db, ctx.s3.as_ref(), Some(&ctx), &options)
                .await?;
        Ok::<_, anyhow::Error>(summary)
    })?;
    print_json(&summary, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, ValueEnum};

    use crate::{Cli, Command};

    fn parse(args: &[&str]) -> Result<ReconcileArgs, clap::Error> {
        let cli = Cli::try_parse_from(
            ["warehouse", "reconcile", "--source", "e.jsonl"]
                .into_iter()
                .chain(args.iter().copied()),
        )?;
        let Command::Reconcile(args) = cli.command else {
            panic!("reconcile")
        };
        Ok(args)
    }

    #[test]
    fn repair_takes_the_jobs_spellings() {
        assert_eq!(parse(&[]).unwrap().repair, None);
        for (text, repair) in [("queue", Repair::Queue), ("direct", Repair::Direct)] {
            let args = parse(&["--repair", text]).unwrap();
            assert_eq!(args.repair.map(Repair::from), Some(repair));
        }
        for arg in RepairArg::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(Repair::parse(&name), Ok(Repair::from(*arg)));
        }
        for bad in ["Queue", "enqueue", ""] {
            assert!(parse(&["--repair", bad]).is_err(), "{bad:?}");
        }
    }
}
