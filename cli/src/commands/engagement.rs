//! `warehouse engagement set | get`: a tenant's engagement score weights
//! (ANALYTICS.md §5), kept in the warehouse; every later answer uses them.
//! Both print `{"tenantId", "weights": {"watch", "polls", "surveys", "qna"},
//! "default": true|false}` (`set`: the weights now in force).

use shared::contract::{EngagementWeights, MAX_WEIGHT};
use shared::read;

use crate::common::{database, print_json};

#[derive(clap::Args, Debug)]
pub struct EngagementArgs {
    #[command(subcommand)]
    command: EngagementCommand,
}

/// A weight: a whole number from 0 to 100.
fn weight(text: &str) -> Result<u8, String> {
    text.trim()
        .parse::<u8>()
        .ok()
        .filter(|w| *w <= MAX_WEIGHT)
        .ok_or_else(|| {
            format!("{text:?} is not a weight: use a whole number from 0 to {MAX_WEIGHT}")
        })
}

#[derive(clap::Subcommand, Debug)]
enum EngagementCommand {
    /// Set all four weights of a tenant (0 to 100 each, at least one above 0).
    Set {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = weight)]
        watch: u8,
        #[arg(long, value_parser = weight)]
        polls: u8,
        #[arg(long, value_parser = weight)]
        surveys: u8,
        #[arg(long, value_parser = weight)]
        qna: u8,
    },
    /// The weights in force for a tenant, and whether they are the defaults.
    Get {
        #[arg(long)]
        tenant: String,
    },
}

pub fn run(args: EngagementArgs) -> anyhow::Result<()> {
    let db = database(1)?;
    let mut conn = db.conn()?;
    let settings = match args.command {
        EngagementCommand::Set {
            tenant,
            watch,
            polls,
            surveys,
            qna,
        } => {
            let weights = EngagementWeights {
                watch,
                polls,
                surveys,
                qna,
            };
            read::set_engagement_weights(&mut conn, &tenant, weights)?
        }
        EngagementCommand::Get { tenant } => read::engagement_weights(&mut conn, &tenant)?,
    };
    print_json(&settings, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse, Command};
    use clap::Parser;

    #[test]
    fn weights_are_whole_numbers_from_0_to_100() {
        assert_eq!(weight("0"), Ok(0));
        assert_eq!(weight(" 100 "), Ok(100));
        for bad in ["101", "-1", "1.5", "", "ten", "256"] {
            assert!(weight(bad).unwrap_err().contains("0 to 100"), "{bad}");
        }
        let Command::Engagement(EngagementArgs {
            command: EngagementCommand::Set { watch, qna, .. },
        }) = parse(&[
            "engagement",
            "set",
            "--tenant",
            "globex",
            "--watch",
            "0",
            "--polls",
            "40",
            "--surveys",
            "10",
            "--qna",
            "50",
        ])
        else {
            panic!("engagement set")
        };
        assert_eq!((watch, qna), (0, 50));
        // All four are required.
        assert!(crate::Cli::try_parse_from([
            "warehouse",
            "engagement",
            "set",
            "--tenant",
            "t",
            "--watch",
            "1"
        ])
        .is_err());
    }
}
