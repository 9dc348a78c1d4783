//! `warehouse report | viewers | presentations | timeline`: the analytics answers of
//! ANALYTICS.md as JSON on stdout (compact; `--pretty` for people), the
//! viewers also as CSV and the timeline also as an SVG chart (`--format`). The
//! parameters are checked by the same code as the HTTP API's
//! (`shared::read::{ViewerParams, PresentationParams}`), before any
//! connection is made, so both accept exactly the same inputs. The CLI
//! ignores the rollout flags: it always answers in full.

use shared::read;
use shared::read::{PresentationParams, ViewerParams};

use crate::common::{database, print_json};

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    presentation: String,
    /// Indented JSON.
    #[arg(long)]
    pretty: bool,
}

#[derive(clap::Args, Debug)]
pub struct TimelineArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    presentation: String,
    /// json (ANALYTICS.md §4, the default) or svg (the curve drawn as a chart).
    #[arg(long, default_value = "json")]
    format: String,
    /// Indented JSON.
    #[arg(long)]
    pretty: bool,
}

#[derive(clap::Args, Debug)]
pub struct ViewersArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    presentation: String,
    /// Exact; `unknown` matches viewers without a department.
    #[arg(long)]
    department: Option<String>,
    /// Any letter case.
    #[arg(long)]
    country: Option<String>,
    /// desktop, mobile, tablet, tv or unknown.
    #[arg(long)]
    device: Option<String>,
    /// Case-insensitive substring of the name or the email.
    #[arg(long)]
    search: Option<String>,
    /// watch (the default), name, joined, engagement or score.
    #[arg(long)]
    sort: Option<String>,
    /// Rows per page, 1 to 1000 (default 50).
    #[arg(long, allow_hyphen_values = true)]
    limit: Option<String>,
    /// Rows to skip (default 0).
    #[arg(long, allow_hyphen_values = true)]
    offset: Option<String>,
    /// json (a page, the default) or csv (every matching row, ANALYTICS.md §7).
    #[arg(long, default_value = "json")]
    format: String,
    /// Indented JSON.
    #[arg(long)]
    pretty: bool,
}

#[derive(clap::Args, Debug)]
pub struct PresentationsArgs {
    #[arg(long)]
    tenant: String,
    /// Case-insensitive substring of the title.
    #[arg(long)]
    search: Option<String>,
    /// scheduledStart at or after: YYYY-MM-DD (UTC day) or RFC 3339.
    #[arg(long)]
    from: Option<String>,
    /// scheduledStart at or before: YYYY-MM-DD (the whole UTC day) or RFC 3339.
    #[arg(long)]
    to: Option<String>,
    /// started (the default), viewers or title.
    #[arg(long)]
    sort: Option<String>,
    /// Rows per page, 1 to 1000 (default 50).
    #[arg(long, allow_hyphen_values = true)]
    limit: Option<String>,
    /// Rows to skip (default 0).
    #[arg(long, allow_hyphen_values = true)]
    offset: Option<String>,
    /// Indented JSON.
    #[arg(long)]
    pretty: bool,
}

impl ViewersArgs {
    fn params(&self) -> ViewerParams {
        ViewerParams {
            department: self.department.clone(),
            country: self.country.clone(),
            device: self.device.clone(),
            search: self.search.clone(),
            sort: self.sort.clone(),
            limit: self.limit.clone(),
            offset: self.offset.clone(),
        }
    }
}

impl PresentationsArgs {
    fn params(&self) -> PresentationParams {
        PresentationParams {
            search: self.search.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            sort: self.sort.clone(),
            limit: self.limit.clone(),
            offset: self.offset.clone(),
        }
    }
}

/// `warehouse report`.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let db = database(1)?;
    let report = read::presentation_report(&mut db.conn()?, &args.tenant, &args.presentation)?;
    print_json(&report, args.pretty)
}

