//! `warehouse backfill`: loads an export resumably, here or in the deployed
//! backfill function (`--via-lambda`).

use shared::contract::DataPoint;
use shared::jobs::backfill::{self, BackfillOptions, Filters, Mode};
use shared::redrive::QueueUrls;

use crate::common::{aws_if, context, database, parse_time, print_json, runtime};

#[derive(clap::Args)]
pub struct BackfillArgs {
    /// A local path or s3://bucket/key.
    #[arg(long)]
    source: String,
    /// direct: load into the warehouse; enqueue: send to the data points' queues (QUEUE_URL_*).
    #[arg(long, value_enum, default_value_t = ModeArg::Direct)]
    mode: ModeArg,
    /// Continue this run (its checkpoint is in the warehouse) or name a new one.
    #[arg(long)]
    run_id: Option<String>,
    /// Only these tenants (repeatable).
    #[arg(long = "tenant")]
    tenants: Vec<String>,
    /// Only these presentations (repeatable).
    #[arg(long = "presentation")]
    presentations: Vec<String>,
    /// Only events with occurredAt at or after this RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Only events with occurredAt at or before this RFC 3339 time.
    #[arg(long)]
    to: Option<String>,
    /// Only these data points (repeatable).
    #[arg(long = "data-point", value_enum)]
    data_points: Vec<DataPointArg>,
    /// Parse, validate and count only; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Lines per transaction, at most.
    #[arg(long, default_value_t = backfill::DEFAULT_BATCH_LINES)]
    batch_lines: usize,
    /// Bytes of lines per transaction, at most (a longer line is a
    /// transaction of its own).
    #[arg(long, default_value_t = backfill::DEFAULT_BATCH_BYTES)]
    batch_bytes: usize,
    /// Connections loading at once in direct mode (events are dealt to them
    /// by presentation); a resumed run must use its own number again.
    #[arg(long, default_value_t = backfill::DEFAULT_LANES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=backfill::MAX_LANES as u64))]
    lanes: usize,
    /// Run it in this deployed backfill function (name or ARN) instead of
    /// here, invoking it again with the returned runId until it is done
    /// (the function's BACKFILL_BATCH_LINES and BACKFILL_BATCH_BYTES replace
    /// --batch-lines and --batch-bytes there; it reads only s3:// exports
    /// under its EXPORT_BUCKET and EXPORT_PREFIX).
    #[arg(long, value_name = "FUNCTION")]
    via_lambda: Option<String>,
}

/// `--mode`: the spellings of `Mode::parse`, CLI-side so `shared` needs no clap.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum ModeArg {
    Direct,
    Enqueue,
}

impl From<ModeArg> for Mode {
    fn from(arg: ModeArg) -> Mode {
        match arg {
            ModeArg::Direct => Mode::Direct,
            ModeArg::Enqueue => Mode::Enqueue,
        }
    }
}

/// `--data-point`: the spellings of `DataPoint::parse`, CLI-side so `shared`
/// needs no clap.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum DataPointArg {
    Presentation,
    Attendance,
    Polls,
    Surveys,
    Qna,
}

impl From<DataPointArg> for DataPoint {
    fn from(arg: DataPointArg) -> DataPoint {
        match arg {
            DataPointArg::Presentation => DataPoint::Presentation,
            DataPointArg::Attendance => DataPoint::Attendance,
            DataPointArg::Polls => DataPoint::Polls,
            DataPointArg::Surveys => DataPoint::Surveys,
            DataPointArg::Qna => DataPoint::Qna,
        }
    }
}

