//! `warehouse errors`: the inputs set aside in `error_event` since a time,
//! grouped by reason (`malformed`, `wrong_data_point`, `conflict`,
//! `refused`), with counts and the newest examples, bodies cut to 1 KiB and
//! anonymous askers removed.

use shared::contract::DataPoint;
use shared::ops::{self, ErrorFilter};

use super::dlq::data_point_arg;
use crate::common::{database, parse_time, print_json};

#[derive(clap::Args, Debug)]
pub struct ErrorsArgs {
    /// Rows seen after this time (RFC 3339); default 24 hours ago.
    #[arg(long)]
    since: Option<String>,
    /// Only what this data point's loader recorded.
    #[arg(long, value_parser = data_point_arg)]
    data_point: Option<DataPoint>,
    /// Only this reason.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ops::REASONS))]
    reason: Option<String>,
    /// Examples per reason, 0 to 100.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(0..=100))]
    limit: u16,
    /// Indented JSON.
    #[arg(long)]
    pretty: bool,
}

pub fn run(args: ErrorsArgs) -> anyhow::Result<()> {
    let now_ms = shared::store::now_ms();
    let filter = ErrorFilter {
        since_ms: match &args.since {
            Some(text) => parse_time(text)?,
            None => now_ms - 24 * 3_600_000,
        },
        until_ms: now_ms,
        data_point: args.data_point,
        reason: args.reason,
        examples: args.limit as usize,
    };
    let report = ops::error_groups(&database(1)?, &filter)?;
    print_json(&report, args.pretty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    use crate::{parse, Cli, Command};

    #[test]
    fn errors_arguments_parse() {
        let Command::Errors(args) = parse(&[
            "errors",
            "--since",
            "2026-01-01T00:00:00Z",
            "--data-point",
            "attendance",
            "--reason",
            "refused",
            "--limit",
            "5",
        ]) else {
            panic!("errors")
        };
        assert_eq!(args.data_point, Some(DataPoint::Attendance));
        assert_eq!(args.reason.as_deref(), Some("refused"));
        assert_eq!(args.limit, 5);
        let Command::Errors(args) = parse(&["errors"]) else {
            panic!("errors")
        };
        assert_eq!((args.since, args.reason, args.limit), (None, None, 3));
        assert!(Cli::try_parse_from(["warehouse", "errors", "--reason", "oops"]).is_err());
    }
}
