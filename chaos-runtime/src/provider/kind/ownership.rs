//! Which clusters this project made, and whether the process that made each is still running, so
//! that a later run or `cargo chaos gc` can remove what a killed run left, and only that.
//!
//! A record is written before a cluster is created (so a run killed mid-creation is covered too)
//! and removed after the cluster is deleted. Owners are identified by pid *and* the process's
//! start time, so a recycled pid does not keep a dead run's clusters alive.
//!
//! The same pair, as Docker labels ([`owner_labels`]), marks the containers the project's own
//! Docker tests start (`chaos-fx-*` in `chaos-runtime/tests/docker_nodes.rs`), so that a killed
//! test run's fixtures are removed as its clusters are.
//!
//! What is done with each cluster, record and container is decided in one place,
//! [`Disposition::of`]: `cargo chaos ls` shows it and `cargo chaos gc` acts on it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One cluster and who made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    /// The kind cluster's name.
    pub cluster: String,
    /// `kind`: the provider that can delete it.
    pub provider: String,
    /// The process that made it.
    pub pid: u32,
    /// The owner's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    pub pid_start: u64,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Where its kubeconfig was written.
    pub kubeconfig: Option<PathBuf>,
    /// Kept on purpose (`CHAOS_KEEP=1`): not a leftover, whatever happened to its owner.
    #[serde(default)]
    pub kept: bool,
}

/// Whether a cluster's owner still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// The process that made it is still running.
    Running,
    /// It ended: the cluster is left over.
    Gone,
}

impl OwnerRecord {
    /// A record owned by this process, or by the process its run belongs to when that is
    /// another ([`set_run_owner`]: the nextest process, under nextest).
    pub fn for_this_process(cluster: &str, provider: &str, kubeconfig: Option<PathBuf>) -> Self {
        let (pid, pid_start) = run_owner();
        OwnerRecord {
            cluster: cluster.to_owned(),
            provider: provider.to_owned(),
            pid,
            pid_start,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            kubeconfig,
            kept: false,
        }
    }

    /// A cluster whose owner is gone and that nobody asked to keep.
    pub fn is_leftover(&self) -> bool {
        !self.kept && self.owner_state() == OwnerState::Gone
    }

    /// Whether the process that made it still runs: the same pid, started at the same time (a
    /// reused pid is another process).
    pub fn owner_state(&self) -> OwnerState {
        owner_state(self.pid, self.pid_start)
    }
}

/// The process a run belongs to, when it is not this one: `(pid, start time)`.
static RUN_OWNER: std::sync::OnceLock<(u32, u64)> = std::sync::OnceLock::new();

/// Makes `pid` (started at `pid_start`) the owner of the clusters this process creates from now
/// on: under nextest, the nextest process, so that a cluster outlives the test process that made
/// it while the run goes on, and is a leftover once nextest is gone
/// (`harness::lease_records`). Set once; later calls are ignored.
pub fn set_run_owner(pid: u32, pid_start: u64) {
    let _ = RUN_OWNER.set((pid, pid_start));
}

/// The owner of the clusters this process creates: [`set_run_owner`]'s, else this process.
pub fn run_owner() -> (u32, u64) {
    match RUN_OWNER.get() {
        Some(owner) => *owner,
        None => {
            let pid = std::process::id();
            (pid, process_start(pid).unwrap_or(0))
        }
    }
}

/// Whether process `pid`, started at `pid_start` (clock ticks since boot), still runs.
pub fn owner_state(pid: u32, pid_start: u64) -> OwnerState {
    match process_start(pid) {
        Some(start) if start == pid_start => OwnerState::Running,
        _ => OwnerState::Gone,
    }
}

/// What `gc` does with a cluster, a record or a fixture container, and what `ls` says of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Its owner still runs: left alone.
    Running,
    /// Kept on purpose (`CHAOS_KEEP=1`, `CHAOS_REUSE=1`): left alone.
    Kept,
    /// Its owner is gone: `gc` removes it.
    Remove,
    /// Its record is corrupt: left alone, and reported with what to do.
    Corrupt,
    /// Not made by this project: never touched.
    NotOurs,
}

