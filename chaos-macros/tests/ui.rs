//! Compile errors of `#[chaos_test]`, one misuse per file, and the forms that compile.
//!
//! The `.stderr` snapshots hold rustc's exact output: regenerate them with `TRYBUILD=overwrite`
//! after a toolchain update, and read the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
