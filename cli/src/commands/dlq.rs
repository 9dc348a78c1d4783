//! `warehouse dlq list | redrive`: a data point's dead-letter queue
//! (`DLQ_URL_<DATA POINT>`) peeked at without consuming it, and moved back
//! to its queue (`QUEUE_URL_<DATA POINT>`). Why a redrive is safe to run
//! twice or to stop half-way: see `shared::ops` (`dlq.rs`) and
//! docs/RUNBOOK.md.

use shared::contract::DataPoint;
use shared::ops::{self, RedriveMethod, RedriveOptions};
use shared::store::{env_lookup, required};

use crate::common::{aws_if, print_json, runtime};

#[derive(clap::Args, Debug)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DlqCommand {
    /// Peek at a dead-letter queue's messages without consuming them: each
    /// is made visible again at once (SQS counts the peek as a receive; the
    /// listed receiveCount leaves it out).
    List {
        /// presentation, attendance, polls, surveys or qna.
        #[arg(long, value_parser = data_point_arg)]
        data_point: DataPoint,
        /// Messages to show, 1 to 100.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        /// Indented JSON.
        #[arg(long)]
        pretty: bool,
    },
    /// Move a dead-letter queue's messages back to the data point's queue:
    /// SQS's message move task where it is available, else receive, send,
    /// then delete. Safe to run twice and to stop half-way.
    Redrive {
        /// presentation, attendance, polls, surveys or qna.
        #[arg(long, value_parser = data_point_arg)]
        data_point: DataPoint,
        /// At most this many messages (moved by the loop: a move task moves all).
        #[arg(long)]
        max: Option<u64>,
        /// Count what would be moved; move nothing.
        #[arg(long)]
        dry_run: bool,
        /// auto (the move task where SQS has it, else the loop), move-task or loop.
        #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
        method: MethodArg,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum MethodArg {
    Auto,
    MoveTask,
    Loop,
}

impl From<MethodArg> for RedriveMethod {
    fn from(arg: MethodArg) -> RedriveMethod {
        match arg {
            MethodArg::Auto => RedriveMethod::Auto,
            MethodArg::MoveTask => RedriveMethod::MoveTask,
            MethodArg::Loop => RedriveMethod::Loop,
        }
    }
}

/// `--data-point`: a data point's name, in any letter case.
pub fn data_point_arg(text: &str) -> Result<DataPoint, String> {
    DataPoint::parse(&text.trim().to_lowercase()).ok_or_else(|| {
        let names: Vec<&str> = DataPoint::ALL.iter().map(|d| d.as_str()).collect();
        format!("{text:?} is no data point: use one of {}", names.join(", "))
    })
}

fn dlq_url(data_point: DataPoint) -> anyhow::Result<String> {
    Ok(required(
        &env_lookup,
        &ops::dlq_variable(data_point),
        &format!("the {data_point} dead-letter queue's URL"),
    )?)
}

pub fn run(args: DlqArgs) -> anyhow::Result<()> {
    match args.command {
        DlqCommand::List {
            data_point,
            limit,
            pretty,
        } => {
            let url = dlq_url(data_point)?;
            let list = runtime()?.block_on(async {
                let aws = aws_if(true).await.expect("AWS configuration");
                let sqs = shared::store::sqs_client(&aws);
                ops::list_dead_letters(&sqs, data_point, &url, limit as usize).await
            })?;
            print_json(&list, pretty)
        }
        DlqCommand::Redrive {
            data_point,
            max,
            dry_run,
            method,
        } => {
            let dlq = dlq_url(data_point)?;
            let queue = required(
                &env_lookup,
                &ops::queue_variable(data_point),
                &format!("the {data_point} queue's URL (where its loader reads)"),
            )?;
            let options = RedriveOptions {
                max,
                dry_run,
                method: method.into(),
                ..RedriveOptions::default()
            };
            let outcome = runtime()?.block_on(async {
                let aws = aws_if(true).await.expect("AWS configuration");
                let sqs = shared::store::sqs_client(&aws);
                ops::redrive(&sqs, data_point, &dlq, &queue, &options).await
            })?;
            print_json(&outcome, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::{parse, Command};

    #[test]
    fn dlq_arguments_parse() {
        let Command::Dlq(DlqArgs {
            command: DlqCommand::List {
                data_point, limit, ..
            },
        }) = parse(&["dlq", "list", "--data-point", "QnA"])
        else {
            panic!("dlq list")
        };
        assert_eq!((data_point, limit), (DataPoint::Qna, 10));
        let Command::Dlq(DlqArgs {
            command:
                DlqCommand::Redrive {
                    data_point,
                    max,
                    dry_run,
                    method,
                },
        }) = parse(&[
            "dlq",
            "redrive",
            "--data-point",
            "polls",
            "--max",
            "5",
            "--dry-run",
            "--method",
            "loop",
        ])
        else {
            panic!("dlq redrive")
        };
        assert_eq!(
            (data_point, max, dry_run, RedriveMethod::from(method)),
            (DataPoint::Polls, Some(5), true, RedriveMethod::Loop)
        );
        assert!(data_point_arg("poll")
            .unwrap_err()
            .contains("presentation, attendance"));
    }
}
