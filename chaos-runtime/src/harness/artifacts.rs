//! What a failed test leaves for whoever diagnoses it, beside its timeline in
//! `<target>/chaos/<suite>/<test>/`, collected before the heal puts the cluster back:
//!
//! - `events.txt` (and `events.json`, as the API returned them): the Events of the test's
//!   namespace and the Events about nodes since shortly before it started, oldest first, in
//!   columns like `kubectl get events`;
//! - `pods.txt`: the pods of its namespace, with phase, node, restarts, containers, conditions;
//! - `nodes.txt`: every node with its version, taints, whether it is cordoned, and conditions;
//! - `pods/<pod>/<container>.log` (and `.previous.log` for a container that restarted), or
//!   `pods/no-logs.txt` on a provider that runs no containers (the sim);
//! - `kind-logs/`: `kind export logs` of the cluster, on kind;
//! - `artifacts.txt`: what each step wrote, how long it took, and why a step failed.
//!
//! Each step has its own time limit and failing one never fails the run: it writes what it
//! could and says why in `artifacts.txt`. Everything is read with the harness's client, not the
//! test's (whose lease has ended).

use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{ListParams, LogParams};

use crate::cluster::SharedCluster;
use crate::harness::scheduler::Scheduler;
use crate::provider::{Provider, Provisioned};
use crate::timeline::Timeline;

/// A list from the API (events, pods, nodes).
const API_STEP: Duration = Duration::from_secs(30);
/// One container's log.
const LOG_FETCH: Duration = Duration::from_secs(15);
/// Every log of the namespace.
const LOGS_STEP: Duration = Duration::from_secs(120);
/// `kind export logs` (kind's own command has 120 s, see `provider/kind`).
const CLUSTER_LOGS_STEP: Duration = Duration::from_secs(150);
/// At most this much of one container's log (the API's `limitBytes`).
const LOG_LIMIT_BYTES: i64 = 10 << 20;
/// Node events from this long before the test started: what led up to it.
const NODE_EVENTS_BEFORE: SignedDuration = SignedDuration::from_secs(60);

/// What this module writes into a test's directory: removed before each collection, so that
/// nothing of an earlier failure is mixed in. The timeline is not ours.
const OWNED: &[&str] = &[
    "artifacts.txt",
    "events.txt",
    "events.json",
    "pods.txt",
    "nodes.txt",
    "pods",
    "kind-logs",
];

/// What to collect, and from where.
pub(crate) struct Request<'a> {
    /// The test's directory (its timeline's).
    pub dir: &'a Path,
    pub test: &'a str,
    pub provider: &'a dyn Provider,
    pub cluster: &'a Provisioned,
    pub namespace: &'a str,
    /// When the test started.
    pub started: Timestamp,
    /// Why the cluster's own logs are not exported (the run is being stopped), if so.
    pub skip_cluster_logs: Option<String>,
}

/// Where the artifacts are, and whether a step failed.
pub(crate) struct Collected {
    pub dir: PathBuf,
    pub incomplete: bool,
}

impl std::fmt::Display for Collected {
    /// The failure message's line: `artifacts: <dir>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "artifacts: {}", self.dir.display())?;
        if self.incomplete {
            write!(f, " (incomplete: artifacts.txt says why)")?;
        }
        Ok(())
    }
}

/// One step's line in `artifacts.txt`.
struct Step {
    what: &'static str,
    took: Duration,
    result: anyhow::Result<String>,
}

/// Collects the artifacts of the failed test `test` into its timeline's directory, with the
/// harness's client; kind's logs are left out when the run is being stopped.
pub(crate) async fn collect_for(
    scheduler: &Scheduler,
    shared: &SharedCluster,
    test: &str,
    namespace: &str,
    timeline: &Timeline,
) -> Collected {
    let path = crate::timeline::path_for(test);
    let started = timeline
        .entries()
        .first()
        .and_then(|e| e.at.parse().ok())
        .unwrap_or_else(Timestamp::now);
    collect(Request {
        dir: path.parent().unwrap_or(&path),
        test,
        provider: &*scheduler.pool.provider,
        cluster: &shared.provisioned,
        namespace,
        started,
        skip_cluster_logs: scheduler
            .stop
            .interrupted()
            .map(|i| format!("the run is being stopped by {}", i.name())),
    })
    .await
}

