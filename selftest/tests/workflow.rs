//! The GitHub workflow that runs the kind suites on real images (`.github/workflows/e2e-kind.yml`)
//! cannot run here; these checks hold it to what GitHub's runners need, and to its shards.

fn workflow() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.github/workflows/e2e-kind.yml"
    );
    std::fs::read_to_string(path).expect("the e2e-kind workflow")
}

/// The runner image already has a root-owned `/usr/local/bin/kind` and steps run unprivileged.
#[test]
fn kind_is_installed_where_the_job_may_write() {
    let workflow = workflow();
    assert!(!workflow.contains("-o /usr/local/bin") && !workflow.contains("Lo /usr/local/bin"));
    assert!(workflow.contains("\"$HOME/.local/bin/kind\""), "{workflow}");
    assert!(workflow.contains(">> \"$GITHUB_PATH\""), "{workflow}");
}

/// Limits are raised to kind's recommendation, never lowered below what the runner has.
#[test]
fn inotify_limits_are_only_ever_raised() {
    let workflow = workflow();
    for line in workflow.lines().filter(|l| l.contains("sysctl -w")) {
        assert!(
            line.contains("-lt") && line.contains("then"),
            "an unconditional sysctl: {line}"
        );
    }
    assert!(workflow.contains("fs.inotify.max_user_watches=524288"));
}

/// A failed job keeps what explains it.
#[test]
fn a_failed_job_uploads_the_chaos_artifacts() {
    let workflow = workflow();
    let upload = workflow
        .split("- name:")
        .find(|step| step.contains("actions/upload-artifact"))
        .expect("an upload step");
    assert!(upload.contains("if: failure()"), "{upload}");
    assert!(upload.contains("path: target/chaos/**"), "{upload}");
}

/// The kind suites run as a matrix of shards: shard K of the matrix runs `CHAOS_PARTITION=...:K/N`
/// with N the matrix's size, every shard runs to its end whatever the others do, and each uploads
/// its artifacts under a name of its own.
#[test]
fn the_kind_suites_run_as_a_matrix_of_shards() {
    let workflow: serde_json::Value =
        serde_saphyr::from_str(&workflow()).expect("the workflow is YAML");
    let job = &workflow["jobs"]["e2e-kind"];
    let shards: Vec<u64> = job["strategy"]["matrix"]["shard"]
        .as_array()
        .expect("a matrix of shards")
        .iter()
        .map(|s| s.as_u64().expect("a shard number"))
        .collect();
    let total = shards.len() as u64;
    assert!(total >= 2, "{shards:?}");
    assert_eq!(shards, (1..=total).collect::<Vec<_>>());
    assert_eq!(job["strategy"]["fail-fast"], serde_json::Value::Bool(false));
    let partition = job["env"]["CHAOS_PARTITION"]
        .as_str()
        .expect("CHAOS_PARTITION in the job's env");
    for shard in shards {
        let value = partition.replace("${{ matrix.shard }}", &shard.to_string());
        let parsed: chaos_runtime::__shard::Partition = value
            .parse()
            .unwrap_or_else(|e| panic!("CHAOS_PARTITION={value}: {e}"));
        assert_eq!((parsed.shard, parsed.total), (shard, total), "{value}");
    }
    let upload = job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|step| {
            step["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .expect("an upload step");
    assert!(
        upload["with"]["name"]
            .as_str()
            .is_some_and(|name| name.contains("${{ matrix.shard }}")),
        "{upload}"
    );
}
