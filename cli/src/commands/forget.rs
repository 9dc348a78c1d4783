//! `warehouse forget --tenant T --viewer V`: erases a viewer everywhere, for
//! good (ANALYTICS.md §8), and prints the receipt `{"tenantId", "viewerId",
//! "known", "erasedAt"}`. Safe to repeat, for a viewer not yet seen too, and
//! on a live warehouse while loaders run.

use std::time::{Duration, Instant};

use crate::common::{database, print_json};

#[derive(clap::Args, Debug)]
pub struct ForgetArgs {
    /// The viewer's tenant.
    #[arg(long)]
    tenant: String,
    /// The viewer's id (unique within the tenant).
    #[arg(long)]
    viewer: String,
    /// Indented JSON.
    #[arg(long)]
    pretty: bool,
}

/// How long the erasure may wait behind loads in flight and retry.
const BUDGET: Duration = Duration::from_secs(120);

pub fn run(args: ForgetArgs) -> anyhow::Result<()> {
    let db = database(1)?;
    let receipt = shared::write::forget(
        &db,
        &args.tenant,
        &args.viewer,
        shared::store::now_ms(),
        Instant::now() + BUDGET,
    )?;
    print_json(&receipt, args.pretty)
}

#[cfg(test)]
mod tests {
    use crate::{parse, Command};

    #[test]
    fn takes_a_tenant_and_a_viewer() {
        let Command::Forget(args) = parse(&["forget", "--tenant", "acme", "--viewer", "u-10"])
        else {
            panic!("not forget")
        };
        assert_eq!(
            (args.tenant.as_str(), args.viewer.as_str()),
            ("acme", "u-10")
        );
        assert!(!args.pretty);
    }
}