/// Collects every artifact of a failed test into `request.dir`. Never fails and never waits
/// longer than its steps' limits.
pub(crate) async fn collect(request: Request<'_>) -> Collected {
    let dir = request.dir.to_path_buf();
    let start = Instant::now();
    if let Err(err) = prepare(&dir) {
        // Nothing can be written there: said on stderr, and the failure's line says incomplete.
        return Collected {
            dir,
            incomplete: true,
        }
        .with_note(&format!("{err:#}"));
    }
    let client = request.cluster.client.clone();
    let since = request.started - NODE_EVENTS_BEFORE;
    let mut steps = vec![
        step(
            "events.txt",
            API_STEP,
            events(&client, request.namespace, since, &dir),
        )
        .await,
        step("pods.txt", API_STEP, pods(&client, request.namespace, &dir)).await,
        step("nodes.txt", API_STEP, nodes(&client, &dir)).await,
    ];
    steps.push(match request.provider.no_container_logs() {
        Some(why) => {
            let line = format!("no logs: {why}");
            let written = write(&dir.join("pods").join("no-logs.txt"), &format!("{line}\n"));
            Step {
                what: "pods/",
                took: Duration::ZERO,
                result: written.map(|()| line),
            }
        }
        None => step("pods/", LOGS_STEP, logs(&client, request.namespace, &dir)).await,
    });
    let cluster_logs = dir.join("kind-logs");
    let exported = match &request.skip_cluster_logs {
        Some(why) => Some(Step {
            what: "the cluster's own logs",
            took: Duration::ZERO,
            result: Ok(format!("not exported: {why}")),
        }),
        None => {
            let started = Instant::now();
            let export = request.provider.export_logs(request.cluster, &cluster_logs);
            let result = tokio::time::timeout(CLUSTER_LOGS_STEP, export).await;
            let took = started.elapsed();
            let result = match result {
                Ok(Ok(None)) => None,
                Ok(Ok(Some(dir))) => {
                    Some(Ok(format!("the cluster's own logs, in {}", dir.display())))
                }
                Ok(Err(err)) => Some(Err(err)),
                Err(_) => Some(Err(timed_out(CLUSTER_LOGS_STEP))),
            };
            result.map(|result| Step {
                what: "kind-logs/",
                took,
                result,
            })
        }
    };
    steps.extend(exported);
    let incomplete = steps.iter().any(|s| s.result.is_err());
    let mut report = format!(
        "artifacts of {} (namespace {}, cluster {}), collected at {} in {:.1}s\n",
        request.test,
        request.namespace,
        request.cluster.name,
        Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        start.elapsed().as_secs_f64()
    );
    for s in &steps {
        let took = s.took.as_secs_f64();
        match &s.result {
            Ok(done) => writeln!(report, "{}: {done} ({took:.1}s)", s.what),
            Err(err) => writeln!(
                report,
                "{}: FAILED after {took:.1}s, what it could write is kept: {}",
                s.what,
                one_line(err)
            ),
        }
        .expect("writing to a String");
    }
    let written = write(&dir.join("artifacts.txt"), &report);
    Collected {
        dir,
        incomplete: incomplete || written.is_err(),
    }
}

impl Collected {
    /// A collection that could not even start: said on stderr, as the run goes on.
    fn with_note(self, why: &str) -> Self {
        crate::harness::progress::say(format!(
            "could not save the artifacts of a failed test in {}: {why}",
            self.dir.display()
        ));
        self
    }
}

/// The test's directory, without what an earlier collection left there.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in OWNED {
        let path = dir.join(name);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs one step within `limit`.
async fn step(
    what: &'static str,
    limit: Duration,
    work: impl Future<Output = anyhow::Result<String>>,
) -> Step {
    let start = Instant::now();
    let result = match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(limit)),
    };
    Step {
        what,
        took: start.elapsed(),
        result,
    }
}

fn timed_out(limit: Duration) -> anyhow::Error {
    anyhow::anyhow!("timed out after {}", humantime::format_duration(limit))
}

fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The Events of `namespace` and those about nodes since `since`, oldest first. Events about a
/// Node are recorded in `default` (client-go `tools/record/event.go`, `makeEvent`: an object
/// without a namespace gets `metav1.NamespaceDefault`), so they are listed across namespaces
/// by `involvedObject.kind`, a field selector the API server serves for Events
/// (`pkg/apis/core/v1/conversion.go`, `AddFieldLabelConversionsForEvent`).
async fn events(
    client: &kube::Client,
    namespace: &str,
    since: Timestamp,
    dir: &Path,
) -> anyhow::Result<String> {
    let of_namespace = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await;
    let of_nodes = Api::<Event>::all(client.clone())
        .list(&ListParams::default().fields("involvedObject.kind=Node"))
        .await;
    let mut problems = Vec::new();
    let mut all = Vec::new();
    let mut counts = (0, 0);
    match of_namespace {
        Ok(list) => {
            counts.0 = list.items.len();
            all.extend(list.items);
        }
        Err(err) => problems.push(format!(
            "listing the events of namespace {namespace}: {err}"
        )),
    }
    match of_nodes {
        Ok(list) => {
            let recent: Vec<Event> = list
                .items
                .into_iter()
                .filter(|e| e.metadata.namespace.as_deref() != Some(namespace))
                .filter(|e| event_time(e).is_none_or(|at| at >= since))
                .collect();
            counts.1 = recent.len();
            all.extend(recent);
        }
        Err(err) => problems.push(format!("listing the events about nodes: {err}")),
    }
    all.sort_by_key(order);
    write(&dir.join("events.txt"), &events_table(&all, namespace))?;
    write(
        &dir.join("events.json"),
        &serde_json::to_string_pretty(&all).context("events as JSON")?,
    )?;
    if !problems.is_empty() {
        anyhow::bail!("{} (the rest is written)", problems.join("; "));
    }
    Ok(format!(
        "{} event(s) of namespace {namespace}, {} about nodes since {since}",
        counts.0, counts.1
    ))
}

/// When an event last happened: `lastTimestamp` (core/v1 recorders), `eventTime`
/// (events.k8s.io/v1 recorders such as the scheduler's), else when it was first seen or made.
fn event_time(event: &Event) -> Option<Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(event.event_time.as_ref().map(|t| t.0))
        .or(event.first_timestamp.as_ref().map(|t| t.0))
        .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Oldest first. Times are often whole seconds (`metav1.Time`), so ties are broken by
/// `resourceVersion`: opaque by contract, but etcd's revision, which grows with each write, on
/// every API server in practice (a non-number sorts last among its ties).
fn order(event: &Event) -> (Option<Timestamp>, u64) {
    let version = event
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or_default();
    (event_time(event), version.parse().unwrap_or(u64::MAX))
}

/// Like `kubectl get events`, with absolute times: `LAST SEEN  TYPE  REASON  OBJECT  SOURCE
/// COUNT  MESSAGE`; an object outside the test's `namespace` names its own.
fn events_table(events: &[Event], namespace: &str) -> String {
    let mut rows = vec![row(&[
        "LAST SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "SOURCE",
        "COUNT",
        "MESSAGE",
    ])];
    for e in events {
        let object = &e.involved_object;
        let kind = object.kind.as_deref().unwrap_or_default().to_lowercase();
        let name = object.name.as_deref().unwrap_or_default();
        let object = match object.namespace.as_deref() {
            Some(ns) if !ns.is_empty() && ns != namespace => format!("{kind}/{name} ({ns})"),
            _ => format!("{kind}/{name}"),
        };
        let source = e
            .reporting_component
            .clone()
            .filter(|c| !c.is_empty())
            .or_else(|| e.source.as_ref().and_then(|s| s.component.clone()))
            .unwrap_or_default();
        rows.push(vec![
            event_time(e).map_or_else(|| "-".to_owned(), |t| t.to_string()),
            e.type_.clone().unwrap_or_default(),
            e.reason.clone().unwrap_or_default(),
            object,
            source,
            e.count.unwrap_or(1).to_string(),
            e.message.clone().unwrap_or_default().replace('\n', " "),
        ]);
    }
    table(&rows)
}

