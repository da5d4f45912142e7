//! Runs the built `cargo-chaos` with a fake `kind` on PATH (or none) and checks what it prints
//! and how it exits.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

const DIGEST: &str = "51a1434a5397193442f0be2a297b488b6c919ce8a3931be0ce822606ea5ca245";

/// Directories to use as PATH: one with a `kind` that says it is v0.33.0, one with v0.31.0, one
/// with none. Made once, before any test starts a process, so that no child inherits a script
/// still open for writing (which makes exec fail with "text file busy").
fn paths() -> &'static [PathBuf; 3] {
    static PATHS: OnceLock<[PathBuf; 3]> = OnceLock::new();
    PATHS.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cargo-chaos-cli");
        let dir = |name: &str, kind_version: Option<&str>| {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(line) = kind_version {
                let script = dir.join("kind");
                std::fs::write(&script, format!("#!/bin/sh\necho '{line}'\n")).unwrap();
                std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            dir
        };
        [
            dir("kind-v0.33.0", Some("kind v0.33.0 go1.27.2 linux/amd64")),
            dir("kind-v0.31.0", Some("kind v0.31.0 go1.25.5 linux/amd64")),
            dir("no-kind", None),
        ]
    })
}

#[derive(Clone, Copy)]
enum Kind {
    V0_33,
    V0_31,
    Missing,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_with(kind: Kind, env: &[(&str, &str)], args: &[&str]) -> Run {
    let path = &paths()[kind as usize];
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-chaos"));
    // No kind but the one on this PATH: none named by CHAOS_KIND, none in a cache.
    let empty_cache = paths()[Kind::Missing as usize].join("cache");
    command
        .args(args)
        .env("PATH", path)
        .env("CHAOS_CACHE", empty_cache)
        .env_remove("CHAOS_KIND")
        .env_remove("CHAOS_KIND_IMAGES");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn run(kind: Kind, args: &[&str]) -> Run {
    run_with(kind, &[], args)
}

/// The config's nodes as (role, image without digest), checking every image has a digest.
fn nodes(yaml: &str) -> Vec<(String, String)> {
    let config: Value = serde_saphyr::from_str(yaml).unwrap();
    assert_eq!(config["kind"], "Cluster");
    assert_eq!(config["apiVersion"], "kind.x-k8s.io/v1alpha4");
    config["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let image = node["image"].as_str().unwrap();
            let (name, digest) = image.split_once("@sha256:").unwrap();
            assert_eq!(digest.len(), 64, "{image}");
            (node["role"].as_str().unwrap().to_owned(), name.to_owned())
        })
        .collect()
}

fn assert_input_error(run: &Run, needle: &str) {
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let lines: Vec<&str> = run.stderr.lines().collect();
    let error: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(error.len(), 1, "{}", run.stderr);
    assert!(
        error[0].contains(needle),
        "{needle:?} not in {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

const ACCEPTANCE: &[&str] = &[
    "plan",
    "--masters",
    "3",
    "--workers",
    "3",
    "--k8s",
    "1.29",
    "--worker-versions",
    "1.28",
];

#[test]
fn plan_prints_a_config_with_per_node_images_and_best_effort_warnings() {
    let run = run(Kind::V0_33, ACCEPTANCE);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cp = (
        "control-plane".to_owned(),
        "kindest/node:v1.29.14".to_owned(),
    );
    let worker = ("worker".to_owned(), "kindest/node:v1.28.15".to_owned());
    let expected = [&cp, &cp, &cp, &worker, &worker, &worker].map(Clone::clone);
    assert_eq!(nodes(&run.stdout), expected);
    assert!(
        run.stdout.contains("node-monitor-grace-period"),
        "{}",
        run.stdout
    );
    let warnings: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{}", run.stderr);
    assert!(warnings[0].starts_with("warning: kindest/node:v1.29.14 was built for kind v0.27.0"));
    assert!(warnings[1].starts_with("warning: kindest/node:v1.28.15 was built for kind v0.25.0"));
    assert!(warnings.iter().all(|w| w.contains("best-effort")));
}

#[test]
fn cargo_passes_the_subcommand_name_first() {
    let mut args = vec!["chaos"];
    args.extend_from_slice(ACCEPTANCE);
    let as_subcommand = run(Kind::V0_33, &args);
    assert_eq!(as_subcommand.code, 0, "{}", as_subcommand.stderr);
    assert_eq!(as_subcommand.stdout, run(Kind::V0_33, ACCEPTANCE).stdout);
}

#[test]
fn without_kind_it_plans_for_the_newest_known_release_and_says_so() {
    let run = run(Kind::Missing, &["plan", "--k8s", "1.35", "--workers", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`kind` is not installed or not on PATH"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("scripts/install-kind.sh"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("planning for kind v0.33.0"),
        "{}",
        run.stderr
    );
    assert!(
        nodes(&run.stdout)
            .iter()
            .all(|(_, image)| image == "kindest/node:v1.35.8")
    );
    assert!(
        run.stdout
            .starts_with("# kind config for a 1m2w-k8s1.35 cluster, for kind v0.33.0")
    );
}

#[test]
fn plan_uses_the_release_of_the_kind_on_path() {
    let run = run(Kind::V0_31, &["plan", "--k8s", "1.35", "--name", "c1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(nodes(&run.stdout)[0].1, "kindest/node:v1.35.0");
    assert!(run.stdout.contains("name: c1"), "{}", run.stdout);
    // --kind-release overrides it.
    let run = run_with(Kind::V0_31, &[], &["plan", "--kind-release", "v0.33.0"]);
    assert_eq!(nodes(&run.stdout)[0].1, "kindest/node:v1.35.8");
}

/// `plan` finds kind as the runtime does: `CHAOS_KIND` first, then PATH, then the copy that
/// `scripts/install-kind.sh` caches.
#[test]
fn plan_finds_kind_through_chaos_kind_and_the_cache() {
    let v0_31 = paths()[Kind::V0_31 as usize].join("kind");
    let named = run_with(
        Kind::V0_33,
        &[("CHAOS_KIND", v0_31.to_str().unwrap())],
        &["plan", "--k8s", "1.35"],
    );
    assert_eq!(named.code, 0, "{}", named.stderr);
    assert_eq!(
        nodes(&named.stdout)[0].1,
        "kindest/node:v1.35.0",
        "CHAOS_KIND wins"
    );

    // The cache layout of scripts/install-kind.sh: <cache>/kind/usr/bin/kind.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cargo-chaos-cli/kind-cache");
    std::fs::create_dir_all(cache.join("kind/usr/bin")).unwrap();
    let cached = cache.join("kind/usr/bin/kind");
    if !cached.exists() {
        std::fs::copy(&v0_31, &cached).unwrap();
    }
    let versions = run_with(
        Kind::Missing,
        &[("CHAOS_CACHE", cache.to_str().unwrap())],
        &["versions"],
    );
    assert_eq!(versions.code, 0, "{}", versions.stderr);
    assert!(
        versions.stdout.starts_with("Supported by kind v0.31.0:"),
        "the cached kind, with none on PATH: {}",
        versions.stdout
    );
}

#[test]
fn v1beta4_nodes_get_versioned_patches() {
    let run = run(
        Kind::V0_33,
        &["plan", "--k8s", "1.36", "--worker-versions", "1.35"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("apiVersion: kubeadm.k8s.io/v1beta4"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("apiVersion: kubeadm.k8s.io/v1beta3"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("name: node-monitor-grace-period"),
        "{}",
        run.stdout
    );
}

#[test]
fn keep_default_timings_drops_the_patches() {
    let run = run(Kind::V0_33, &["plan", "--keep-default-timings"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stdout.contains("kubeadmConfigPatches"),
        "{}",
        run.stdout
    );
    assert_eq!(nodes(&run.stdout).len(), 2);
}

#[test]
fn a_pinned_image_replaces_the_table() {
    let pins = format!("1.29=kindest/node:v1.29.2@sha256:{DIGEST}");
    let env = [("CHAOS_KIND_IMAGES", pins.as_str())];
    let run = run_with(
        Kind::V0_33,
        &env,
        &["plan", "--k8s", "1.29", "--workers", "0"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("kindest/node:v1.29.2@sha256:{DIGEST}"))
    );
    let run = run_with(Kind::V0_33, &env, &["versions"]);
    assert!(
        run.stdout.contains("Pinned with CHAOS_KIND_IMAGES:"),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_input_is_one_error_line_and_exit_code_2() {
    let unknown = run(Kind::V0_33, &["plan", "--k8s", "1.12", "--workers", "0"]);
    assert_input_error(&unknown, "no kind node image for Kubernetes 1.12");
    assert_input_error(&unknown, "CHAOS_KIND_IMAGES=1.12=");
    assert_input_error(
        &run(Kind::V0_33, &["plan", "--k8s", "1.x"]),
        "--k8s: `1.x` is not",
    );
    assert_input_error(
        &run(
            Kind::V0_33,
            &["plan", "--k8s", "1.28", "--worker-versions", "1.29"],
        ),
        "newer --k8s",
    );
    assert_input_error(
        &run(
            Kind::V0_33,
            &["plan", "--workers", "3", "--worker-versions", "1.35,1.35"],
        ),
        "--worker-versions has 2 entries for 3 nodes",
    );
    assert_input_error(&run(Kind::V0_33, &["plan", "--name", "Chaos"]), "--name");
    let long = "c".repeat(41);
    assert_input_error(&run(Kind::V0_33, &["plan", "--name", &long]), "at most 40");
    assert_input_error(
        &run_with(Kind::V0_33, &[("CHAOS_KIND_IMAGES", "1.29")], &["plan"]),
        "CHAOS_KIND_IMAGES: `1.29` is not VERSION=IMAGE",
    );
    assert_input_error(
        &run(Kind::V0_31, &["plan", "--k8s", "1.37"]),
        "needs kind v0.32.0 or newer",
    );
    // Usage errors are clap's, with the same exit code.
    assert_eq!(run(Kind::V0_33, &["plan", "--masters", "x"]).code, 2);
    assert_eq!(run(Kind::V0_33, &["nonsense"]).code, 2);
}

#[test]
fn versions_separates_supported_from_best_effort_images() {
    let run = run(Kind::V0_33, &["versions"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (supported, best_effort) = run.stdout.split_once("\n\n").unwrap();
    assert!(
        supported.starts_with("Supported by kind v0.33.0:\n"),
        "{}",
        run.stdout
    );
    assert!(supported.contains("1.37.0"), "{supported}");
    assert!(
        supported.contains("kindest/node:v1.34.11@sha256:44e222ee"),
        "{supported}"
    );
    assert!(!supported.contains("1.29.14"), "{supported}");
    assert!(best_effort.starts_with("Best effort"), "{best_effort}");
    let line = best_effort.lines().find(|l| l.contains("1.29.14")).unwrap();
    assert!(line.contains("kind v0.27.0"), "{line}");
    assert!(!best_effort.contains("1.35.8"), "{best_effort}");

    let run = run_with(Kind::V0_31, &[], &["chaos", "versions"]);
    let (supported, best_effort) = run.stdout.split_once("\n\n").unwrap();
    assert!(supported.contains("1.35.0"), "{supported}");
    assert!(best_effort.contains("1.36.4"), "{best_effort}");
    assert!(
        !run.stdout.contains("1.37.0"),
        "kind v0.31 cannot run 1.37: {}",
        run.stdout
    );
}

/// A fake kind for `ls` and `gc`: lists the clusters in `clusters`, logs its calls to `calls`
/// (with the kubeconfig it was given), and deletes as kind does: a cluster named in `undeletable`
/// fails; otherwise the nodes go, and then, as kind's `delete.go` and `lock.go` do, a kubeconfig
/// (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`) with a `.lock` beside it fails the
/// command after the nodes were deleted.
fn cluster_kind(dir: &Path, clusters: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("clusters"), clusters.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("undeletable"), "").unwrap();
    let script = dir.join("kind");
    let body = r#"#!/bin/sh
dir=DIR
echo "$*" >> $dir/calls
case "$1 $2" in
  "get clusters") /bin/cat $dir/clusters ;;
  "version "*) echo 'kind v0.33.0 go1.27.2 linux/amd64' ;;
  "delete cluster")
     kubeconfig=${KUBECONFIG:-$HOME/.kube/config}
     while [ $# -gt 0 ]; do
       case "$1" in --name) name=$2 ;; --kubeconfig) kubeconfig=$2 ;; esac
       shift
     done
     if /bin/grep -qx "$name" $dir/undeletable; then
       echo "ERROR: failed to delete cluster \"$name\": error listing nodes: exit status 1" >&2
       exit 1
     fi
     /bin/grep -vx "$name" $dir/clusters > $dir/clusters.new; /bin/mv $dir/clusters.new $dir/clusters
     if [ -e "$kubeconfig.lock" ]; then
       echo "ERROR: failed to delete cluster \"$name\": failed to lock config file: open $kubeconfig.lock: file exists" >&2
       exit 1
     fi ;;
esac
"#
    .replace("DIR", &dir.display().to_string());
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// A fake docker beside the fake kind: `ps` prints the `containers` file (name, owner pid and
/// start, kind cluster: tab-separated), `rm` logs to `calls` and removes the container from that file.
fn fake_docker(dir: &Path, containers: &[(&str, u32, u64)]) {
    let lines: String = containers
        .iter()
        .map(|(name, pid, start)| {
            let cluster = name.rsplit_once('-').unwrap().0;
            format!("{name}\t{pid}\t{start}\t{cluster}\n")
        })
        .collect();
    std::fs::write(dir.join("containers"), lines).unwrap();
    let body = r#"#!/bin/sh
dir=DIR
echo "docker $*" >> $dir/calls
case "$1" in
  ps) /bin/cat $dir/containers ;;
  rm) for last; do :; done
      /bin/grep -v "^$last	" $dir/containers > $dir/containers.new; /bin/mv $dir/containers.new $dir/containers ;;
esac
"#
    .replace("DIR", &dir.display().to_string());
    let script = dir.join("docker");
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A pid no process has any more.
fn dead_pid() -> u32 {
    let mut exited = Command::new("true").spawn().unwrap();
    let pid = exited.id();
    exited.wait().unwrap();
    pid
}

/// This process's start time, as the ownership scheme records it.
fn my_start() -> u64 {
    use chaos_runtime::__kind::ownership::OwnerRecord;
    OwnerRecord::for_this_process("x", "kind", None).pid_start
}

/// A scratch directory with the fake kind and docker; the PATH and state to run with.
struct Scene {
    root: PathBuf,
    state: PathBuf,
    kind: PathBuf,
}

impl Scene {
    fn new(test: &str, clusters: &[&str], containers: &[(&str, u32, u64)]) -> Scene {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cargo-chaos-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let kind = cluster_kind(&root, clusters);
        fake_docker(&root, containers);
        Scene {
            state: root.join("state"),
            root,
            kind,
        }
    }

    fn records(&self) -> chaos_runtime::__kind::ownership::Records {
        chaos_runtime::__kind::ownership::Records::at(&self.state)
    }

    fn run(&self, extra: &[(&str, &str)], args: &[&str]) -> Run {
        let mut env = vec![
            ("CHAOS_KIND", self.kind.to_str().unwrap()),
            ("CHAOS_STATE_DIR", self.state.to_str().unwrap()),
            ("PATH", self.root.to_str().unwrap()),
        ];
        env.extend_from_slice(extra);
        run_with(Kind::Missing, &env, args)
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn deletes(&self) -> Vec<String> {
        let calls = self.calls();
        let deletes = calls.iter().filter(|l| l.starts_with("delete cluster"));
        deletes
            .map(|l| l.split_whitespace().nth(3).unwrap().to_owned())
            .collect()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// `ls` lines of the cluster table (or the container table): name -> (owner, GC column).
fn table(stdout: &str, header: &str) -> Vec<(String, String, String)> {
    stdout
        .split("\n\n")
        .find(|part| part.starts_with(header))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("note:") && !l.starts_with('('))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (
                fields[0].to_owned(),
                fields[1].to_owned(),
                fields[3].to_owned(),
            )
        })
        .collect()
}

#[test]
fn ls_shows_each_cluster_with_its_owner_and_gc_removes_only_leftovers() {
    use chaos_runtime::__kind::ownership::OwnerRecord;

    let scene = Scene::new(
        "gc",
        &[
            "chaos-left-over",
            "chaos-kept",
            "chaos-in-use",
            "someone-elses",
        ],
        &[],
    );
    let records = scene.records();
    let dead_pid = dead_pid();
    let dead = |cluster: &str| OwnerRecord {
        pid: dead_pid,
        ..OwnerRecord::for_this_process(cluster, "kind", None)
    };
    records.write(&dead("chaos-left-over")).unwrap();
    records
        .write(&OwnerRecord {
            kept: true,
            ..dead("chaos-kept")
        })
        .unwrap();
    records
        .write(&OwnerRecord::for_this_process("chaos-in-use", "kind", None))
        .unwrap();
    records.write(&dead("chaos-already-gone")).unwrap();

    let ls = scene.run(&[], &["ls"]);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    let owners: Vec<(String, String, String)> = table(&ls.stdout, "CLUSTER");
    let expected = [
        ("chaos-left-over", "gone", "delete"),
        ("chaos-kept", "kept", "-"),
        ("chaos-in-use", "running", "-"),
        ("someone-elses", "not-ours", "-"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(owners, expected, "{}", ls.stdout);
    assert!(
        ls.stdout.contains(
            "note: chaos-already-gone is recorded but kind does not have it; gc forgets it"
        ),
        "{}",
        ls.stdout
    );

    let gc = scene.run(&[], &["gc"]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert_eq!(
        gc.stdout,
        "removed chaos-left-over\nforgot the record of chaos-already-gone (kind no longer has the cluster)\n1 leftover cluster(s) removed\n"
    );
    assert_eq!(scene.deletes(), ["chaos-left-over"]);
    let left: Vec<String> = records.all().into_iter().map(|r| r.cluster).collect();
    assert_eq!(
        left,
        ["chaos-in-use", "chaos-kept"],
        "the leftover's record and the stale one are gone"
    );
}

/// Issue 10.7: a stale `$KUBECONFIG.lock` made kind fail after deleting the nodes, and gc kept the
/// record and stopped at the first leftover. Now every delete goes against the cluster's own
/// kubeconfig, a failure does not stop the others, and each is reported with what to run.
#[test]
fn gc_uses_its_own_kubeconfig_goes_on_past_a_failure_and_reports_each() {
    use chaos_runtime::__kind::ownership::OwnerRecord;

    let scene = Scene::new("lock", &["chaos-a", "chaos-b", "chaos-c"], &[]);
    let records = scene.records();
    let pid = dead_pid();
    let kubeconfig = |c: &str| scene.root.join(format!("{c}.kubeconfig"));
    for cluster in ["chaos-a", "chaos-b", "chaos-c"] {
        let record = OwnerRecord {
            pid,
            ..OwnerRecord::for_this_process(cluster, "kind", Some(kubeconfig(cluster)))
        };
        records.write(&record).unwrap();
        std::fs::write(kubeconfig(cluster), "apiVersion: v1\nkind: Config\n").unwrap();
    }
    // The user's kubeconfig, locked by a kind that was killed; and chaos-c's own, locked by the
    // kind our killed run was running.
    let user = scene.root.join("user-kubeconfig");
    std::fs::write(&user, "apiVersion: v1\nkind: Config\n").unwrap();
    std::fs::write(scene.root.join("user-kubeconfig.lock"), "").unwrap();
    std::fs::write(scene.root.join("chaos-c.kubeconfig.lock"), "").unwrap();
    // chaos-b cannot be deleted at all: the others still go.
    std::fs::write(scene.root.join("undeletable"), "chaos-b\n").unwrap();

    let gc = scene.run(&[("KUBECONFIG", user.to_str().unwrap())], &["gc"]);
    assert_eq!(gc.code, 1, "{}\n{}", gc.stdout, gc.stderr);
    assert_eq!(
        gc.stdout,
        "removed chaos-a\nremoved chaos-c\n2 leftover cluster(s) removed\n"
    );
    assert_eq!(scene.deletes(), ["chaos-a", "chaos-b", "chaos-c"]);
    for call in scene.calls().iter().filter(|c| c.starts_with("delete")) {
        let name = call.split_whitespace().nth(3).unwrap();
        assert!(
            call.ends_with(&format!("--kubeconfig {}", kubeconfig(name).display())),
            "never the user's kubeconfig: {call}"
        );
    }
    let errors: Vec<&str> = gc
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 2, "{}", gc.stderr);
    assert!(
        errors[0].starts_with("error: could not remove chaos-b: `")
            && gc.stderr.contains(&format!(
                "  by hand: kind delete cluster --name chaos-b --kubeconfig {}",
                kubeconfig("chaos-b").display()
            )),
        "{}",
        gc.stderr
    );
    assert_eq!(
        errors[1],
        "error: 1 leftover(s) not removed (above, each with what to run by hand)"
    );
    let left: Vec<String> = records.all().into_iter().map(|r| r.cluster).collect();
    assert_eq!(left, ["chaos-b"], "the removed clusters' records go");
    assert!(!kubeconfig("chaos-a").exists() && !kubeconfig("chaos-c").exists());
    assert!(
        scene.root.join("user-kubeconfig.lock").exists() && user.exists(),
        "the user's kubeconfig and its lock are not ours to touch"
    );
}

/// Issue 10.7: a corrupt record is reported (path, problem, fix), its cluster left alone, and gc
/// exits non-zero; before, it was silently "not ours".
#[test]
fn a_corrupt_record_is_reported_by_ls_and_gc_and_its_cluster_left_alone() {
    let scene = Scene::new("corrupt", &["chaos-torn"], &[]);
    let records = scene.records();
    std::fs::create_dir_all(records.dir()).unwrap();
    let path = records.dir().join("chaos-torn.json");
    std::fs::write(&path, "{\"cluster\": \"chaos-to").unwrap();

    let ls = scene.run(&[], &["ls"]);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    assert_eq!(
        table(&ls.stdout, "CLUSTER"),
        [("chaos-torn".into(), "corrupt".into(), "-".into())]
    );
    let warning = format!(
        "warning: the ownership record {} of cluster chaos-torn is corrupt (not an ownership record: EOF",
        path.display()
    );
    assert!(ls.stderr.starts_with(&warning), "{}", ls.stderr);
    assert!(
        ls.stderr.contains(&format!(
            "if no run uses chaos-torn, delete it with `kind delete cluster --name chaos-torn` and remove the record (`rm {}`)",
            path.display()
        )),
        "{}",
        ls.stderr
    );

    let gc = scene.run(&[], &["gc"]);
    assert_eq!(gc.code, 1, "{}", gc.stderr);
    assert!(gc.stderr.contains(&warning[9..]), "{}", gc.stderr);
    assert_eq!(scene.deletes(), Vec::<String>::new());
    assert!(
        path.exists(),
        "gc does not decide for a record it cannot read"
    );
}

/// Issue 10.7: what `ls` marks in its GC column is exactly what `gc` removes: clusters, stale
/// records and test containers; a record whose run is still creating its cluster is left.
#[test]
fn ls_marks_exactly_what_gc_removes() {
    use chaos_runtime::__kind::ownership::OwnerRecord;

    let pid = dead_pid();
    let me = std::process::id();
    let scene = Scene::new(
        "agree",
        &["chaos-dead", "chaos-live", "chaos-fx-1"],
        &[
            ("chaos-fx-1-worker", pid, 1),
            ("chaos-fx-2-worker", me, my_start()),
            ("chaos-fx-3-worker", pid, 7),
        ],
    );
    let records = scene.records();
    let dead = |c: &str| OwnerRecord {
        pid,
        ..OwnerRecord::for_this_process(c, "kind", None)
    };
    records.write(&dead("chaos-dead")).unwrap();
    records
        .write(&OwnerRecord::for_this_process("chaos-live", "kind", None))
        .unwrap();
    // Being created by a run that still goes: kind does not list it yet.
    records
        .write(&OwnerRecord::for_this_process(
            "chaos-creating",
            "kind",
            None,
        ))
        .unwrap();

    let ls = scene.run(&[], &["ls"]);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    let marked = |header: &str, mark: &str| -> Vec<String> {
        table(&ls.stdout, header)
            .into_iter()
            .filter(|(_, _, gc)| gc == mark)
            .map(|(name, _, _)| name)
            .collect()
    };
    assert_eq!(marked("CLUSTER", "delete"), ["chaos-dead"], "{}", ls.stdout);
    // The fixture's kind "cluster" goes with its containers.
    assert_eq!(marked("CLUSTER", "(rm)"), ["chaos-fx-1"], "{}", ls.stdout);
    assert_eq!(
        marked("CONTAINER", "remove"),
        ["chaos-fx-1-worker", "chaos-fx-3-worker"],
        "{}",
        ls.stdout
    );
    assert!(
        ls.stdout
            .contains("note: chaos-creating is recorded but kind does not have it; its run"),
        "{}",
        ls.stdout
    );

    let gc = scene.run(&[], &["gc"]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert_eq!(scene.deletes(), marked("CLUSTER", "delete"));
    let removed: Vec<String> = scene
        .calls()
        .iter()
        .filter_map(|c| c.strip_prefix("docker rm --force --volumes "))
        .map(str::to_owned)
        .collect();
    assert_eq!(removed, marked("CONTAINER", "remove"));
    assert!(
        gc.stdout
            .contains("removed container chaos-fx-1-worker\nremoved container chaos-fx-3-worker\n"),
        "{}",
        gc.stdout
    );
    let left: Vec<String> = records.all().into_iter().map(|r| r.cluster).collect();
    assert_eq!(left, ["chaos-creating", "chaos-live"]);
}
