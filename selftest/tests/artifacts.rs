//! A failed test's artifacts, seen from outside: the `selftest-artifacts` suite runs as a child
//! process on the sim, and its failed test's folder must hold what explains the failure.

use std::path::Path;
use std::process::Command;

const ARTIFACTS: &str = env!("CARGO_BIN_EXE_selftest-artifacts");
const FAILED: &str = "fails_with_an_app_deployed_and_a_worker_down";

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

#[test]
fn a_failed_test_leaves_events_pod_and_node_states_and_prints_where() {
    let out = Command::new(ARTIFACTS)
        .env("CHAOS_PROVIDER", "sim")
        .env("CHAOS_SIM_PROVISION_DELAY", "20ms")
        .output()
        .expect("the suite runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let both = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert_eq!(out.status.code(), Some(101), "{both}");

    // The failure names the folder, next to the timeline.
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("artifacts: "))
        .unwrap_or_else(|| panic!("no `artifacts:` line: {both}"));
    assert!(
        dir.ends_with(&format!("chaos/selftest-artifacts/{FAILED}")),
        "complete, at the test's folder: {dir}"
    );
    let dir = Path::new(dir);
    assert!(dir.join("timeline.json").is_file(), "{both}");
    let timeline: serde_json::Value = serde_json::from_str(&read(dir, "timeline.json")).unwrap();
    let started = timeline["entries"][0]["what"].as_str().unwrap();
    let namespace = started
        .split_once(" in namespace ")
        .and_then(|(_, rest)| rest.split(',').next())
        .unwrap_or_else(|| panic!("no namespace in {started}"));

    // Every step worked.
    let report = read(dir, "artifacts.txt");
    assert!(!report.contains("FAILED"), "{report}");

    // Events of the test's namespace, as the sim's components recorded them, and the worker's
    // NodeNotReady from the node controller; oldest first.
    let events = read(dir, "events.txt");
    assert!(
        events.starts_with("LAST SEEN"),
        "columns like kubectl's: {events}"
    );
    for (reason, object) in [
        ("ScalingReplicaSet", "deployment/web "),
        ("SuccessfulCreate", "replicaset/web-"),
        ("Scheduled", "pod/web-"),
        ("NodeNotReady", "node/"),
    ] {
        assert!(
            events
                .lines()
                .any(|l| l.contains(reason) && l.contains(object)),
            "{reason} on {object}: {events}"
        );
    }
    let position = |reason: &str| events.find(reason).unwrap();
    assert!(
        position("ScalingReplicaSet") < position("Scheduled")
            && position("Scheduled") < position("NodeNotReady"),
        "oldest first: {events}"
    );
    let json: Vec<serde_json::Value> = serde_json::from_str(&read(dir, "events.json")).unwrap();
    assert!(
        json.iter()
            .any(|e| e["metadata"]["namespace"] == namespace && e["reason"] == "Scheduled"),
        "{json:?}"
    );

    // The pods of its namespace, with their phase, node and conditions.
    let pods = read(dir, "pods.txt");
    let web: Vec<&str> = pods.lines().filter(|l| l.starts_with("web-")).collect();
    assert_eq!(web.len(), 2, "{pods}");
    assert!(
        web.iter().all(|l| l.contains("PodScheduled=True")),
        "{pods}"
    );

    // Every node, with its conditions: the stopped worker's Ready is Unknown.
    let nodes = read(dir, "nodes.txt");
    assert!(nodes.starts_with("NAME"), "{nodes}");
    assert_eq!(nodes.matches("conditions of ").count(), 3, "{nodes}");
    assert!(
        nodes.lines().any(|l| l.trim_start().starts_with("Ready")
            && l.contains("Unknown")
            && l.contains("NodeStatusUnknown")),
        "{nodes}"
    );
    assert!(
        nodes.contains("node-role.kubernetes.io/control-plane:NoSchedule"),
        "taints: {nodes}"
    );

    // The sim runs no containers: it says so instead of logs.
    assert_eq!(
        read(dir, "pods/no-logs.txt"),
        "no logs: the sim runs no containers\n"
    );

    // A passing test collects nothing.
    let passed = dir.parent().unwrap().join("passes");
    assert!(passed.join("timeline.json").is_file(), "{both}");
    assert!(!passed.join("artifacts.txt").exists(), "{both}");
}