/// The pods of `namespace`: phase, node, restarts, containers and conditions.
async fn pods(client: &kube::Client, namespace: &str, dir: &Path) -> anyhow::Result<String> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing the pods of namespace {namespace}"))?
        .items;
    let mut rows = vec![row(&[
        "NAME",
        "PHASE",
        "NODE",
        "RESTARTS",
        "CONTAINERS",
        "CONDITIONS",
    ])];
    for pod in &pods {
        let status = pod.status.clone().unwrap_or_default();
        let containers = status.container_statuses.clone().unwrap_or_default();
        let restarts: i32 = containers.iter().map(|c| c.restart_count).sum();
        let states: Vec<String> = containers
            .iter()
            .map(|c| {
                let state = c.state.clone().unwrap_or_default();
                let what = if let Some(w) = state.waiting {
                    format!("waiting ({})", w.reason.unwrap_or_default())
                } else if let Some(t) = state.terminated {
                    format!(
                        "terminated ({}, exit {})",
                        t.reason.unwrap_or_default(),
                        t.exit_code
                    )
                } else if state.running.is_some() {
                    "running".to_owned()
                } else {
                    "unknown".to_owned()
                };
                let ready = if c.ready { "ready" } else { "not ready" };
                format!("{}: {what}, {ready}", c.name)
            })
            .collect();
        let conditions: Vec<String> = status
            .conditions
            .unwrap_or_default()
            .iter()
            .map(|c| match c.reason.as_deref() {
                Some(reason) if !reason.is_empty() => {
                    format!("{}={} ({reason})", c.type_, c.status)
                }
                _ => format!("{}={}", c.type_, c.status),
            })
            .collect();
        rows.push(vec![
            pod.metadata.name.clone().unwrap_or_default(),
            status.phase.unwrap_or_default(),
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| "-".to_owned()),
            restarts.to_string(),
            or_dash(states.join("; ")),
            or_dash(conditions.join(", ")),
        ]);
    }
    write(&dir.join("pods.txt"), &table(&rows))?;
    Ok(format!("{} pod(s) of namespace {namespace}", pods.len()))
}

/// Every node: version, cordon, taints, then each node's conditions.
async fn nodes(client: &kube::Client, dir: &Path) -> anyhow::Result<String> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing the nodes")?
        .items;
    let mut rows = vec![row(&[
        "NAME",
        "READY",
        "VERSION",
        "UNSCHEDULABLE",
        "TAINTS",
    ])];
    let mut conditions = String::new();
    for node in &nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let spec = node.spec.clone().unwrap_or_default();
        let status = node.status.clone().unwrap_or_default();
        let taints: Vec<String> = spec
            .taints
            .unwrap_or_default()
            .iter()
            .map(|t| match t.value.as_deref() {
                Some(value) if !value.is_empty() => format!("{}={value}:{}", t.key, t.effect),
                _ => format!("{}:{}", t.key, t.effect),
            })
            .collect();
        let node_conditions = status.conditions.unwrap_or_default();
        let ready = node_conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map_or("-".to_owned(), |c| c.status.clone());
        rows.push(vec![
            name.clone(),
            ready,
            status
                .node_info
                .map_or("-".to_owned(), |i| i.kubelet_version),
            spec.unschedulable.unwrap_or(false).to_string(),
            or_dash(taints.join(", ")),
        ]);
        let mut of_node = vec![row(&[
            "TYPE",
            "STATUS",
            "REASON",
            "LAST TRANSITION",
            "LAST HEARTBEAT",
            "MESSAGE",
        ])];
        for c in &node_conditions {
            let time = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
                t.as_ref().map_or("-".to_owned(), |t| t.0.to_string())
            };
            of_node.push(vec![
                c.type_.clone(),
                c.status.clone(),
                or_dash(c.reason.clone().unwrap_or_default()),
                time(&c.last_transition_time),
                time(&c.last_heartbeat_time),
                c.message.clone().unwrap_or_default().replace('\n', " "),
            ]);
        }
        let indented: String = table(&of_node)
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect();
        write!(conditions, "\nconditions of {name}:\n{indented}").expect("writing to a String");
    }
    write(
        &dir.join("nodes.txt"),
        &format!("{}{conditions}", table(&rows)),
    )?;
    Ok(format!("{} node(s)", nodes.len()))
}