impl Disposition {
    /// The one decision: `ls` shows it, `gc` acts on [`Disposition::Remove`] and nothing else.
    /// `corrupt`: the record of this name could not be read.
    pub fn of(record: Option<&OwnerRecord>, corrupt: bool) -> Self {
        match (record, corrupt) {
            (_, true) => Disposition::Corrupt,
            (None, false) => Disposition::NotOurs,
            (Some(record), false) if record.kept => Disposition::Kept,
            (Some(record), false) => match record.owner_state() {
                OwnerState::Running => Disposition::Running,
                OwnerState::Gone => Disposition::Remove,
            },
        }
    }

    /// As `ls` prints it: `running`, `kept`, `gone` (gc removes it), `corrupt`, `not-ours`.
    pub fn label(self) -> &'static str {
        match self {
            Disposition::Running => "running",
            Disposition::Kept => "kept",
            Disposition::Remove => "gone",
            Disposition::Corrupt => "corrupt",
            Disposition::NotOurs => "not-ours",
        }
    }
}

/// A record file that is not a readable record: reported with the fix, never taken for "not
/// ours" (which would leave its cluster to leak) nor for a leftover (which could delete a
/// cluster a run still uses).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the ownership record {} of cluster {cluster} is corrupt ({problem}); if no run uses \
     {cluster}, delete it with `kind delete cluster --name {cluster}` and remove the record \
     (`rm {}`)",
    .path.display(),
    .path.display()
)]
pub struct CorruptRecord {
    /// The record file.
    pub path: PathBuf,
    /// The cluster it is named after.
    pub cluster: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The records of a directory: those that read, and those that do not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Readable records, by cluster name.
    pub records: Vec<OwnerRecord>,
    /// Record files that are not records, by cluster name.
    pub corrupt: Vec<CorruptRecord>,
}

/// The Docker label holding the owner's pid.
pub const OWNER_PID_LABEL: &str = "dev.chaos.owner.pid";
/// The Docker label holding the owner's start time (clock ticks since boot).
pub const OWNER_START_LABEL: &str = "dev.chaos.owner.start";

/// kind's label naming a node's cluster (kind `pkg/cluster/internal/providers/docker/constants.go`,
/// `clusterLabelKey`).
const KIND_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";

/// `docker run --label` values that make this process a container's owner: when it ends,
/// [`leftover_containers`] (the next run of the tests that made it, and `cargo chaos gc`) removes
/// the container.
pub fn owner_labels() -> [String; 2] {
    let pid = std::process::id();
    [
        format!("{OWNER_PID_LABEL}={pid}"),
        format!("{OWNER_START_LABEL}={}", process_start(pid).unwrap_or(0)),
    ]
}

/// A container labelled with an owner ([`owner_labels`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedContainer {
    /// Its name.
    pub name: String,
    /// Its owner's pid, if the label is a number.
    pub pid: Option<u32>,
    /// The kind cluster it belongs to (kind's `io.x-k8s.kind.cluster` label), if any: fixtures
    /// shaped like kind nodes are listed by `kind get clusters` too.
    pub cluster: Option<String>,
    /// What to do with it; [`Disposition::Corrupt`] when its labels are not numbers.
    pub disposition: Disposition,
}

