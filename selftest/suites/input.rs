//! Input the harness must refuse before it creates anything, whatever the provider: run as a
//! child process by `tests/input.rs`, which picks the tests with a filter.

use chaos_runtime::prelude::*;

/// Compiles (1.99 is a well-formed version), but kind has no node image of it.
#[chaos_test(masters = 1, workers = 1, k8s = "1.99")]
async fn unknown_version(_cluster: &Cluster) -> anyhow::Result<()> {
    Ok(())
}

/// A minor kind has images of, at a patch it has none of.
#[chaos_test(masters = 1, workers = 1, k8s = "1.29.3")]
async fn unknown_patch(_cluster: &Cluster) -> anyhow::Result<()> {
    Ok(())
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.35")]
async fn known_version(cluster: &Cluster) -> anyhow::Result<()> {
    anyhow::ensure!(cluster.nodes().len() == 2);
    Ok(())
}

/// Kubernetes' skew allows it, but on kind a 1.30 kubeadm cannot join a 1.32 control plane.
#[chaos_test(masters = 1, workers = 1, k8s = "1.32", worker_versions = ["1.30"])]
async fn kind_join_skew(cluster: &Cluster) -> anyhow::Result<()> {
    anyhow::ensure!(cluster.nodes().len() == 2);
    Ok(())
}

chaos_runtime::main!();