/// Every container's log in `namespace`, and its previous instance's where it restarted. A
/// log that cannot be read is said, and the others are still written.
async fn logs(client: &kube::Client, namespace: &str, dir: &Path) -> anyhow::Result<String> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let pods = api
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing the pods of namespace {namespace}"))?
        .items;
    let (mut written, mut problems) = (0, Vec::new());
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let restarted = |container: &str| {
            status
                .container_statuses
                .iter()
                .chain(&status.init_container_statuses)
                .flatten()
                .any(|c| c.name == container && c.restart_count > 0)
        };
        let containers = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers);
        for container in containers {
            let wanted = [(false, ".log"), (true, ".previous.log")];
            for (previous, suffix) in wanted {
                if previous && !restarted(&container.name) {
                    continue;
                }
                let params = LogParams {
                    container: Some(container.name.clone()),
                    previous,
                    limit_bytes: Some(LOG_LIMIT_BYTES),
                    timestamps: true,
                    ..LogParams::default()
                };
                let file = format!("{}{suffix}", container.name);
                let path = dir.join("pods").join(&name).join(&file);
                match tokio::time::timeout(LOG_FETCH, api.logs(&name, &params)).await {
                    Ok(Ok(text)) => match write(&path, &text) {
                        Ok(()) => written += 1,
                        Err(err) => problems.push(format!("{err:#}")),
                    },
                    Ok(Err(err)) => problems.push(format!("{name}/{file}: {err}")),
                    Err(_) => problems.push(format!("{name}/{file}: {}", timed_out(LOG_FETCH))),
                }
            }
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "{written} log(s) written; not read: {}",
            problems.join("; ")
        );
    }
    Ok(format!(
        "{written} log(s) of {} pod(s) of namespace {namespace}",
        pods.len()
    ))
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

/// Columns padded to their widest cell, two spaces apart, as kubectl prints them.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count() + 2;
                write!(line, "{cell}{:pad$}", "").expect("writing to a String");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_their_columns_and_keep_the_last_one_whole() {
        let text = table(&[
            row(&["NAME", "STATUS", "MESSAGE"]),
            row(&["a-long-name", "ok", "free text, with spaces"]),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME         STATUS  MESSAGE");
        assert_eq!(lines[1], "a-long-name  ok      free text, with spaces");
    }

    #[tokio::test]
    async fn a_step_that_hangs_ends_at_its_limit_and_says_so() {
        let hung = step(
            "events.txt",
            Duration::from_millis(20),
            std::future::pending::<anyhow::Result<String>>(),
        )
        .await;
        let err = hung.result.unwrap_err();
        assert_eq!(err.to_string(), "timed out after 20ms");
        assert!(hung.took >= Duration::from_millis(20));
    }

    #[test]
    fn events_are_listed_oldest_first_naming_other_namespaces() {
        let event = |name: &str, ns: &str, kind: &str, at: &str, version: &str| -> Event {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": ns, "resourceVersion": version},
                "involvedObject": {"kind": kind, "name": name, "namespace": ns},
                "reason": "R", "type": "Normal", "message": "m", "count": 1,
                "lastTimestamp": at,
            }))
            .unwrap()
        };
        let mut events = vec![
            event("late", "test-ns", "Pod", "2026-01-01T00:00:02Z", "9"),
            event("second", "test-ns", "Pod", "2026-01-01T00:00:01Z", "8"),
            event("first", "test-ns", "Pod", "2026-01-01T00:00:01Z", "7"),
            event("n1", "", "Node", "2026-01-01T00:00:01Z", "10"),
        ];
        events.sort_by_key(order);
        let text = events_table(&events, "test-ns");
        let objects: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(3).unwrap())
            .collect();
        assert_eq!(
            objects,
            ["pod/first", "pod/second", "node/n1", "pod/late"],
            "{text}"
        );
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_an_error_not_a_panic() {
        let file = std::env::temp_dir().join(format!("chaos-artifacts-{}", std::process::id()));
        std::fs::write(&file, "").unwrap();
        let err = prepare(&file.join("test")).unwrap_err();
        assert!(format!("{err:#}").contains("creating"), "{err:#}");
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn an_earlier_collection_is_removed_and_the_timeline_kept() {
        let dir = std::env::temp_dir().join(format!("chaos-artifacts-dir-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pods/web-1")).unwrap();
        std::fs::write(dir.join("pods/web-1/web.log"), "old").unwrap();
        std::fs::write(dir.join("events.txt"), "old").unwrap();
        std::fs::write(dir.join("timeline.json"), "{}").unwrap();
        prepare(&dir).unwrap();
        assert!(!dir.join("pods").exists() && !dir.join("events.txt").exists());
        assert!(dir.join("timeline.json").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
