//! A stand-in for `cargo nextest run` on kind, without nextest nor Docker: the suite binary runs
//! as one process per test (`--exact NAME`), as nextest runs it, with nextest's `NEXTEST_RUN_ID`
//! and `NEXTEST_EXECUTION_MODE`, all started by one shell that stands in for the nextest process
//! (their parent); the provider is kind, behind a fake `kind` whose clusters are the sim served
//! over HTTP (`selftest-fake-kube`, one process per cluster, stopped by `kind delete cluster`),
//! and a fake `docker` that answers what the kind provider asks of it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const SHARED: &str = env!("CARGO_BIN_EXE_selftest-shared");
pub const FAKE_KUBE: &str = env!("CARGO_BIN_EXE_selftest-fake-kube");

/// The six tests of `suites/shared.rs`: `a*` on one topology, `b*` on another.
pub const TESTS: [&str; 6] = [
    "shared_tests::a1",
    "shared_tests::a2",
    "shared_tests::a3",
    "shared_tests::b1",
    "shared_tests::b2",
    "shared_tests::b3",
];

/// A `kind` that logs its calls; `create cluster` starts a `selftest-fake-kube` for the cluster
/// (in a session of its own, as kind's node containers outlive the process that made them) and
/// writes a kubeconfig pointing at it; `delete cluster` stops it; `get clusters` lists those alive.
const FAKE_KIND: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
case "$1 $2" in
  "version "*) echo "kind v0.33.0 go1.27.2 linux/amd64" ;;
  "create cluster")
     while [ $# -gt 0 ]; do
       case "$1" in --name) name=$2 ;; --kubeconfig) kubeconfig=$2 ;; esac
       shift
     done
     mkdir -p "$dir/run"
     cat > "$dir/run/$name.yaml"
     setsid "$FAKE_KUBE" "$name" "$dir/run/$name.yaml" "$dir/run/$name.url" </dev/null >"$dir/run/$name.log" 2>&1 &
     echo $! > "$dir/run/$name.pid"
     i=0
     while [ ! -e "$dir/run/$name.url" ]; do
       i=$((i+1))
       if [ $i -gt 200 ]; then echo "ERROR: the fake API of $name did not start" >&2; exit 1; fi
       sleep 0.05
     done
     server=$(cat "$dir/run/$name.url")
     echo "$name" >> "$dir/clusters"
     printf 'apiVersion: v1\nkind: Config\nclusters: [{name: kind-%s, cluster: {server: "%s"}}]\nusers: [{name: kind-%s, user: {}}]\ncontexts: [{name: kind-%s, context: {cluster: kind-%s, user: kind-%s}}]\ncurrent-context: kind-%s\n' \
       "$name" "$server" "$name" "$name" "$name" "$name" "$name" > "$kubeconfig"
     ;;
  "export logs") mkdir -p "$3" ;;
  "delete cluster")
     while [ $# -gt 0 ]; do case "$1" in --name) name=$2 ;; esac; shift; done
     if [ -e "$dir/run/$name.pid" ]; then kill "$(cat "$dir/run/$name.pid")" 2>/dev/null; rm -f "$dir/run/$name.pid"; fi
     grep -vx "$name" "$dir/clusters" > "$dir/clusters.new" 2>/dev/null; mv "$dir/clusters.new" "$dir/clusters"
     ;;
  "get clusters") cat "$dir/clusters" 2>/dev/null || true ;;
esac
"#;

/// A `docker` that is Docker enough for the kind provider: a daemon on cgroup v2, every image
/// present, no container of the project's own tests.
const FAKE_DOCKER: &str = r#"#!/bin/sh
case "$1" in
  -v) echo "Docker version 27.5.1, build fake" ;;
  info) echo 2 ;;
  image) exit 0 ;;
  ps) exit 0 ;;
  *) echo "fake docker: $*" >&2; exit 1 ;;
esac
"#;

pub struct Fake {
    pub dir: PathBuf,
    pub run_id: String,
}

