//! `chaos-runtime`: chaos tests for Kubernetes, written as ordinary Rust tests.
//!
//! A test target depends on this crate alone (it re-exports the attribute, [`kube`] and
//! [`k8s_openapi`]), sets `harness = false`, and ends with [`main!`]:
//!
//! ```no_run
//! # // rustdoc would wrap the example in `fn main() { .. }`, where a test is not a free function.
//! # mod suite {
//! use std::time::Duration;
//! use chaos_runtime::prelude::*;
//!
//! #[chaos_test(masters = 3, workers = 3, k8s = "1.29", worker_versions = ["1.28"])]
//! async fn a_worker_comes_back(cluster: &Cluster) -> anyhow::Result<()> {
//!     let worker = cluster.workers()[0];
//!     let stopped = worker.stop().await?;
//!     cluster.wait_for_node_ready(worker.name(), false, Duration::from_secs(60)).await?;
//!     stopped.undo().await?;
//!     cluster.wait_for_nodes_ready(Duration::from_secs(120)).await?;
//!     Ok(())
//! }
//!
//! chaos_runtime::main!();
//! # }
//! # fn main() {}
//! ```
//!
//! What a user writes against:
//! - [`chaos_test`]: the attribute. Keys `masters`, `workers`, `k8s` (a version, or a list for a
//!   version matrix), `worker_versions`, `master_versions`, `timeout`, `ignore`, `retries`; every
//!   misuse, including a topology Kubernetes' version-skew policy forbids, is a compile error.
//! - [`main!`]: the harness as `fn main`, with libtest's command line (filters, `--exact`, `--list`,
//!   `--format`, ...). It makes one cluster per distinct topology, shares it between the tests
//!   that ask for it, heals and checks it between them, and removes every cluster at the end; its
//!   last line is the summary (`chaos summary: tests=… passed=… failed=… ignored=…
//!   clusters_created=… clusters_recreated=… clusters_destroyed=… clusters_reused=… flaky=…
//!   provider=…`), and with `CHAOS_JUNIT=path` it writes a JUnit report.
//! - [`Cluster`] and [`Node`]: what a test gets, with the fault operations ([`faults`], each
//!   returning a [`faults::Fault`] handle that undoes it), the waits and probes ([`wait`],
//!   [`conditions`], [`probe`]), [`apply`], the [`monkey`] and the [`timeline`].
//! - The settings, from the environment: `CHAOS_PROVIDER` (`kind`, `sim` or `auto`),
//!   `CHAOS_MAX_CLUSTERS`, `CHAOS_KEEP`, `CHAOS_REUSE`, `CHAOS_SEED`, `CHAOS_TEST_TIMEOUT`,
//!   `CHAOS_RETRIES`, `CHAOS_TEST_SEED`, `CHAOS_JUNIT`, and the provider's own (the README lists
//!   them all).
//!
//! Clusters come from a provider: `kind` (real clusters in Docker) or `sim` (an in-memory
//! Kubernetes API, for writing and checking suites fast, which says where it cannot model what kind
//! would do). `ARCHITECTURE.md` in the repository says how the pieces fit.

pub mod apply;
mod cluster;
mod command;
mod dirs;
pub mod faults;
mod harness;
mod hash;
mod lease;
pub mod monkey;
mod namespace;
mod node;
mod observe;
mod provider;
mod registry;
pub mod timeline;

pub use observe::{conditions, probe, wait};

pub use chaos_macros::chaos_test;
pub use chaos_topology::{Role, Topology, Version};
pub use cluster::{Cluster, Node};
pub use k8s_openapi;
pub use kube;
pub use rand;

/// Everything a test file needs: `use chaos_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::faults::{Fault, NodeFault};
    #[allow(deprecated)]
    pub use crate::monkey::MonkeyFault;
    pub use crate::monkey::MonkeyPlan;
    pub use crate::{Cluster, Node, Role, Topology, Version, chaos_test};
}

/// The test harness as `fn main`: put `chaos_runtime::main!();` at the end of a test target that
/// has `harness = false`.
///
/// `chaos_runtime::main!(provider = "sim");` runs on that provider whatever `CHAOS_PROVIDER` says.
/// `chaos_runtime::main!(only_if_env = "CHAOS_E2E=kind");` runs the suite only when that variable
/// has that value (with the provider it names, if it names one); otherwise every test is reported
/// as ignored, with the reason, and nothing is provisioned.
#[macro_export]
macro_rules! main {
    () => {
        fn main() -> ::std::process::ExitCode {
            // The package name makes the printed reproduce commands exact in a workspace.
            $crate::__private::run_main(
                ::core::env!("CARGO_PKG_NAME"),
                $crate::__private::Suite::Always,
            )
        }
    };
    (provider = $provider:literal) => {
        fn main() -> ::std::process::ExitCode {
            $crate::__private::run_main(
                ::core::env!("CARGO_PKG_NAME"),
                $crate::__private::Suite::OnProvider($provider),
            )
        }
    };
    (only_if_env = $gate:literal) => {
        fn main() -> ::std::process::ExitCode {
            $crate::__private::run_main(
                ::core::env!("CARGO_PKG_NAME"),
                $crate::__private::Suite::OnlyIfEnv($gate),
            )
        }
    };
}

/// Runs every registered test under the harness and returns the process exit code.
pub fn run() -> std::process::ExitCode {
    harness::run(None, harness::Suite::Always)
}

/// Used by the code `#[chaos_test]` expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::{IntoTestResult, TESTS, TestFuture, TestRegistration};

    pub use crate::harness::Suite;

    /// An on/off setting by the harness's one rule (`1`/`true`/`yes`/`on`, `0`/`false`/`no`/`off`
    /// or unset; anything else an error), for the project's own test suites.
    pub fn flag(name: &str) -> anyhow::Result<bool> {
        Ok(crate::harness::settings::flag(name)?)
    }

    pub fn run_main(package: &'static str, suite: Suite) -> std::process::ExitCode {
        crate::harness::run(Some(package), suite)
    }
    pub use linkme;
}

/// Sharding (`CHAOS_PARTITION`), for `cargo chaos plan --shards`; not part of the public API.
#[doc(hidden)]
pub mod __shard {
    pub use crate::harness::shard::{
        CREATE_PER_NODE, Mode, PER_TEST, Partition, PartitionError, ShardGroup, assign,
        modelled_cost,
    };
}

/// kind's internals, for `cargo chaos` and the Docker-level tests; not part of the public API.
#[doc(hidden)]
pub mod __kind {
    pub use crate::provider::kind::{
        ClusterListing, GcFailure, GcReport, Survey, config, docker, fake_node_objects, images,
        kind_binary, list_clusters, ownership, remove_leftovers,
    };
}
