// Checks what the attribute registers, by reading the slice the harness reads.
use chaos_runtime::prelude::*;
use std::time::Duration;

#[chaos_test(masters = 3, workers = 3, k8s = "v1.29.14", worker_versions = ["1.28"])]
async fn mixed(cluster: &Cluster) -> anyhow::Result<()> {
    let _ = cluster.name();
    Ok(())
}

#[chaos_test(k8s = ["1.29", "1.30"], timeout = "1m 30s", ignore = "slow", retries = 3)]
async fn matrix(_: &Cluster) {}

fn main() {
    let mut tests: Vec<_> = chaos_runtime::__private::TESTS.iter().collect();
    tests.sort_by_key(|t| t.line);
    assert_eq!(tests.len(), 2);

    let mixed = tests[0];
    assert_eq!((mixed.name, mixed.module_path), ("mixed", module_path!()));
    assert!(mixed.file.ends_with("registration.rs"), "{}", mixed.file);
    assert_eq!(mixed.line, 6, "the line of the function's name");
    assert_eq!((mixed.masters, mixed.workers), (3, 3));
    assert_eq!(mixed.k8s, ["1.29.14"]);
    assert_eq!(mixed.master_versions, [] as [&str; 0]);
    assert_eq!(mixed.worker_versions, ["1.28"]);
    assert_eq!((mixed.timeout, mixed.ignore, mixed.retries), (None, None, None));

    let matrix = tests[1];
    assert_eq!(matrix.name, "matrix");
    assert_eq!(matrix.line, 12);
    assert_eq!((matrix.masters, matrix.workers), (1, 1));
    assert_eq!(matrix.k8s, ["1.29", "1.30"]);
    assert_eq!(matrix.timeout, Some(Duration::from_secs(90)));
    assert_eq!(matrix.ignore, Some("slow"));
    assert_eq!(matrix.retries, Some(3));
}
