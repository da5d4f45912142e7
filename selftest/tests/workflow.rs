//! The GitHub workflow that runs the kind suites on real images (`.github/workflows/e2e-kind.yml`)
//! cannot run here; these checks hold it to what GitHub's runners need.

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
