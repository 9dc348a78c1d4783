//! `warehouse flags set | list`: the analytics API's rollout flags per
//! tenant and data point, as JSON on stdout (compact; `--pretty` for people).

use std::ffi::OsStr;

use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};
use serde_json::json;
use shared::contract::DataPoint;
use shared::read::flags::{self, FlagState, DEFAULT_STATE};

use crate::common::{database, print_json};

#[derive(clap::Args, Debug)]
pub struct FlagsArgs {
    #[command(subcommand)]
    command: FlagsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum FlagsCommand {
    /// Set a tenant's flag for one data point: off (the API leaves its
    /// sections out), shadow (served only with ?shadow=true) or on.
    Set {
        #[arg(long)]
        tenant: String,
        /// attendance, polls, surveys or qna.
        // In any letter case and blanks around, as `flags::parse_data_point`
        // (the HTTP API's) takes them.
        #[arg(long, ignore_case = true, hide_possible_values = true,
              value_parser = Trimmed(EnumValueParser::<FlaggedDataPointArg>::new()))]
        data_point: FlaggedDataPointArg,
        /// off, shadow or on.
        #[arg(long)]
        state: String,
        /// Indented JSON.
        #[arg(long)]
        pretty: bool,
    },
    /// The stored flags (all tenants, or one with its effective states).
    List {
        #[arg(long)]
        tenant: Option<String>,
        /// Indented JSON.
        #[arg(long)]
        pretty: bool,
    },
}

/// `flags set --data-point`: the data points that have a flag.
/// `presentation` is left out of the listed values but parses, so that
/// `flagged` refuses it with the API's own error.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum FlaggedDataPointArg {
    #[value(hide = true)]
    Presentation,
    Attendance,
    Polls,
    Surveys,
    Qna,
}

impl From<FlaggedDataPointArg> for DataPoint {
    fn from(arg: FlaggedDataPointArg) -> DataPoint {
        match arg {
            FlaggedDataPointArg::Presentation => DataPoint::Presentation,
            FlaggedDataPointArg::Attendance => DataPoint::Attendance,
            FlaggedDataPointArg::Polls => DataPoint::Polls,
            FlaggedDataPointArg::Surveys => DataPoint::Surveys,
            FlaggedDataPointArg::Qna => DataPoint::Qna,
        }
    }
}

/// A value parser that ignores blanks around the value, then asks `P`.
#[derive(Clone)]
struct Trimmed<P>(P);

impl<P: TypedValueParser> TypedValueParser for Trimmed<P> {
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<P::Value, clap::Error> {
        let value = value.to_str().map_or(value, |text| OsStr::new(text.trim()));
        self.0.parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.0.possible_values()
    }
}

/// Only the data points that have a flag; `presentation` is refused with
/// `flags::parse_data_point`'s error.
fn flagged(data_point: FlaggedDataPointArg) -> anyhow::Result<DataPoint> {
    Ok(flags::parse_data_point(
        DataPoint::from(data_point).as_str(),
    )?)
}

/// `warehouse flags set | list`.
pub fn run(args: FlagsArgs) -> anyhow::Result<()> {
    match args.command {
        FlagsCommand::Set {
            tenant,
            data_point,
            state,
            pretty,
        } => {
            let data_point = flagged(data_point)?;
            let state = FlagState::parse(&state)?;
            let db = database(1)?;
            let flag = flags::set_flag(&mut db.conn()?, &tenant, data_point, state)?;
            print_json(&flag, pretty)
        }
        FlagsCommand::List { tenant, pretty } => {
            let db = database(1)?;
            let mut conn = db.conn()?;
            let stored = flags::list_flags(&mut conn, tenant.as_deref())?;
            let mut out = json!({ "defaultState": DEFAULT_STATE, "flags": stored });
            if let Some(tenant) = &tenant {
                // The tenant's rows are the ones just listed: no second read.
                let effective = flags::TenantFlags::from_states(
                    stored.iter().map(|flag| (flag.data_point, flag.state)),
                )
                .effective();
                out["tenantId"] = json!(tenant);
                out["effective"] = json!(effective);
            }
            print_json(&out, pretty)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    use crate::{parse, Cli, Command};

    fn set_data_point(text: &str) -> Result<FlaggedDataPointArg, clap::Error> {
        let cli = Cli::try_parse_from([
            "warehouse",
            "flags",
            "set",
            "--tenant",
            "t",
            "--state",
            "on",
            "--data-point",
            text,
        ])?;
        let Command::Flags(FlagsArgs {
            command: FlagsCommand::Set { data_point, .. },
        }) = cli.command
        else {
            panic!("flags set")
        };
        Ok(data_point)
    }

    #[test]
    fn flag_arguments_parse() {
        let Command::Flags(FlagsArgs {
            command:
                FlagsCommand::Set {
                    tenant,
                    data_point,
                    state,
                    pretty,
                },
        }) = parse(&[
            "flags",
            "set",
            "--tenant",
            "acme",
            "--data-point",
            "polls",
            "--state",
            "shadow",
        ])
        else {
            panic!("flags set")
        };
        assert_eq!((tenant.as_str(), pretty), ("acme", false));
        assert_eq!(flagged(data_point).unwrap().as_str(), "polls");
        assert_eq!(FlagState::parse(&state).unwrap(), FlagState::Shadow);
        assert!(matches!(
            parse(&["flags", "list"]),
            Command::Flags(FlagsArgs {
                command: FlagsCommand::List { tenant: None, .. }
            })
        ));
    }

    #[test]
    fn set_takes_the_flagged_data_points_as_the_api_does() {
        for text in ["qna", "QnA", " Attendance ", "SURVEYS"] {
            let data_point = flagged(set_data_point(text).unwrap()).unwrap();
            assert_eq!(
                Ok(data_point),
                flags::parse_data_point(text).map_err(|e| e.to_string())
            );
        }
        let err = flagged(set_data_point("presentation").unwrap()).unwrap_err();
        assert!(err.to_string().contains("has no flag"), "{err}");
        let err = set_data_point("poll").unwrap_err().to_string();
        assert!(
            err.contains("[possible values: attendance, polls, surveys, qna]"),
            "{err}"
        );
    }
}
