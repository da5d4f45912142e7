//! A nextest run killed halfway (nextest, its tests and the reaper, all with SIGKILL, as a
//! cancelled CI job) leaves clusters that `cargo chaos gc` removes, with the run's records: the
//! clusters' owner is the nextest process, not the test process that created them. Tested with
//! the stand-in nextest on a fake kind (`fake_kind/mod.rs`).

mod fake_kind;

use std::process::Command;
use std::time::Duration;

use fake_kind::{Fake, wait_until};

#[test]
fn a_nextest_run_killed_halfway_leaves_nothing_after_gc() {
    let fake = Fake::new("killed");
    // Tests that hold their clusters for a minute: killed while they run.
    let mut nextest = fake.nextest(&[("SHARED_TEST_SLEEP_MS", "60000")]);
    wait_until(
        "both topologies' clusters to be made and held",
        Duration::from_secs(120),
        || {
            let leases =
                std::fs::read_to_string(fake.run_dir().join("leases.json")).unwrap_or_default();
            fake.clusters().len() == 2 && leases.matches("\"held\"").count() == 2
        },
        || fake.report(),
    );
    let leases = std::fs::read_to_string(fake.run_dir().join("leases.json")).unwrap();
    let book: serde_json::Value = serde_json::from_str(&leases).unwrap();
    let reaper = book["reaper"]["pid"]
        .as_u64()
        .expect("a reaper was started");
    let killed = Command::new("kill")
        .args(["-KILL", &reaper.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", nextest.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    nextest.wait().unwrap();
    wait_until(
        "the killed reaper to be gone",
        Duration::from_secs(10),
        || {
            // Gone, or a zombie that nobody reaps (proc(5): state `Z`, after the name).
            let stat = std::fs::read_to_string(format!("/proc/{reaper}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .next();
            matches!(state, None | Some("Z" | "X"))
        },
        || fake.report(),
    );
    assert_eq!(
        fake.clusters().len(),
        2,
        "left behind, for gc: {}",
        fake.report()
    );

    // `cargo chaos gc` is `remove_leftovers` on the default records, with kind found as always.
    // SAFETY: this test binary has this one test, and no other thread reads the environment.
    unsafe {
        std::env::set_var("CHAOS_KIND", fake.dir.join("kind"));
        std::env::set_var("PATH", fake.path());
        std::env::set_var("FAKE_KUBE", fake_kind::FAKE_KUBE);
    }
    let records = chaos_runtime::__kind::ownership::Records::at(fake.state());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime
        .block_on(chaos_runtime::__kind::remove_leftovers(&records))
        .expect("gc runs");
    assert_eq!(report.removed.len(), 2, "{report:?}\n{}", fake.report());
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(fake.clusters(), Vec::<String>::new(), "{}", fake.report());
    assert_eq!(fake.ownership_records(), Vec::<String>::new());
    assert_eq!(fake.servers(), Vec::<String>::new());
    assert!(
        !fake.run_dir().exists(),
        "gc removes the run's lease records"
    );
}