impl Fake {
    pub fn new(test: &str) -> Fake {
        let dir = std::env::temp_dir().join(format!("chaos-nextest-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("out")).unwrap();
        for (name, script) in [("kind", FAKE_KIND), ("docker", FAKE_DOCKER)] {
            let path = dir.join(name);
            std::fs::write(&path, script).unwrap();
            let status = Command::new("chmod").arg("+x").arg(&path).status().unwrap();
            assert!(status.success());
        }
        Fake {
            dir,
            run_id: format!("00000000-0000-4000-8000-{:012x}", std::process::id()),
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// `PATH` with the fake `docker` first.
    pub fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// The stand-in nextest: a shell that starts one suite process per test, all at once, each
    /// with its output in `out/<test>.out`, and waits for them. In a process group of its own, so
    /// that the test can kill it with its tests as a CI job's cancellation would.
    pub fn nextest(&self, env: &[(&str, &str)]) -> Child {
        self.nextest_of(&TESTS, 0, env)
    }

    /// [`Fake::nextest`] of `tests`, which stays `linger` seconds after they ended (a nextest
    /// still running other binaries' tests).
    pub fn nextest_of(&self, tests: &[&str], linger: u32, env: &[(&str, &str)]) -> Child {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#"out=$1; linger=$2; shift 2; for t in "$@"; do "$SUITE" --exact "$t" > "$out/$t.out" 2>&1 & done; wait; sleep "$linger""#)
            .arg("sh")
            .arg(self.dir.join("out"))
            .arg(linger.to_string())
            .args(tests)
            .env("SUITE", SHARED)
            .env("FAKE_KUBE", FAKE_KUBE)
            .env("PATH", self.path())
            .env("CHAOS_SELFTEST_SHARED", "kind")
            .env("CHAOS_KIND", self.dir.join("kind"))
            .env("CHAOS_STATE_DIR", self.state())
            .env("CHAOS_MAX_CLUSTERS", "4")
            .env("NEXTEST_RUN_ID", &self.run_id)
            .env("NEXTEST_EXECUTION_MODE", "process-per-test")
            .env("NEXTEST", "1");
        for var in [
            "CHAOS_PROVIDER",
            "CHAOS_KIND_STANDIN",
            "KIND_EXPERIMENTAL_PROVIDER",
            "CHAOS_KEEP",
            "CHAOS_REUSE",
            "CHAOS_KIND_IMAGES",
            "CHAOS_IDLE_TIMEOUT",
        ] {
            command.env_remove(var);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command.spawn().expect("the stand-in nextest starts")
    }

    /// The fake kind's calls that start with `prefix`.
    pub fn calls(&self, prefix: &str) -> usize {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    /// The clusters the fake kind has now.
    pub fn clusters(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("clusters"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The ownership records of kind clusters in the state dir.
    pub fn ownership_records(&self) -> Vec<String> {
        files(&self.state().join("clusters"))
    }

    /// The run's lease records directory.
    pub fn run_dir(&self) -> PathBuf {
        self.state().join("nextest").join(&self.run_id)
    }

    /// The fake API servers still running (`run/<cluster>.pid`).
    pub fn servers(&self) -> Vec<String> {
        files(&self.dir.join("run"))
            .into_iter()
            .filter(|f| f.ends_with(".pid"))
            .collect()
    }

    /// One test process's output.
    pub fn output(&self, test: &str) -> String {
        std::fs::read_to_string(self.dir.join("out").join(format!("{test}.out")))
            .unwrap_or_default()
    }

    /// Everything the fake saw, for a failure message.
    pub fn report(&self) -> String {
        let mut text = format!(
            "calls:\n{}\n",
            std::fs::read_to_string(self.dir.join("calls")).unwrap_or_default()
        );
        for test in TESTS {
            text.push_str(&format!("--- {test}\n{}\n", self.output(test)));
        }
        let reaper = self.run_dir().join("reaper.log");
        text.push_str(&format!(
            "--- reaper\n{}\n",
            std::fs::read_to_string(reaper).unwrap_or_default()
        ));
        text
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        // Whatever a failed assertion left: the fake API servers go.
        for pid in self.servers() {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join("run").join(pid)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until `done` holds, for at most `limit`; panics saying what it waited for.
pub fn wait_until(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
    report: impl Fn() -> String,
) {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > limit {
            panic!("waited {limit:?} for {what}\n{}", report());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for `child` to exit, for at most `limit`; kills its process group and panics otherwise.
pub fn wait_child(child: &mut Child, limit: Duration, report: impl Fn() -> String) {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        if started.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            panic!(
                "the stand-in nextest did not end within {limit:?}\n{}",
                report()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `key=value` counts of a process's `chaos summary:` line.
pub fn summary(output: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("chaos summary: "))?;
    Some(
        line.split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}
