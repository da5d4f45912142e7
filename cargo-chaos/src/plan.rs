//! `cargo chaos plan`: the kind config for a topology, printed, nothing created; with `--shards`,
//! how a suite's topologies are split over CI machines (`shards.rs`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use chaos_runtime::__kind::config::{self, ConfigOptions};
use chaos_runtime::__kind::images::{self, ImagePins, KindRelease, NodeImage};
use chaos_topology::{DEFAULT_K8S, DEFAULT_MASTERS, DEFAULT_WORKERS, TopologySpec, Version};

use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct PlanArgs {
    /// Control-plane nodes.
    #[arg(long, default_value_t = DEFAULT_MASTERS)]
    masters: u32,
    /// Worker nodes.
    #[arg(long, default_value_t = DEFAULT_WORKERS)]
    workers: u32,
    /// Control-plane version, and every node's unless a list below says otherwise: 1.29 (its
    /// newest kind image) or 1.29.14.
    #[arg(long, default_value = DEFAULT_K8S, value_name = "VERSION")]
    k8s: String,
    /// One version for every control plane, or one per control plane, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "VERSIONS")]
    master_versions: Vec<String>,
    /// One version for every worker, or one per worker, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "VERSIONS")]
    worker_versions: Vec<String>,
    /// Cluster name.
    #[arg(long, default_value = "chaos")]
    name: String,
    /// Keep Kubernetes' node failure timings (NotReady after 40-50s, pods evicted 5 minutes
    /// later) instead of shortening them to seconds.
    #[arg(long)]
    keep_default_timings: bool,
    /// Instead of a config: how CHAOS_PARTITION=count:K/N and hash:K/N split the topologies of
    /// the suite --suite names over N shards (CI machines), with their modelled cost.
    #[arg(
        long,
        value_name = "N",
        requires = "suite",
        value_parser = clap::value_parser!(u64).range(1..=1024),
        conflicts_with_all = [
            "masters", "workers", "k8s", "master_versions", "worker_versions", "name",
            "keep_default_timings",
        ],
    )]
    shards: Option<u64>,
    /// A built suite binary (`cargo test --no-run --test NAME` prints its path), for --shards.
    #[arg(long, value_name = "PATH", requires = "shards")]
    suite: Option<PathBuf>,
}

pub(crate) fn run(args: &PlanArgs, release: impl FnOnce() -> KindRelease) -> Result<(), Failure> {
    if let (Some(shards), Some(suite)) = (args.shards, &args.suite) {
        return crate::shards::run(shards, suite);
    }
    let pins = ImagePins::from_env().map_err(|err| Failure::Input(format!("{err:#}")))?;
    config::check_cluster_name(&args.name)
        .map_err(|err| Failure::Input(format!("{err}; choose another with --name")))?;
    let spec = TopologySpec {
        masters: args.masters,
        workers: args.workers,
        k8s: version("--k8s", &args.k8s)?,
        master_versions: versions("--master-versions", &args.master_versions)?,
        worker_versions: versions("--worker-versions", &args.worker_versions)?,
    };
    let topology = spec
        .build()
        .map_err(|err| Failure::Input(in_flags(&err.to_string())))?;
    let installed = release();
    let images = topology
        .nodes()
        .iter()
        .map(|node| images::resolve(node.version, installed, &pins))
        .collect::<Result<Vec<NodeImage>, _>>()
        .map_err(|err| Failure::Input(err.to_string()))?;
    let mut warned = BTreeSet::new();
    for warning in images.iter().filter_map(NodeImage::warning) {
        if warned.insert(warning.clone()) {
            eprintln!("warning: {warning}");
        }
    }
    let options = ConfigOptions {
        fast_failure_detection: !args.keep_default_timings,
    };
    let yaml = config::render(&args.name, &topology, &images, &options, installed)
        .map_err(Failure::Other)?;
    crate::print(&yaml)
}

fn version(flag: &str, text: &str) -> Result<Version, Failure> {
    text.parse()
        .map_err(|err| Failure::Input(format!("{flag}: {err}")))
}

fn versions(flag: &str, texts: &[String]) -> Result<Vec<Version>, Failure> {
    texts.iter().map(|text| version(flag, text)).collect()
}

/// A topology error, which names the attribute's keys, in the CLI's flags.
fn in_flags(message: &str) -> String {
    [
        ("`master_versions`", "--master-versions"),
        ("`worker_versions`", "--worker-versions"),
        ("`masters = 1`", "--masters 1"),
        ("`k8s`", "--k8s"),
    ]
    .iter()
    .fold(message.to_owned(), |message, (key, flag)| {
        message.replace(key, flag)
    })
}