/// Every container labelled with an owner, and what `gc` does with it.
pub async fn owned_containers() -> anyhow::Result<Vec<OwnedContainer>> {
    let format = format!(
        "{{{{.Names}}}}\t{{{{.Label \"{OWNER_PID_LABEL}\"}}}}\t{{{{.Label \"{OWNER_START_LABEL}\"}}}}\t{{{{.Label \"{KIND_CLUSTER_LABEL}\"}}}}"
    );
    let out = crate::command::Cmd::new("docker")
        .args(["ps", "--all", "--filter"])
        .arg(format!("label={OWNER_PID_LABEL}"))
        .args(["--format", &format])
        .run()
        .await
        .context("listing the containers of the project's own tests")?;
    let mut containers: Vec<OwnedContainer> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next().unwrap_or_default().trim().to_owned();
            let pid = fields.next().and_then(|p| p.trim().parse::<u32>().ok());
            let start = fields.next().and_then(|s| s.trim().parse::<u64>().ok());
            let cluster = fields
                .next()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            let disposition = match (pid, start) {
                (Some(pid), Some(start)) => match owner_state(pid, start) {
                    OwnerState::Running => Disposition::Running,
                    OwnerState::Gone => Disposition::Remove,
                },
                _ => Disposition::Corrupt,
            };
            OwnedContainer {
                name,
                pid,
                cluster,
                disposition,
            }
        })
        .collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(containers)
}

/// Removes the containers (and their anonymous volumes) whose owner is gone; one failure does
/// not stop the others. Returns those removed, and those that could not be with why.
pub async fn remove_leftover_containers() -> anyhow::Result<(Vec<String>, Vec<(String, String)>)> {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for container in owned_containers().await? {
        if container.disposition != Disposition::Remove {
            continue;
        }
        let rm = crate::command::Cmd::new("docker")
            .args(["rm", "--force", "--volumes", &container.name])
            .run()
            .await;
        match rm {
            Ok(_) => removed.push(container.name),
            Err(err) => failed.push((container.name, err.to_string())),
        }
    }
    Ok((removed, failed))
}

/// The records kept in a directory: `<dir>/clusters/<cluster>.json`.
#[derive(Clone, Debug)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// `$CHAOS_STATE_DIR`, else `$XDG_STATE_HOME/chaos`, else `~/.local/state/chaos`: one place per
    /// user, so `cargo chaos gc` finds every project's leftovers.
    pub fn default_location() -> Self {
        Records::at(crate::dirs::state_dir())
    }

    /// The records under `dir` (`<dir>/clusters/`).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Records {
            dir: dir.into().join("clusters"),
        }
    }

    /// Where the record files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record file of `cluster`.
    pub fn path(&self, cluster: &str) -> PathBuf {
        self.dir.join(format!("{cluster}.json"))
    }

    /// Writes (or replaces) the record of `record.cluster`, atomically.
    pub fn write(&self, record: &OwnerRecord) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let path = self.path(&record.cluster);
        let temp = path.with_extension("json.tmp");
        std::fs::write(&temp, serde_json::to_vec_pretty(record)?)
            .with_context(|| format!("writing {}", temp.display()))?;
        std::fs::rename(&temp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// Forgets `cluster`; a record already gone is fine.
    pub fn remove(&self, cluster: &str) -> anyhow::Result<()> {
        match std::fs::remove_file(self.path(cluster)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("removing the record of {cluster}"))
            }
            _ => Ok(()),
        }
    }

    /// Every readable record, by cluster name. Corrupt ones are not in it: [`Records::scan`]
    /// says which they are.
    pub fn all(&self) -> Vec<OwnerRecord> {
        self.scan().records
    }

    /// Every record, by cluster name, and every record file that is not one: unreadable, not a
    /// record's JSON, or naming another cluster than its file.
    pub fn scan(&self) -> Scan {
        let mut scan = Scan::default();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return scan;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let cluster = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let problem = match std::fs::read(&path) {
                // Removed since it was listed: its cluster was deleted meanwhile.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => format!("cannot be read: {err}"),
                Ok(bytes) => match serde_json::from_slice::<OwnerRecord>(&bytes) {
                    Err(err) => format!("not an ownership record: {err}"),
                    Ok(record) if record.cluster != cluster => format!(
                        "it names cluster {:?}, not the {cluster:?} of its file name",
                        record.cluster
                    ),
                    Ok(record) => {
                        scan.records.push(record);
                        continue;
                    }
                },
            };
            scan.corrupt.push(CorruptRecord {
                path,
                cluster,
                problem,
            });
        }
        scan.records.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        scan.corrupt.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        scan
    }
}

