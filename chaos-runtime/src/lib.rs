//! `chaos-runtime`: the harness, providers, faults and waits behind `#[chaos_test]`.
//!
//! A user's test target depends on this crate alone: it re-exports the attribute, `kube` and
//! `k8s-openapi`. See the README and `API.md` for the contract.

pub mod apply;
mod cluster;
mod command;
pub mod docker;
pub mod faults;
mod harness;
mod health;
pub mod monkey;
mod namespace;
mod observe;
pub mod ownership;
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
    pub use crate::faults::Fault;
    pub use crate::monkey::{MonkeyFault, MonkeyPlan};
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

    pub fn run_main(package: &'static str, suite: Suite) -> std::process::ExitCode {
        crate::harness::run(Some(package), suite)
    }
    pub use linkme;
}

/// For `cargo chaos`; not part of the public API.
#[doc(hidden)]
pub mod __cli {
    pub use crate::ownership::Records;
    pub use crate::provider::kind::{
        ClusterListing, config, images, list_clusters, remove_leftovers,
    };
}