pub fn run(args: BackfillArgs) -> anyhow::Result<()> {
    let filters = Filters {
        tenants: args.tenants,
        presentations: args.presentations,
        from_ms: args.from.as_deref().map(parse_time).transpose()?,
        to_ms: args.to.as_deref().map(parse_time).transpose()?,
        data_points: args.data_points.into_iter().map(Into::into).collect(),
    };
    let options = BackfillOptions {
        source: args.source,
        mode: args.mode.into(),
        filters,
        dry_run: args.dry_run,
        lanes: args.lanes,
    };
    let runtime = runtime()?;
    if let Some(function) = args.via_lambda {
        let mut payload = serde_json::to_value(&options)?;
        payload["runId"] = serde_json::json!(args.run_id);
        let summary = runtime.block_on(async {
            let aws = shared::store::sdk_config().await;
            warehouse_cli::invoke::invoke_until_done(
                &aws_sdk_lambda::Client::new(&aws),
                &function,
                payload,
                |answer| {
                    eprintln!(
                        "backfill: {function}: {} lines so far, next offset {}",
                        answer["lines"], answer["nextOffset"]
                    )
                },
            )
            .await
        })?;
        return print_json(&summary, true);
    }
    let summary = runtime.block_on(async {
        let needs_s3 = options.source.starts_with("s3://");
        let enqueue = options.mode == Mode::Enqueue && !options.dry_run;
        let aws = aws_if(needs_s3 || enqueue).await;
        let queues = if enqueue {
            QueueUrls::from_env()?
        } else {
            QueueUrls::default()
        };
        let db = database(options.lanes.max(2))?;
        let ctx = context(
            db,
            aws.as_ref()
                .filter(|_| needs_s3)
                .map(shared::store::s3_client),
            aws.as_ref()
                .filter(|_| enqueue)
                .map(shared::store::sqs_client),
            queues,
            args.batch_lines,
            args.batch_bytes,
        );
        let summary = backfill::run(&ctx, &options, args.run_id, None).await?;
        Ok::<_, anyhow::Error>(summary)
    })?;
    eprintln!();
    print_json(&summary, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, ValueEnum};

    use crate::{Cli, Command};

    fn parse(args: &[&str]) -> Result<BackfillArgs, clap::Error> {
        let cli = Cli::try_parse_from(
            ["warehouse", "backfill", "--source", "e.jsonl"]
                .into_iter()
                .chain(args.iter().copied()),
        )?;
        let Command::Backfill(args) = cli.command else {
            panic!("backfill")
        };
        Ok(args)
    }

    #[test]
    fn mode_and_data_points_take_the_contracts_spellings() {
        let args = parse(&[]).unwrap();
        assert_eq!(Mode::from(args.mode), Mode::Direct);
        assert!(args.data_points.is_empty());
        let args = parse(&[
            "--mode",
            "enqueue",
            "--data-point",
            "qna",
            "--data-point",
            "presentation",
        ])
        .unwrap();
        assert_eq!(Mode::from(args.mode), Mode::Enqueue);
        let data_points: Vec<DataPoint> = args.data_points.into_iter().map(Into::into).collect();
        assert_eq!(data_points, [DataPoint::Qna, DataPoint::Presentation]);
        for bad in [
            ["--mode", "Direct"],
            ["--mode", "queue"],
            ["--data-point", "Polls"],
            ["--data-point", "poll"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_lists_the_values() {
        let help = Cli::command()
            .find_subcommand_mut("backfill")
            .unwrap()
            .render_help()
            .to_string();
        assert!(
            help.contains("[possible values: direct, enqueue]"),
            "{help}"
        );
        assert!(
            help.contains("[possible values: presentation, attendance, polls, surveys, qna]"),
            "{help}"
        );
    }

    #[test]
    fn values_are_spelled_as_the_shared_parsers_spell_them() {
        let spelled: Vec<String> = DataPointArg::value_variants()
            .iter()
            .map(|v| v.to_possible_value().unwrap().get_name().to_string())
            .collect();
        let contract: Vec<&str> = DataPoint::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(spelled, contract);
        for arg in DataPointArg::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(DataPoint::parse(&name), Some(DataPoint::from(*arg)));
        }
        for arg in ModeArg::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(Mode::parse(&name), Ok(Mode::from(*arg)));
        }
    }
}
