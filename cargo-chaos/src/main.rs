//! `cargo chaos`: what the kind provider would build, without building it; and the clusters it
//! built, with removal of those a finished run left behind.
//!
//! Installed, it runs as a cargo subcommand: cargo calls `cargo-chaos chaos <command>`. Run
//! directly (`cargo run -p cargo-chaos -- <command>`) it takes the command without `chaos`.

mod clusters;
mod kind;
mod plan;
mod shards;
mod versions;

use std::ffi::OsString;
use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use chaos_runtime::__kind::images::{KindRelease, parse_kind_version};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo chaos", bin_name = "cargo chaos", version)]
#[command(about = "Plan kind clusters for chaos topologies and list the node images kind supports")]
struct Cli {
    /// Plan for this kind release (e.g. v0.31.0) instead of the one on PATH.
    #[arg(long, global = true, value_name = "RELEASE", value_parser = parse_release)]
    kind_release: Option<KindRelease>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the kind config for a topology, creating nothing; or, with --shards N --suite PATH,
    /// which shard runs each topology of a suite.
    Plan(plan::PlanArgs),
    /// List the Kubernetes versions the kind release supports, and those it runs on a best-effort
    /// basis.
    Versions,
    /// List kind clusters with their owner (running, gone, kept, corrupt, not-ours) and what gc
    /// does with each; and the containers of the project's own tests.
    Ls,
    /// Delete the clusters this project made whose run has ended (and only those), and the test
    /// containers whose run has ended; exit 1 if any is left, with what to run by hand.
    Gc,
}

/// Why a command failed.
pub(crate) enum Failure {
    /// Bad input, with what to do about it: exit code 2, as for a usage error.
    Input(String),
    /// Anything else: exit code 1.
    Other(anyhow::Error),
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|arg| arg == "chaos") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    let release = || cli.kind_release.unwrap_or_else(kind::installed_or_newest);
    let result = match &cli.command {
        Command::Plan(args) => plan::run(args, release),
        Command::Versions => versions::run(release),
        Command::Ls => clusters::ls(),
        Command::Gc => clusters::gc(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Other(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to stdout; a reader that went away (`cargo chaos plan | head`) is no error.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != ErrorKind::BrokenPipe => Err(Failure::Other(err.into())),
        _ => Ok(()),
    }
}

fn parse_release(text: &str) -> Result<KindRelease, String> {
    parse_kind_version(&format!("kind {text}"))
        .ok_or_else(|| format!("`{text}` is not a kind release; write it as v0.33.0"))
}
