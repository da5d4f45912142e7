//! The fault suite (`tests/faults/cases.rs`) on clusters the real kind binary creates: on real
//! kind images with `CHAOS_E2E=kind`, else on stand-in kind where Docker is up
//! (`tests/standin/mod.rs`). Each fault acts through Docker and the real network, and its effect
//! is seen through the API by the path real kind takes.

/// Where the cases run, for the few whose effect differs (`network_faults_…`).
const PROVIDER: &str = "kind";

include!("faults/cases.rs");

mod standin;

fn main() -> std::process::ExitCode {
    standin::main(env!("CARGO_PKG_NAME"), "faults_kind")
}
