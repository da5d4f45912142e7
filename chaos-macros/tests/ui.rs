//! Compile errors of `#[chaos_test]`, one misuse per file, and the forms that compile.
//!
//! The cases build against `ui-runtime/`, a stand-in for `chaos-runtime` (this crate's
//! dev-dependency under that name) with the runtime's own `registry.rs`: trybuild builds every
//! dev-dependency again in a target directory of its own, and the real runtime would cost kube,
//! k8s-openapi and tokio, twice. The errors whose rendering depends on the real runtime's types
//! and crate graph (an error type that does not convert, a future that is not `Send`) are checked
//! against the real runtime by `selftest/tests/ui.rs`.
//!
//! The `.stderr` snapshots hold rustc's exact output: regenerate them with `TRYBUILD=overwrite`
//! after a toolchain update, and read the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