/// A process's start time in clock ticks since boot, or `None` when no such process runs.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Field 3, the state: a zombie (`Z`) or dead (`X`) process has ended, though its parent has
    // not reaped it yet (proc(5)), as an orphan whose new parent does not reap may stay.
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_running_and_a_dead_one_is_gone() {
        let mine = OwnerRecord::for_this_process("c1", "kind", None);
        assert_ne!(mine.pid_start, 0);
        assert_eq!(mine.owner_state(), OwnerState::Running);
        let recycled = OwnerRecord {
            pid_start: mine.pid_start + 1,
            ..mine.clone()
        };
        assert_eq!(
            recycled.owner_state(),
            OwnerState::Gone,
            "a pid reused by another process"
        );
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = OwnerRecord {
            pid,
            ..mine.clone()
        };
        assert_eq!(dead.owner_state(), OwnerState::Gone);

        // Ended but not reaped (an orphan whose new parent never reaps): gone as well.
        let zombie = std::process::Command::new("true").spawn().unwrap();
        let pid = zombie.id();
        let started = std::time::Instant::now();
        while process_start(pid).is_some() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "`true` did not end within 10s"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(owner_state(pid, mine.pid_start), OwnerState::Gone);
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "a zombie, not reaped"
        );
        drop(zombie);
    }

    #[test]
    fn records_round_trip_and_are_removed() {
        let dir = std::env::temp_dir().join(format!("chaos-records-{}", std::process::id()));
        let records = Records::at(&dir);
        let a = OwnerRecord::for_this_process("chaos-a", "kind", Some("/tmp/a.yaml".into()));
        let b = OwnerRecord::for_this_process("chaos-b", "kind", None);
        records.write(&b).unwrap();
        records.write(&a).unwrap();
        assert_eq!(records.all(), [a.clone(), b.clone()]);
        records.remove("chaos-a").unwrap();
        records.remove("chaos-a").unwrap();
        assert_eq!(records.all(), [b]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_record_is_reported_with_its_path_the_problem_and_the_fix() {
        let dir = std::env::temp_dir().join(format!("chaos-records-bad-{}", std::process::id()));
        let records = Records::at(&dir);
        let good = OwnerRecord::for_this_process("chaos-good", "kind", None);
        records.write(&good).unwrap();
        std::fs::write(
            records.dir().join("chaos-torn.json"),
            "{\"cluster\": \"chaos-to",
        )
        .unwrap();
        let renamed = OwnerRecord::for_this_process("chaos-other", "kind", None);
        std::fs::write(
            records.dir().join("chaos-moved.json"),
            serde_json::to_vec(&renamed).unwrap(),
        )
        .unwrap();

        let scan = records.scan();
        assert_eq!(scan.records, [good]);
        let corrupt: Vec<&str> = scan.corrupt.iter().map(|c| c.cluster.as_str()).collect();
        assert_eq!(corrupt, ["chaos-moved", "chaos-torn"]);
        let torn = scan.corrupt[1].to_string();
        let path = records.dir().join("chaos-torn.json");
        assert!(torn.contains(&path.display().to_string()), "{torn}");
        assert!(torn.contains("not an ownership record: EOF"), "{torn}");
        assert!(
            torn.contains("kind delete cluster --name chaos-torn")
                && torn.contains(&format!("rm {}", path.display())),
            "{torn}"
        );
        assert!(
            scan.corrupt[0]
                .problem
                .contains("names cluster \"chaos-other\""),
            "{}",
            scan.corrupt[0].problem
        );
        // Neither ours to remove nor "not ours": corrupt, whatever else.
        assert_eq!(Disposition::of(None, true), Disposition::Corrupt);
        assert_eq!(Disposition::of(None, false), Disposition::NotOurs);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
