//! Every fault operation on the sim, through the same API a kind cluster offers: each test shows
//! the fault's effect through the Kubernetes API, then its undo. The same cases run on kind in
//! `tests/faults_kind.rs`.

/// Where the cases run, for the few whose effect differs (`network_faults_…`).
const PROVIDER: &str = "sim";

include!("faults/cases.rs");

chaos_runtime::main!(provider = "sim");
