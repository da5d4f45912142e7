//! `#[chaos_test]`: registers an `async fn(&Cluster)` with the `chaos-runtime` harness.
//!
//! Users get it through `chaos_runtime::chaos_test` (the expansion names `chaos_runtime` paths).
//! The function must be an `async fn` with one `&Cluster` parameter, returning `()` or
//! `Result<(), E>`. The attribute's keys, all optional:
//!
//! - `masters = 3`, `workers = 3`: how many control-plane and worker nodes (defaults 1 and 1;
//!   at least one control plane, and at most `chaos_topology::MAX_NODES`, 5000, together).
//! - `k8s = "1.29"` (or a pinned patch, `"1.29.14"`; or a list, `["1.29", "1.30"]`, which runs
//!   the test once per version): the control-plane version, and that of every node no list
//!   overrides.
//! - `master_versions = ["1.29"]`, `worker_versions = ["1.28"]`: one entry for every node of
//!   that role, or one per node, in order; within Kubernetes' version-skew policy.
//! - `timeout = "10m"`: the test's limit, a positive whole number of milliseconds (default: the
//!   harness's).
//! - `ignore`, or `ignore = "reason"`: registered, but reported as ignored.
//! - `retries = 2`: a failed test runs again, up to this many times (0 to 10), each attempt on a
//!   healed cluster with a seed of its own; one that passes on a retry is reported flaky
//!   (default: the harness's `CHAOS_RETRIES`; `retries = 0` is never retried).
//!
//! Everything about the attribute that can be known at compile time is checked here: keys and
//! value types, versions, the cluster's version-skew policy and the function's shape. Each mistake
//! is a compile error that points at the token at fault and says how to fix it.
//!
//! It goes on a free function (not one in an `impl`, nor one named `main`), once, and without
//! another test attribute (`#[test]`, `#[tokio::test]`) below it.
//!
//! The pipeline is the one of `tokio-macros`: `parse` reads the arguments as written, `config`
//! validates them, `signature` checks the function and the attributes beside it, and `expand`
//! writes the registration, inside the function's body.

mod config;
mod errors;
mod expand;
mod parse;
mod signature;

use proc_macro::TokenStream;

/// Marks an `async fn(cluster: &Cluster)` as a chaos test on a cluster of the shape its keys
/// describe; see the crate documentation for the keys.
#[proc_macro_attribute]
pub fn chaos_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr.into(), item.into()).into()
}
