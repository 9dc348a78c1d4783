//! `warehouse generate`: writes a synthetic export made to the contract.

use std::path::PathBuf;

use shared::jobs::generate::{generate, GenerateOptions};

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Where to write (stdout when absent).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 10)]
    presentations: u32,
    /// Viewers per presentation.
    #[arg(long, default_value_t = 100)]
    viewers: u32,
    /// Heartbeats per viewing session.
    #[arg(long, default_value_t = 20)]
    heartbeats: u32,
    #[arg(long, default_value_t = 2)]
    tenants: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let options = GenerateOptions {
        tenants: args.tenants,
        presentations: args.presentations,
        viewers: args.viewers,
        heartbeats: args.heartbeats,
        seed: args.seed,
        shuffle: true,
        first_presentation: 0,
    };
    let summary = match args.out {
        Some(path) => {
            let file = std::fs::File::create(&path)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
            generate(&options, &mut std::io::BufWriter::new(file))?
        }
        None => generate(
            &options,
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
        )?,
    };
    eprintln!("generated {} lines, {} bytes", summary.lines, summary.bytes);
    Ok(())
}