/// `warehouse timeline`: the JSON, or with `--format svg` the SVG chart on
/// stdout (redirect it to a file to look at it).
pub fn timeline(args: TimelineArgs) -> anyhow::Result<()> {
    let format = read::parse_timeline_format(Some(&args.format))?;
    let db = database(1)?;
    let mut conn = db.conn()?;
    match format {
        read::TimelineFormat::Json => {
            let timeline = read::timeline(&mut conn, &args.tenant, &args.presentation)?;
            print_json(&timeline, args.pretty)
        }
        read::TimelineFormat::Svg => {
            if args.pretty {
                anyhow::bail!("--pretty indents JSON; it does not apply to --format svg");
            }
            let (timeline, heading) =
                read::timeline_with_heading(&mut conn, &args.tenant, &args.presentation)?;
            let svg = read::timeline_svg(&timeline, &heading);
            let mut out = std::io::stdout().lock();
            std::io::Write::write_all(&mut out, svg.as_bytes())?;
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
    }
}

/// `warehouse viewers`.
pub fn viewers(args: ViewersArgs) -> anyhow::Result<()> {
    let query = args.params().query()?;
    if read::parse_viewer_format(Some(&args.format))? == read::ViewerFormat::Csv {
        if args.limit.is_some() || args.offset.is_some() {
            anyhow::bail!(
                "--limit and --offset do not apply to --format csv: it holds every matching row"
            );
        }
        let db = database(1)?;
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        read::viewer_csv(
            &mut db.conn()?,
            &args.tenant,
            &args.presentation,
            &query,
            None,
            &mut out,
        )?;
        std::io::Write::flush(&mut out)?;
        return Ok(());
    }
    let db = database(1)?;
    let list = read::viewer_list(&mut db.conn()?, &args.tenant, &args.presentation, &query)?;
    print_json(&list, args.pretty)
}

#[derive(clap::Args, Debug)]
pub struct RefreshSummariesArgs {
    /// Only this tenant's (default: every tenant's).
    #[arg(long)]
    tenant: Option<String>,
}

/// `warehouse refresh-summaries`: recomputes the stale presentation
/// summaries the list reads (the loaders do it after every batch; this is
/// for after a release that changes their format, or by hand).
pub fn refresh_summaries(args: RefreshSummariesArgs) -> anyhow::Result<()> {
    let db = database(1)?;
    let mut conn = db.conn()?;
    let refreshed = match &args.tenant {
        Some(tenant) => read::Refreshed {
            written: read::refresh_summaries(&mut conn, tenant)?,
            left: 0,
        },
        None => read::refresh_stale_summaries(&mut conn, None)?,
    };
    print_json(&refreshed, false)
}

/// `warehouse presentations`: the summaries as they are (the list never
/// writes; `staleFigures` names the rows whose figures lag their latest load).
pub fn presentations(args: PresentationsArgs) -> anyhow::Result<()> {
    let query = args.params().query()?;
    let db = database(1)?;
    let list = read::presentation_list(&mut db.conn()?, &args.tenant, &query)?;
    print_json(&list, args.pretty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    use crate::{parse, Cli, Command};

    #[test]
    fn viewer_arguments_become_the_apis_query() {
        let Command::Viewers(args) = parse(&[
            "viewers",
            "--tenant",
            "acme",
            "--presentation",
            "p-1",
            "--country",
            "us",
            "--sort",
            "Name",
            "--limit",
            "10",
            "--offset",
            "5",
        ]) else {
            panic!("viewers")
        };
        let query = args.params().query().unwrap();
        assert_eq!(query.country.as_deref(), Some("us"));
        assert_eq!(query.sort, read::ViewerSort::Name);
        assert_eq!((query.limit, query.offset), (10, 5));
        for (flag, value, named) in [
            ("--sort", "views", "sort: "),
            ("--limit", "1001", "limit "),
            ("--offset", "-1", "offset "),
        ] {
            let Command::Viewers(args) = parse(&[
                "viewers",
                "--tenant",
                "t",
                "--presentation",
                "p",
                flag,
                value,
            ]) else {
                panic!("viewers")
            };
            let err = args.params().query().unwrap_err().to_string();
            assert!(err.starts_with(named), "{flag} {value}: {err}");
        }
    }

    #[test]
    fn presentation_arguments_become_the_apis_query() {
        let Command::Presentations(args) = parse(&[
            "presentations",
            "--tenant",
            "acme",
            "--from",
            "2021-09-10",
            "--to",
            "2021-09-10",
            "--sort",
            "title",
        ]) else {
            panic!("presentations")
        };
        let query = args.params().query().unwrap();
        assert_eq!(query.from, Some(1_631_232_000_000));
        assert_eq!(query.to, Some(1_631_318_399_999));
        assert_eq!(query.sort, read::PresentationSort::Title);
        let Command::Presentations(args) =
            parse(&["presentations", "--tenant", "acme", "--to", "10/09/2021"])
        else {
            panic!("presentations")
        };
        let err = args.params().query().unwrap_err().to_string();
        assert!(err.starts_with("to: malformed date"), "{err}");
    }

    #[test]
    fn viewers_take_a_format_and_the_timeline_its_presentation() {
        let Command::Viewers(args) = parse(&[
            "viewers",
            "--tenant",
            "acme",
            "--presentation",
            "p-1",
            "--format",
            "CSV",
            "--sort",
            "score",
        ]) else {
            panic!("viewers")
        };
        assert_eq!(
            read::parse_viewer_format(Some(&args.format)).unwrap(),
            read::ViewerFormat::Csv
        );
        assert_eq!(args.params().query().unwrap().sort, read::ViewerSort::Score);
        assert!(read::parse_viewer_format(Some("xml")).is_err());
        let Command::Timeline(args) = parse(&["timeline", "--tenant", "a", "--presentation", "p"])
        else {
            panic!("timeline")
        };
        assert_eq!((args.format.as_str(), args.pretty), ("json", false));
        let Command::Timeline(args) = parse(&[
            "timeline",
            "--tenant",
            "a",
            "--presentation",
            "p",
            "--format",
            "svg",
        ]) else {
            panic!("timeline")
        };
        assert_eq!(
            read::parse_timeline_format(Some(&args.format)).unwrap(),
            read::TimelineFormat::Svg
        );
        assert!(read::parse_timeline_format(Some("csv")).is_err());
    }

    #[test]
    fn report_arguments_parse() {
        assert!(matches!(
            parse(&["report", "--tenant", "a", "--presentation", "p", "--pretty"]),
            Command::Report(ReportArgs { pretty: true, .. })
        ));
        assert!(Cli::try_parse_from(["warehouse", "report", "--tenant", "a"]).is_err());
    }
}
