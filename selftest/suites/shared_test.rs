//! `shared.rs` as a test target, for a real `cargo nextest run -p chaos-selftest --test shared`
//! (nextest runs test targets, not binaries) on the fake kind of `tests/fake_kind/mod.rs`;
//! ignored unless CHAOS_SELFTEST_SHARED=kind.

mod shared_tests;

chaos_runtime::main!(only_if_env = "CHAOS_SELFTEST_SHARED=kind");
