//! Docker-level node faults against real containers shaped like kind nodes.
//!
//! kind's node images cannot be pulled everywhere, so each test starts a fake cluster from the
//! local image `chaos-node:bookworm` (built by `scripts/build-node-image.sh` when missing): the
//! containers have kind's names, labels, network and `docker run` flags, and a stub `systemctl`
//! running a fake kubelet. The real kind binary (`scripts/install-kind.sh`) must see them as a
//! cluster. Every test asserts the effect of a fault on the containers themselves. The HA fixture
//! adds a load balancer shaped like kind's: unprivileged, without added capabilities, so nothing of
//! ours can run iptables in it (kind runs envoy there; ours runs `sleep`, which is all the tests
//! need, as they check reachability with ping).
//!
//! Without a reachable Docker daemon the tests are ignored with the reason, unless
//! `CHAOS_REQUIRE_DOCKER=1`, which makes that a failure. netem needs the host kernel's sch_netem;
//! where it is missing the netem test checks the error and is ignored with the reason, unless
//! `CHAOS_REQUIRE_NETEM=1`.
//!
//! Every fixture container carries its owner's pid and start time (`ownership::owner_labels`): a
//! run killed before its fixtures' drop leaves them, and the next run (before its tests) or
//! `cargo chaos gc` removes those whose owner is gone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail, ensure};
use chaos_runtime::__kind::docker::{Docker, DockerError, DockerErrorKind, FaultLedger, NodeFault};
use chaos_runtime::__kind::ownership::{
    OWNER_PID_LABEL, OwnerRecord, Records, owner_labels, remove_leftover_containers,
};
use chaos_runtime::__kind::remove_leftovers;
use libtest_mimic::{Arguments, Completion, Failed, Trial};

const IMAGE: &str = "chaos-node:bookworm";
const NETWORK: &str = "kind";
const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
const PREFIX: &str = "chaos-fx";
/// A pod CIDR of worker2 and an address in it, as kindnet would route them.
const POD_CIDR: &str = "10.244.2.0/24";
const POD_IP: &str = "10.244.2.1";

type TestResult = anyhow::Result<Completion>;

/// A test: its name, what it needs from the machine, and its body.
type TestCase = (&'static str, Needs, fn(&Env) -> TestResult);

#[derive(Clone, Copy, PartialEq)]
enum Needs {
    Nothing,
    Docker,
    Kind,
}

#[rustfmt::skip]
const TESTS: &[TestCase] = &[
    ("kind_and_cluster_nodes_see_the_fixture",  Needs::Kind,    discovery),
    ("stop_kill_start_restart",                 Needs::Docker,  stop_kill_start_restart),
    ("pause_then_heal",                         Needs::Docker,  pause_then_heal),
    ("kubelet_stop_then_heal",                  Needs::Docker,  kubelet_stop_then_heal),
    ("partition_control_plane_from_workers",    Needs::Docker,  partition),
    ("isolate_and_overlapping_partitions",      Needs::Docker,  isolate),
    ("isolate_with_a_paused_peer",              Needs::Docker,  isolate_with_a_paused_peer),
    ("an_isolation_outlives_a_stop_and_start",  Needs::Docker,  isolation_outlives_a_restart),
    ("ha_isolate_never_acts_in_the_lb",         Needs::Docker,  ha_isolate),
    ("ha_partition_worker_loses_the_lb",        Needs::Docker,  ha_partition_all_control_planes),
    ("ha_split_control_planes_keep_the_lb",     Needs::Docker,  ha_partition_split_control_planes),
    ("netem_delay",                             Needs::Docker,  netem_delay),
    ("heal_goes_on_past_errors",                Needs::Docker,  heal_goes_on_past_errors),
    ("kind_delete_removes_the_fixture",         Needs::Kind,    kind_delete),
    ("gc_removes_leftovers_and_only_those",     Needs::Kind,    gc_removes_leftovers),
    ("a_dead_runs_fixtures_are_reaped",         Needs::Docker,  dead_runs_fixtures_are_reaped),
    ("errors_say_how_to_get_docker",            Needs::Nothing, errors_without_docker),
];

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let env = Arc::new(match args.list {
        true => Env::unprepared(),
        false => Env::prepare(),
    });
    let trials = TESTS.iter().map(|test| trial(test, env.clone())).collect();
    let conclusion = libtest_mimic::run(&args, trials);
    let leaks = match args.list || env.docker.is_err() {
        true => Ok(()),
        false => env.remove_leaks(),
    };
    if let Err(leaks) = &leaks {
        eprintln!("docker_nodes: FAILED: {leaks:#}");
    }
    match conclusion.has_failed() || leaks.is_err() {
        true => ExitCode::from(101),
        false => ExitCode::SUCCESS,
    }
}

fn trial(&(name, needs, run): &'static TestCase, env: Arc<Env>) -> Trial {
    Trial::ignorable_test(name, move || {
        if let Err(reason) = env.available(needs) {
            return env.unavailable(reason);
        }
        run(&env).map_err(|error| Failed::from(format!("{error:#}")))
    })
}

// --- what the tests need from the machine --------------------------------------------------------

/// What the machine offers, found out once before the tests run.
struct Env {
    /// Tells this run's clusters from other runs'.
    run_id: String,
    /// Why Docker-level tests cannot run, if they cannot.
    docker: Result<(), String>,
    kind: Result<PathBuf, String>,
    /// `--privileged`, as kind runs nodes, where the daemon allows it.
    node_flags: Vec<String>,
    /// kind edits the kubeconfig on delete: keep it off the user's.
    kubeconfig: PathBuf,
    require_docker: bool,
}

impl Env {
    fn unprepared() -> Self {
        Env {
            run_id: String::new(),
            docker: Err("not prepared".to_owned()),
            kind: Err("not prepared".to_owned()),
            node_flags: Vec::new(),
            kubeconfig: PathBuf::new(),
            require_docker: false,
        }
    }

    fn prepare() -> Self {
        let run_id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let mut env = Env {
            kubeconfig: std::env::temp_dir().join(format!("{PREFIX}-{run_id}.kubeconfig")),
            run_id,
            require_docker: chaos_runtime::__private::flag("CHAOS_REQUIRE_DOCKER").unwrap_or_else(
                |err| {
                    eprintln!("docker_nodes: {err:#}");
                    std::process::exit(2)
                },
            ),
            ..Env::unprepared()
        };
        env.docker = block_on(Docker::new().ping())
            .map_err(|error| {
                eprintln!("docker_nodes: {error}");
                format!("Docker is not reachable: {}", in_one_line(&error))
            })
            .and_then(|()| ensure_network())
            .and_then(|()| run_script("build-node-image.sh", &[IMAGE]).map(drop));
        if env.docker.is_ok() {
            reap_dead_runs_fixtures();
            env.node_flags = node_security_flags();
            env.kind = run_script("install-kind.sh", &[]).map(PathBuf::from);
        }
        env
    }

    fn available(&self, needs: Needs) -> Result<(), &str> {
        match needs {
            Needs::Nothing => Ok(()),
            Needs::Docker => self.docker.as_ref().map(drop).map_err(String::as_str),
            Needs::Kind => {
                self.available(Needs::Docker)?;
                self.kind.as_ref().map(drop).map_err(String::as_str)
            }
        }
    }

    /// Ignored with the reason, or, with `CHAOS_REQUIRE_DOCKER=1`, failed with it.
    fn unavailable(&self, reason: &str) -> Result<Completion, Failed> {
        match self.require_docker {
            true => Err(format!("CHAOS_REQUIRE_DOCKER=1, but {reason}").into()),
            false => Ok(Completion::ignored_with(reason)),
        }
    }

    fn kind(&self, args: &[&str]) -> anyhow::Result<Output> {
        let kind = self.kind.as_ref().map_err(|e| anyhow!("{e}"))?;
        let output = Command::new(kind)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()?;
        ensure!(
            output.status.success(),
            "`kind {}` failed: {}",
            args.join(" "),
            stderr(&output)
        );
        Ok(output)
    }

    /// Removes any container of this run's clusters still there; an error if there was one.
    fn remove_leaks(&self) -> anyhow::Result<()> {
        let _ = std::fs::remove_file(&self.kubeconfig);
        let format = format!("{{{{.Names}}}} {{{{.Label \"{CLUSTER_LABEL}\"}}}}");
        let listed = docker_ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("label={CLUSTER_LABEL}"),
            "--format",
            &format,
        ])?;
        let ours = format!("{PREFIX}-{}-", self.run_id);
        let leaked: Vec<&str> = listed
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, cluster)| cluster.starts_with(&ours))
            .map(|(name, _)| name)
            .collect();
        if leaked.is_empty() {
            return Ok(());
        }
        docker(&[&["rm", "-f", "-v"], leaked.as_slice()].concat());
        bail!(
            "containers of fixture clusters were left behind (now removed): {}",
            leaked.join(", ")
        )
    }
}

/// Removes the fixtures that killed runs left (their owner label names a process that ended),
/// as `cargo chaos gc` does; says what it removed, or could not.
fn reap_dead_runs_fixtures() {
    match block_on(remove_leftover_containers()) {
        Ok((removed, failed)) => {
            if !removed.is_empty() {
                eprintln!(
                    "docker_nodes: removed {} container(s) left by runs that ended: {}",
                    removed.len(),
                    removed.join(", ")
                );
            }
            for (name, error) in failed {
                eprintln!(
                    "docker_nodes: could not remove {name}, left by a run that ended: {error}; \
                     by hand: docker rm --force --volumes {name}"
                );
            }
        }
        Err(err) => eprintln!("docker_nodes: could not look for leftover fixtures: {err:#}"),
    }
}

/// The last line of an error's detail and its fix, for a one-line reason.
fn in_one_line(error: &DockerError) -> String {
    let text = error.to_string();
    let detail = text
        .lines()
        .rfind(|l| !l.starts_with("fix:"))
        .unwrap_or_default()
        .trim();
    match error.fix() {
        Some(fix) => format!("{detail}; fix: {fix}"),
        None => detail.to_owned(),
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    runtime.expect("a tokio runtime").block_on(future)
}

/// kind's network: created as kind creates it (IPv4 and an IPv6 ULA) if missing, never removed.
fn ensure_network() -> Result<(), String> {
    if docker(&["network", "inspect", NETWORK]).status.success() {
        return Ok(());
    }
    let create = [
        "network",
        "create",
        "-d=bridge",
        "-o",
        "com.docker.network.bridge.enable_ip_masquerade=true",
        "-o",
        "com.docker.network.driver.mtu=1500",
        "--ipv6",
        "--subnet",
        "fc00:f853:ccd:e793::/64",
        NETWORK,
    ];
    let output = docker(&create);
    // Another run may have created it meanwhile.
    match output.status.success() || docker(&["network", "inspect", NETWORK]).status.success() {
        true => Ok(()),
        false => Err(format!(
            "could not create the `{NETWORK}` network: {}",
            stderr(&output)
        )),
    }
}

/// kind runs nodes `--privileged`. Some daemons cannot grant every capability (here: a VM whose
/// bounding set lacks CAP_SYS_RESOURCE, so runc fails with "unable to apply caps"); then the
/// nodes get every capability the daemon has instead, which is all the faults need.
fn node_security_flags() -> Vec<String> {
    let probe = ["run", "--rm", "--privileged", "--entrypoint", "true", IMAGE];
    let output = docker(&probe);
    if output.status.success() {
        return vec!["--privileged".to_owned()];
    }
    eprintln!(
        "docker_nodes: this daemon refuses --privileged ({}); fixture nodes run with \
         --cap-add=ALL --cap-drop=SYS_RESOURCE instead (real kind nodes need --privileged)",
        stderr(&output)
            .rsplit("container process: ")
            .next()
            .and_then(|reason| reason.lines().next())
            .unwrap_or_default()
    );
    ["--cap-add=ALL", "--cap-drop=SYS_RESOURCE"]
        .map(String::from)
        .into()
}

/// Runs `scripts/<name>`, its progress on our stderr; returns its last stdout line.
fn run_script(name: &str, args: &[&str]) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name);
    let output = Command::new(&script)
        .args(args)
        .stderr(Stdio::inherit())
        .output();
    let output = output.map_err(|e| format!("could not run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match output.status.success() {
        true => Ok(stdout.lines().last().unwrap_or_default().to_owned()),
        false => Err(format!(
            "{} failed ({}); its output is above",
            script.display(),
            output.status
        )),
    }
}

// --- the fake cluster ----------------------------------------------------------------------------

/// A control plane and two workers.
const NODES: &[(&str, &str)] = &[
    ("control-plane", "control-plane"),
    ("worker", "worker"),
    ("worker2", "worker"),
];

/// kind's usual HA shape: three control planes and two workers, behind a load balancer.
const HA_NODES: &[(&str, &str)] = &[
    ("control-plane", "control-plane"),
    ("control-plane2", "control-plane"),
    ("control-plane3", "control-plane"),
    ("worker", "worker"),
    ("worker2", "worker"),
];

/// kind's `constants.ExternalLoadBalancerNodeRoleValue`, also the suffix of its name.
const LOAD_BALANCER: &str = "external-load-balancer";

/// Nodes (and, for HA, a load balancer) shaped like kind's, removed on drop (also after a panic).
struct FakeCluster {
    name: String,
    containers: Vec<String>,
}

impl FakeCluster {
    fn start(env: &Env, tag: &str) -> anyhow::Result<Self> {
        FakeCluster::start_shaped(env, tag, NODES, false)
    }

    fn start_ha(env: &Env, tag: &str) -> anyhow::Result<Self> {
        FakeCluster::start_shaped(env, tag, HA_NODES, true)
    }

    fn start_shaped(
        env: &Env,
        tag: &str,
        nodes: &[(&str, &str)],
        load_balancer: bool,
    ) -> anyhow::Result<Self> {
        let name = format!("{PREFIX}-{}-{tag}", env.run_id);
        let mut cluster = FakeCluster {
            name,
            containers: Vec::new(),
        };
        for (suffix, role) in nodes {
            let node = format!("{}-{suffix}", cluster.name);
            // Recorded first, so that drop removes a container whose start failed halfway.
            cluster.containers.push(node.clone());
            run_node(env, &cluster.name, &node, role)?;
        }
        if load_balancer {
            let lb = cluster.load_balancer();
            cluster.containers.push(lb.clone());
            run_load_balancer(&cluster.name, &lb)?;
        }
        for node in cluster.nodes() {
            wait_until(&format!("the kubelet of {node} to run"), || {
                kubelet_active(node)
            })?;
        }
        Ok(cluster)
    }

    /// The Kubernetes nodes: every container but the load balancer.
    fn nodes(&self) -> Vec<&str> {
        let lb = self.load_balancer();
        let nodes = self.containers.iter().filter(|c| **c != lb);
        nodes.map(String::as_str).collect()
    }

    /// The container called `<cluster>-<suffix>`.
    fn node(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name)
    }

    fn load_balancer(&self) -> String {
        self.node(LOAD_BALANCER)
    }

    fn control_plane(&self) -> &str {
        &self.containers[0]
    }

    fn worker(&self) -> &str {
        &self.containers[1]
    }

    fn worker2(&self) -> &str {
        &self.containers[2]
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        let names: Vec<&str> = self.containers.iter().map(String::as_str).collect();
        docker(&[&["rm", "-f", "-v"], names.as_slice()].concat());
    }
}

/// `docker run` with the flags kind's docker provider uses (`provision.go`).
fn run_node(env: &Env, cluster: &str, node: &str, role: &str) -> anyhow::Result<()> {
    let [owner_pid, owner_start] = owner_labels();
    let labels = [
        format!("{CLUSTER_LABEL}={cluster}"),
        format!("io.x-k8s.kind.role={role}"),
        owner_pid,
        owner_start,
    ];
    let mut args: Vec<String> = [
        "run",
        "--detach",
        "--tty",
        "--name",
        node,
        "--hostname",
        node,
    ]
    .map(String::from)
    .into();
    for label in labels {
        args.extend(["--label".into(), label]);
    }
    args.extend(
        [
            "--net",
            NETWORK,
            "--restart=on-failure:1",
            "--init=false",
            "--cgroupns=private",
        ]
        .map(String::from),
    );
    args.extend(env.node_flags.iter().cloned());
    args.extend(
        [
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
        ]
        .map(String::from),
    );
    args.extend(["--tmpfs", "/tmp", "--tmpfs", "/run", "--volume", "/var"].map(String::from));
    if Path::new("/lib/modules").is_dir() {
        args.extend(["--volume", "/lib/modules:/lib/modules:ro"].map(String::from));
    }
    args.push(IMAGE.to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker_ok(&args).map(drop)
}

/// The HA load balancer as kind runs it (`runArgsForLoadBalancer` in kind's
/// `pkg/cluster/internal/providers/docker/provision.go`): kind's common flags and labels, and no
/// `--privileged`, no `--cap-add`, no security options. kind runs envoy there and publishes 6443 on
/// the host; ours sleeps, and answers pings as any container does (the kernel replies).
fn run_load_balancer(cluster: &str, name: &str) -> anyhow::Result<()> {
    let cluster_label = format!("{CLUSTER_LABEL}={cluster}");
    let role_label = format!("io.x-k8s.kind.role={LOAD_BALANCER}");
    let [owner_pid, owner_start] = owner_labels();
    let args = [
        "run",
        "--detach",
        "--tty",
        "--name",
        name,
        "--hostname",
        name,
        "--label",
        &cluster_label,
        "--label",
        &role_label,
        "--label",
        &owner_pid,
        "--label",
        &owner_start,
        "--net",
        NETWORK,
        "--restart=on-failure:1",
        "--init=false",
        "--cgroupns=private",
        "--entrypoint",
        "sleep",
        IMAGE,
        "infinity",
    ];
    docker_ok(&args).map(drop)
}

// --- looking at containers -----------------------------------------------------------------------

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

fn docker_ok(args: &[&str]) -> anyhow::Result<String> {
    let output = docker(args);
    ensure!(
        output.status.success(),
        "`docker {}` failed: {}",
        args.join(" "),
        stderr(&output)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

fn inspect(node: &str, format: &str) -> anyhow::Result<String> {
    Ok(docker_ok(&["inspect", "--format", format, node])?
        .trim()
        .to_owned())
}

fn running(node: &str) -> anyhow::Result<bool> {
    Ok(inspect(node, "{{.State.Running}}")? == "true")
}

fn paused(node: &str) -> anyhow::Result<bool> {
    Ok(inspect(node, "{{.State.Paused}}")? == "true")
}

fn ip(node: &str, field: &str) -> anyhow::Result<String> {
    inspect(
        node,
        &format!("{{{{(index .NetworkSettings.Networks \"{NETWORK}\").{field}}}}}"),
    )
}

fn succeeds_in(node: &str, command: &[&str]) -> bool {
    docker(&[&["exec", node], command].concat())
        .status
        .success()
}

fn kubelet_active(node: &str) -> bool {
    succeeds_in(node, &["systemctl", "is-active", "kubelet"])
        && succeeds_in(node, &["pgrep", "-x", "kubelet"])
}

/// Whether `from` gets an answer from each address, all pinged at once (a lost ping costs 1 s).
fn pings(checks: &[(&str, &str)]) -> Vec<bool> {
    let children: Vec<_> = checks
        .iter()
        .map(|(from, to)| {
            let mut ping = Command::new("docker");
            ping.args(["exec", from, "ping", "-c1", "-W1", to])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            ping.spawn().expect("docker runs")
        })
        .collect();
    children
        .into_iter()
        .map(|mut c| c.wait().is_ok_and(|s| s.success()))
        .collect()
}

/// Fails naming every check that did not go as expected.
fn expect_pings(when: &str, checks: &[(&str, &str, bool)]) -> anyhow::Result<()> {
    let pairs: Vec<(&str, &str)> = checks.iter().map(|(from, to, _)| (*from, *to)).collect();
    let wrong: Vec<String> = pings(&pairs)
        .into_iter()
        .zip(checks)
        .filter(|(answered, (_, _, expected))| answered != expected)
        .map(|(answered, (from, to, _))| {
            format!(
                "{from} → {to} {}",
                if answered {
                    "answered"
                } else {
                    "got no answer"
                }
            )
        })
        .collect();
    ensure!(wrong.is_empty(), "{when}: {}", wrong.join("; "));
    Ok(())
}

/// Our chain, or a rule jumping to it, in any node's iptables or ip6tables.
fn partition_rules_left(nodes: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut left = Vec::new();
    for node in nodes {
        for tool in ["iptables", "ip6tables"] {
            let rules = docker_ok(&["exec", node, tool, "-S"])?;
            left.extend(
                rules
                    .lines()
                    .filter(|l| l.contains("CHAOS"))
                    .map(|l| format!("{node} {tool}: {l}")),
            );
        }
    }
    Ok(left)
}

/// Now, as `docker events --since` takes it.
fn events_mark() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_secs().to_string()
}

/// How many `docker exec`s were created in `container` since `mark` (`docker events`; the daemon
/// keeps them, unlike `.ExecIDs`, which forgets an exec when it ends).
fn execs_in(container: &str, mark: &str) -> anyhow::Result<usize> {
    let until = (SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 1).to_string();
    let filter = format!("container={container}");
    let events = docker_ok(&[
        "events",
        "--since",
        mark,
        "--until",
        &until,
        "--filter",
        &filter,
        "--filter",
        "event=exec_create",
        "--format",
        "{{.Action}}",
    ])?;
    Ok(events.lines().filter(|l| !l.trim().is_empty()).count())
}

/// Nothing was exec'd in the load balancer since `mark`, while the nodes were (the control that
/// `docker events` sees execs at all).
fn expect_no_exec_in_load_balancer(cluster: &FakeCluster, mark: &str) -> anyhow::Result<()> {
    let lb = cluster.load_balancer();
    let node = cluster.node("worker");
    ensure!(
        execs_in(&node, mark)? > 0,
        "docker events shows no exec in {node}, which the faults used"
    );
    let execs = execs_in(&lb, mark)?;
    ensure!(execs == 0, "{execs} `docker exec` ran in {lb}");
    Ok(())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

// --- the tests -----------------------------------------------------------------------------------

fn discovery(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "find")?;
    let clusters = env.kind(&["get", "clusters"])?;
    let clusters = String::from_utf8_lossy(&clusters.stdout).into_owned();
    ensure!(
        clusters.lines().any(|c| c == cluster.name),
        "`kind get clusters` lacks {}:\n{clusters}",
        cluster.name
    );

    let nodes = env.kind(&["get", "nodes", "--name", &cluster.name])?;
    let nodes: BTreeSet<String> = String::from_utf8_lossy(&nodes.stdout)
        .lines()
        .map(String::from)
        .collect();
    ensure!(
        nodes == cluster.containers.iter().cloned().collect(),
        "`kind get nodes` listed {nodes:?}"
    );

    let found = block_on(Docker::new().cluster_nodes(&cluster.name))?;
    let names: Vec<&str> = found.iter().map(|n| n.name.as_str()).collect();
    ensure!(names == cluster.containers, "cluster_nodes found {names:?}");
    let roles: Vec<&str> = found.iter().map(|n| n.role.as_str()).collect();
    ensure!(
        roles == ["control-plane", "worker", "worker"],
        "roles {roles:?}"
    );
    for node in &found {
        ensure!(
            node.cluster == cluster.name && node.running && !node.paused,
            "{node:?}"
        );
        ensure!(
            node.ip.as_deref() == Some(ip(&node.name, "IPAddress")?.as_str()),
            "IPv4 of {node:?}"
        );
        let ipv6 = Some(ip(&node.name, "GlobalIPv6Address")?).filter(|a| !a.is_empty());
        ensure!(node.ipv6 == ipv6, "IPv6 of {node:?}");
    }
    ensure!(
        block_on(Docker::new().node(cluster.worker()))? == found[1],
        "node() differs from cluster_nodes()"
    );
    let none = block_on(Docker::new().cluster_nodes(&format!("{}-none", cluster.name)))?;
    ensure!(none.is_empty(), "an unknown cluster has nodes: {none:?}");
    Ok(Completion::Completed)
}

fn stop_kill_start_restart(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "stop")?;
    let (cp, worker, worker2) = (cluster.control_plane(), cluster.worker(), cluster.worker2());
    let ledger = FaultLedger::new(Docker::new());

    let stopped = block_on(ledger.stop(worker))?;
    let killed = block_on(ledger.kill(worker2))?;
    ensure!(
        !running(worker)? && !running(worker2)?,
        "stop/kill left a node running"
    );
    // kind's restart policy (on-failure:1) does not bring a stopped or killed node back.
    thread::sleep(Duration::from_secs(1));
    ensure!(
        !running(worker)? && !running(worker2)?,
        "the restart policy restarted a node"
    );
    let active: Vec<String> = ledger.active().iter().map(|f| f.to_string()).collect();
    ensure!(
        active
            == [
                format!("{stopped} stop {worker}"),
                format!("{killed} kill {worker2}")
            ],
        "active: {active:?}"
    );

    block_on(ledger.undo(stopped))?;
    ensure!(running(worker)?, "undo of stop did not start {worker}");
    // The node boots as a kind node does: its init starts the kubelet.
    wait_until("the kubelet after undo of stop", || kubelet_active(worker))?;
    block_on(ledger.heal())?;
    ensure!(running(worker2)?, "heal did not start the killed {worker2}");
    ensure!(
        ledger.active().is_empty(),
        "faults left after heal: {:?}",
        ledger.active()
    );

    // Starting a stopped node by hand ends its stop fault; a restart is a clean reboot.
    block_on(ledger.stop(cp))?;
    block_on(ledger.start(cp))?;
    ensure!(
        running(cp)? && ledger.active().is_empty(),
        "start did not end the stop: {:?}",
        ledger.active()
    );
    block_on(ledger.kubelet_stop(worker))?;
    block_on(ledger.restart(worker))?;
    ensure!(
        running(worker)?,
        "{worker} did not come back from a restart"
    );
    wait_until("the kubelet after a restart", || kubelet_active(worker))?;
    ensure!(
        ledger.active().is_empty(),
        "restart did not end the kubelet stop: {:?}",
        ledger.active()
    );
    Ok(Completion::Completed)
}

fn pause_then_heal(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "pause")?;
    let worker = cluster.worker();
    let ledger = FaultLedger::new(Docker::new());

    block_on(ledger.pause(worker))?;
    ensure!(
        paused(worker)?,
        "docker inspect does not show {worker} paused"
    );
    let error = block_on(ledger.kubelet_stop(worker))
        .err()
        .context("exec into a paused node worked")?;
    ensure!(
        error.kind() == DockerErrorKind::Paused,
        "unexpected error: {error}"
    );
    let text = error.to_string();
    ensure!(
        text.contains(worker) && text.contains(&format!("docker unpause {worker}")),
        "unhelpful error: {text}"
    );

    block_on(ledger.heal())?;
    ensure!(
        !paused(worker)? && running(worker)?,
        "{worker} still paused after heal"
    );
    ensure!(
        succeeds_in(worker, &["true"]),
        "cannot exec into {worker} after heal"
    );
    Ok(Completion::Completed)
}

fn kubelet_stop_then_heal(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "kubelet")?;
    let (worker, worker2) = (cluster.worker(), cluster.worker2());
    let ledger = FaultLedger::new(Docker::new());

    block_on(ledger.kubelet_stop(worker))?;
    ensure!(
        !succeeds_in(worker, &["systemctl", "is-active", "kubelet"]),
        "systemctl says the kubelet is active"
    );
    ensure!(
        !succeeds_in(worker, &["pgrep", "-x", "kubelet"]),
        "a kubelet process still runs in {worker}"
    );
    ensure!(
        kubelet_active(worker2),
        "the kubelet of {worker2} stopped too"
    );
    ensure!(running(worker)?, "the node itself stopped");

    block_on(ledger.heal())?;
    ensure!(
        kubelet_active(worker),
        "heal did not start the kubelet of {worker}"
    );
    Ok(Completion::Completed)
}

fn partition(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "part")?;
    let (cp, worker, worker2) = (cluster.control_plane(), cluster.worker(), cluster.worker2());
    let (cp_ip, cp_ipv6) = (ip(cp, "IPAddress")?, ip(cp, "GlobalIPv6Address")?);
    let (worker_ip, worker2_ipv6) = (ip(worker, "IPAddress")?, ip(worker2, "GlobalIPv6Address")?);
    ensure!(
        !cp_ipv6.is_empty(),
        "the `{NETWORK}` network has no IPv6: the IPv6 half is not tested"
    );
    // Like kindnet: worker2 owns a pod CIDR that the control plane routes via worker2.
    docker_ok(&[
        "exec",
        worker2,
        "ip",
        "addr",
        "add",
        &format!("{POD_IP}/32"),
        "dev",
        "lo",
    ])?;
    docker_ok(&[
        "exec",
        cp,
        "ip",
        "route",
        "add",
        POD_CIDR,
        "via",
        &ip(worker2, "IPAddress")?,
    ])?;
    // Someone else's rules (kube-proxy's, say), which a partition must leave alone.
    for rule in [
        &["-N", "KUBE-FAKE"][..],
        &["-A", "KUBE-FAKE", "-s", "10.99.0.0/16", "-j", "ACCEPT"],
        &["-A", "INPUT", "-j", "KUBE-FAKE"],
    ] {
        docker_ok(&[&["exec", cp, "iptables"], rule].concat())?;
    }
    let checks = |cut: bool| {
        [
            (worker, cp_ip.as_str(), !cut),
            (worker2, cp_ipv6.as_str(), !cut),
            (worker2, cp, !cut),
            (cp, worker_ip.as_str(), !cut),
            (cp, POD_IP, !cut),
            (worker, worker2_ipv6.as_str(), true),
            (worker2, worker_ip.as_str(), true),
        ]
    };
    expect_pings("before the partition", &checks(false))?;

    let ledger = FaultLedger::new(Docker::new());
    block_on(ledger.partition(&[cp], &[worker, worker2]))?;
    expect_pings("during the partition", &checks(true))?;
    let input = docker_ok(&["exec", cp, "iptables", "-S", "INPUT"])?;
    ensure!(
        input.lines().nth(1) == Some("-A INPUT -j CHAOS-PARTITION"),
        "our jump is not first:\n{input}"
    );

    block_on(ledger.heal())?;
    expect_pings("after heal", &checks(false))?;
    let left = partition_rules_left(
        &cluster
            .containers
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )?;
    ensure!(
        left.is_empty(),
        "rules of ours left after heal:\n{}",
        left.join("\n")
    );
    let foreign = docker_ok(&["exec", cp, "iptables", "-S"])?;
    ensure!(
        foreign.contains("-A KUBE-FAKE -s 10.99.0.0/16 -j ACCEPT")
            && foreign.contains("-A INPUT -j KUBE-FAKE"),
        "someone else's rules are gone:\n{foreign}"
    );
    Ok(Completion::Completed)
}

fn isolate(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "isolate")?;
    let (cp, worker, worker2) = (cluster.control_plane(), cluster.worker(), cluster.worker2());
    let ledger = FaultLedger::new(Docker::new());

    let isolated = block_on(ledger.isolate(worker2))?;
    expect_pings(
        "worker2 isolated",
        &[
            (worker2, cp, false),
            (worker2, worker, false),
            (cp, worker, true),
        ],
    )?;
    let cut = block_on(ledger.partition(&[cp], &[worker]))?;
    expect_pings(
        "and cp | worker",
        &[(cp, worker, false), (worker2, cp, false)],
    )?;
    let faults: Vec<NodeFault> = ledger.active().into_iter().map(|f| f.fault).collect();
    ensure!(
        matches!(
            faults.as_slice(),
            [NodeFault::Partition { .. }, NodeFault::Partition { .. }]
        ),
        "{faults:?}"
    );

    // Undoing one partition leaves the other's rules, in the same chain of the same node, alone.
    block_on(ledger.undo(isolated))?;
    expect_pings(
        "isolation undone",
        &[
            (worker2, cp, true),
            (worker2, worker, true),
            (cp, worker, false),
        ],
    )?;
    block_on(ledger.undo(cut))?;
    expect_pings("both undone", &[(cp, worker, true)])?;
    let left = partition_rules_left(&[cp, worker, worker2])?;
    ensure!(
        left.is_empty(),
        "rules of ours left after undo:\n{}",
        left.join("\n")
    );
    Ok(Completion::Completed)
}

/// A paused peer takes no rules (nothing can be exec'd in it); the isolated node's own rules cut
/// it both ways.
fn isolate_with_a_paused_peer(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "paused-peer")?;
    let (cp, worker, worker2) = (cluster.control_plane(), cluster.worker(), cluster.worker2());
    let ledger = FaultLedger::new(Docker::new());
    let paused = block_on(ledger.pause(worker))?;
    let isolated = block_on(ledger.isolate(worker2))?;
    block_on(ledger.undo(paused))?;
    expect_pings(
        "worker2 isolated, worker unpaused",
        &[
            (worker2, cp, false),
            (worker2, worker, false),
            (worker, worker2, false),
            (cp, worker, true),
        ],
    )?;
    block_on(ledger.undo(isolated))?;
    expect_pings("undone", &[(worker2, cp, true), (worker, worker2, true)])?;
    let left = partition_rules_left(&[cp, worker, worker2])?;
    ensure!(left.is_empty(), "rules of ours left:\n{}", left.join("\n"));
    Ok(Completion::Completed)
}

/// A stop and start gives the node a fresh network namespace (its own rules gone) and maybe
/// another address: the isolation is put back, and lasts until its own undo.
fn isolation_outlives_a_restart(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "outlives")?;
    let (cp, worker) = (cluster.control_plane(), cluster.worker());
    let ledger = FaultLedger::new(Docker::new());
    let isolated = block_on(ledger.isolate(worker))?;
    let stopped = block_on(ledger.stop(worker))?;
    block_on(ledger.undo(stopped))?;
    // Its old rules went with its old network namespace: these are put back.
    ensure!(
        !partition_rules_left(&[worker])?.is_empty(),
        "no rule of ours in the started node"
    );
    expect_pings(
        "started, still isolated",
        &[(worker, cp, false), (cp, worker, false)],
    )?;
    block_on(ledger.restart(worker))?;
    expect_pings(
        "restarted, still isolated",
        &[(worker, cp, false), (cp, worker, false)],
    )?;
    block_on(ledger.undo(isolated))?;
    expect_pings("undone", &[(worker, cp, true), (cp, worker, true)])?;
    let left = partition_rules_left(&[cp, worker])?;
    ensure!(left.is_empty(), "rules of ours left:\n{}", left.join("\n"));
    Ok(Completion::Completed)
}

/// The addresses of `node` on the kind network, IPv4 and IPv6 (which the fixture's network has).
fn addresses(node: &str) -> anyhow::Result<(String, String)> {
    let (v4, v6) = (ip(node, "IPAddress")?, ip(node, "GlobalIPv6Address")?);
    ensure!(
        !v4.is_empty() && !v6.is_empty(),
        "{node} lacks an address on `{NETWORK}` (IPv4 `{v4}`, IPv6 `{v6}`)"
    );
    Ok((v4, v6))
}

/// isolate in an HA cluster: the isolated node loses the load balancer and every peer, the others
/// keep the load balancer, and nothing runs in the load balancer (it has no NET_ADMIN: iptables
/// there fails, which failed every HA isolate before).
fn ha_isolate(env: &Env) -> TestResult {
    let cluster = FakeCluster::start_ha(env, "ha-iso")?;
    let node = |suffix| cluster.node(suffix);
    let (cp, cp2, cp3) = (
        node("control-plane"),
        node("control-plane2"),
        node("control-plane3"),
    );
    let (worker, worker2, lb) = (node("worker"), node("worker2"), cluster.load_balancer());
    let (lb_ip, lb_ipv6) = addresses(&lb)?;
    let (worker_ip, worker_ipv6) = addresses(&worker)?;
    let mark = events_mark();
    let checks = |cut: bool| {
        [
            (worker.as_str(), lb_ip.as_str(), !cut),
            (worker.as_str(), lb_ipv6.as_str(), !cut),
            (worker.as_str(), lb.as_str(), !cut),
            (worker.as_str(), cp.as_str(), !cut),
            (worker.as_str(), worker2.as_str(), !cut),
            (cp2.as_str(), worker_ip.as_str(), !cut),
            (worker2.as_str(), worker_ipv6.as_str(), !cut),
            (cp.as_str(), lb_ip.as_str(), true),
            (cp3.as_str(), lb_ipv6.as_str(), true),
            (worker2.as_str(), lb_ip.as_str(), true),
            (worker2.as_str(), lb_ipv6.as_str(), true),
            (worker2.as_str(), cp3.as_str(), true),
        ]
    };
    expect_pings("before isolate", &checks(false))?;

    let ledger = FaultLedger::new(Docker::new());
    let isolated = block_on(ledger.isolate(&worker))?;
    expect_pings("worker isolated", &checks(true))?;
    let active = ledger.active();
    ensure!(
        active.len() == 1 && active[0].nodes.contains(&lb),
        "the load balancer is not among the isolated node's peers: {active:?}"
    );
    block_on(ledger.undo(isolated))?;
    expect_pings("isolate undone", &checks(false))?;

    // The heal walks the same undo.
    block_on(ledger.isolate(&worker))?;
    expect_pings("isolated again", &checks(true))?;
    block_on(ledger.heal())?;
    expect_pings("after heal", &checks(false))?;
    let left = partition_rules_left(&cluster.nodes())?;
    ensure!(left.is_empty(), "rules of ours left:\n{}", left.join("\n"));
    expect_no_exec_in_load_balancer(&cluster, &mark)?;
    Ok(Completion::Completed)
}

/// `worker | every control plane` in an HA cluster: the worker loses the load balancer too (else
/// its kubelet still reaches the API through it); the control planes and the other worker keep it.
fn ha_partition_all_control_planes(env: &Env) -> TestResult {
    let cluster = FakeCluster::start_ha(env, "ha-part")?;
    let node = |suffix| cluster.node(suffix);
    let (cp, cp2, cp3) = (
        node("control-plane"),
        node("control-plane2"),
        node("control-plane3"),
    );
    let (worker, worker2, lb) = (node("worker"), node("worker2"), cluster.load_balancer());
    let (lb_ip, lb_ipv6) = addresses(&lb)?;
    let (cp_ip, cp3_ipv6) = (addresses(&cp)?.0, addresses(&cp3)?.1);
    let mark = events_mark();
    let checks = |cut: bool| {
        [
            (worker.as_str(), lb_ip.as_str(), !cut),
            (worker.as_str(), lb_ipv6.as_str(), !cut),
            (worker.as_str(), lb.as_str(), !cut),
            (worker.as_str(), cp_ip.as_str(), !cut),
            (worker.as_str(), cp3_ipv6.as_str(), !cut),
            (cp2.as_str(), worker.as_str(), !cut),
            (cp.as_str(), lb_ip.as_str(), true),
            (cp2.as_str(), lb_ipv6.as_str(), true),
            (cp3.as_str(), lb.as_str(), true),
            (worker2.as_str(), lb_ip.as_str(), true),
            (worker2.as_str(), lb_ipv6.as_str(), true),
            (worker2.as_str(), worker.as_str(), true),
            (worker2.as_str(), cp.as_str(), true),
        ]
    };
    expect_pings("before the partition", &checks(false))?;

    let ledger = FaultLedger::new(Docker::new());
    let cut = block_on(ledger.partition(&[&worker], &[&cp, &cp2, &cp3]))?;
    expect_pings("worker | control planes", &checks(true))?;
    let faults: Vec<NodeFault> = ledger.active().into_iter().map(|f| f.fault).collect();
    ensure!(
        matches!(faults.as_slice(), [NodeFault::Partition { a, b }]
            if *a == [worker.clone()] && b.last() == Some(&lb)),
        "the load balancer did not join the control planes: {faults:?}"
    );
    block_on(ledger.undo(cut))?;
    expect_pings("partition undone", &checks(false))?;
    let left = partition_rules_left(&cluster.nodes())?;
    ensure!(left.is_empty(), "rules of ours left:\n{}", left.join("\n"));
    expect_no_exec_in_load_balancer(&cluster, &mark)?;
    Ok(Completion::Completed)
}

/// A partition with control planes on both sides in an HA cluster: the load balancer is on neither
/// side, and both keep it (see `FaultLedger::partition`); the direct paths are cut.
fn ha_partition_split_control_planes(env: &Env) -> TestResult {
    let cluster = FakeCluster::start_ha(env, "ha-split")?;
    let node = |suffix| cluster.node(suffix);
    let (cp, cp2, cp3) = (
        node("control-plane"),
        node("control-plane2"),
        node("control-plane3"),
    );
    let (worker, worker2, lb) = (node("worker"), node("worker2"), cluster.load_balancer());
    let (lb_ip, lb_ipv6) = addresses(&lb)?;
    let mark = events_mark();
    let checks = |cut: bool| {
        [
            (worker.as_str(), cp3.as_str(), !cut),
            (worker2.as_str(), cp.as_str(), !cut),
            (cp2.as_str(), cp3.as_str(), !cut),
            (worker.as_str(), worker2.as_str(), !cut),
            (worker.as_str(), lb_ip.as_str(), true),
            (worker.as_str(), lb_ipv6.as_str(), true),
            (worker2.as_str(), lb_ip.as_str(), true),
            (worker2.as_str(), lb_ipv6.as_str(), true),
            (cp.as_str(), lb.as_str(), true),
            (cp3.as_str(), lb_ip.as_str(), true),
            (worker.as_str(), cp2.as_str(), true),
        ]
    };
    expect_pings("before the partition", &checks(false))?;

    let ledger = FaultLedger::new(Docker::new());
    // The majority side holds two control planes of three: not all of them.
    let cut = block_on(ledger.partition(&[&cp, &cp2, &worker], &[&cp3, &worker2]))?;
    expect_pings("control planes split", &checks(true))?;
    let active = ledger.active();
    ensure!(
        active.len() == 1 && !active[0].nodes.contains(&lb),
        "the load balancer was put on a side: {active:?}"
    );
    block_on(ledger.undo(cut))?;
    expect_pings("partition undone", &checks(false))?;
    let left = partition_rules_left(&cluster.nodes())?;
    ensure!(left.is_empty(), "rules of ours left:\n{}", left.join("\n"));
    expect_no_exec_in_load_balancer(&cluster, &mark)?;
    Ok(Completion::Completed)
}

fn netem_delay(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "netem")?;
    let (cp, worker) = (cluster.control_plane(), cluster.worker());
    let ledger = FaultLedger::new(Docker::new());
    let qdisc = || docker_ok(&["exec", worker, "tc", "qdisc", "show", "dev", "eth0"]);

    match block_on(ledger.netem(worker, Some(Duration::from_millis(100)), None)) {
        Ok(_) => {
            let shown = qdisc()?;
            ensure!(
                shown.contains("netem") && shown.contains("delay 100ms"),
                "tc shows:\n{shown}"
            );
            let rtt = ping_rtt(worker, cp)?;
            ensure!(
                rtt >= Duration::from_millis(100),
                "ping took {rtt:?} with 100ms delay"
            );
            block_on(ledger.heal())?;
            ensure!(
                !qdisc()?.contains("netem"),
                "netem left after heal:\n{}",
                qdisc()?
            );
            Ok(Completion::Completed)
        }
        Err(error) if error.kind() == DockerErrorKind::NetemUnavailable => {
            let text = error.to_string();
            ensure!(
                text.contains(worker) && text.contains("sch_netem") && text.contains("fix:"),
                "unhelpful: {text}"
            );
            ensure!(
                ledger.active().is_empty() && !qdisc()?.contains("netem"),
                "a failed netem left something"
            );
            let kernel = docker_ok(&["exec", worker, "uname", "-r"])?;
            let detail = text
                .lines()
                .rfind(|l| !l.starts_with("fix:"))
                .unwrap_or_default();
            let reason = format!(
                "the host kernel {} has no sch_netem ({}); only the error path was checked",
                kernel.trim(),
                detail.trim()
            );
            match chaos_runtime::__private::flag("CHAOS_REQUIRE_NETEM")? {
                true => bail!("CHAOS_REQUIRE_NETEM=1, but {reason}"),
                false => Ok(Completion::ignored_with(reason)),
            }
        }
        Err(error) => Err(error.into()),
    }
}

fn ping_rtt(from: &str, to: &str) -> anyhow::Result<Duration> {
    let output = docker_ok(&["exec", from, "ping", "-c1", "-W2", to])?;
    let ms = output
        .split("time=")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .context("no time= in ping output")?;
    Ok(Duration::from_secs_f64(ms.parse::<f64>()? / 1000.0))
}

fn heal_goes_on_past_errors(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "heal")?;
    let (worker, worker2) = (cluster.worker(), cluster.worker2());
    let ledger = FaultLedger::new(Docker::new());

    block_on(ledger.pause(worker2))?;
    block_on(ledger.stop(worker))?;
    docker_ok(&["rm", "-f", worker])?; // gone behind the ledger's back
    // Newest first: starting the removed worker fails, then worker2 must still be unpaused.
    let error = block_on(ledger.heal())
        .err()
        .context("heal succeeded with a node gone")?;
    ensure!(
        !paused(worker2)?,
        "heal stopped at the first failure: {worker2} still paused"
    );
    ensure!(error.failures.len() == 1, "{error}");
    let (fault, cause) = &error.failures[0];
    ensure!(
        fault.fault == NodeFault::Stop && fault.nodes == [worker],
        "failed fault: {fault}"
    );
    ensure!(
        cause.kind() == DockerErrorKind::NoSuchContainer,
        "cause: {cause}"
    );
    let text = error.to_string();
    ensure!(
        text.contains(&format!("docker start {worker}")) && text.contains("fix:"),
        "unhelpful: {text}"
    );
    ensure!(
        ledger.active().is_empty(),
        "heal left faults: {:?}",
        ledger.active()
    );
    Ok(Completion::Completed)
}

fn kind_delete(env: &Env) -> TestResult {
    let cluster = FakeCluster::start(env, "delete")?;
    env.kind(&["delete", "cluster", "--name", &cluster.name])?;
    let filter = format!("label={CLUSTER_LABEL}={}", cluster.name);
    let left = docker_ok(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])?;
    ensure!(left.trim().is_empty(), "`kind delete cluster` left: {left}");
    ensure!(
        block_on(Docker::new().cluster_nodes(&cluster.name))?.is_empty(),
        "cluster_nodes still finds nodes"
    );
    Ok(Completion::Completed)
}

/// What `cargo chaos gc` runs: a cluster whose owner is gone goes; one whose owner runs, and one
/// kept on purpose, stay.
fn gc_removes_leftovers(env: &Env) -> TestResult {
    let state = std::env::temp_dir().join(format!("{PREFIX}-{}-gc-state", env.run_id));
    let records = Records::at(&state);
    let (dead, kept, live) = (
        FakeCluster::start(env, "gc-dead")?,
        FakeCluster::start(env, "gc-kept")?,
        FakeCluster::start(env, "gc-live")?,
    );
    let mut exited = Command::new("true").spawn()?;
    let dead_pid = exited.id();
    exited.wait()?;
    let owned_by_dead = |cluster: &str| OwnerRecord {
        pid: dead_pid,
        ..OwnerRecord::for_this_process(cluster, "kind", None)
    };
    records.write(&owned_by_dead(&dead.name))?;
    records.write(&OwnerRecord {
        kept: true,
        ..owned_by_dead(&kept.name)
    })?;
    records.write(&OwnerRecord::for_this_process(&live.name, "kind", None))?;

    let report = block_on(remove_leftovers(&records))?;
    ensure!(
        report.removed == [dead.name.clone()] && report.failed.is_empty(),
        "gc: {report:?}"
    );
    ensure!(
        block_on(Docker::new().cluster_nodes(&dead.name))?.is_empty(),
        "the leftover's nodes remain"
    );
    for cluster in [&kept, &live] {
        let nodes = block_on(Docker::new().cluster_nodes(&cluster.name))?;
        ensure!(
            nodes.len() == 3,
            "gc touched {}: {} nodes left",
            cluster.name,
            nodes.len()
        );
    }
    let recorded: Vec<String> = records.all().into_iter().map(|r| r.cluster).collect();
    ensure!(
        recorded == [kept.name.clone(), live.name.clone()],
        "records left: {recorded:?}"
    );
    std::fs::remove_dir_all(&state)?;
    Ok(Completion::Completed)
}

/// A fixture as a SIGKILLed run leaves it (labelled with an owner that is gone) is removed by
/// what the next run and `cargo chaos gc` call; one whose owner runs (this process) stays.
fn dead_runs_fixtures_are_reaped(env: &Env) -> TestResult {
    let mut exited = Command::new("true").spawn()?;
    let dead_pid = exited.id();
    exited.wait()?;
    let [_, my_start] = owner_labels();
    let dead = format!("{PREFIX}-{}-reap-dead", env.run_id);
    let live = format!("{PREFIX}-{}-reap-live", env.run_id);
    let fixture = |name: &str, pid: u32| {
        // Created, not started: all that ownership needs, and cheap.
        docker_ok(&[
            "create",
            "--name",
            name,
            "--label",
            &format!("{CLUSTER_LABEL}={name}"),
            "--label",
            &format!("{OWNER_PID_LABEL}={pid}"),
            "--label",
            &my_start,
            IMAGE,
        ])
    };
    fixture(&dead, dead_pid)?;
    let guard = Removed(vec![dead.clone(), live.clone()]);
    fixture(&live, std::process::id())?;

    let (removed, failed) = block_on(remove_leftover_containers())?;
    ensure!(failed.is_empty(), "could not remove: {failed:?}");
    ensure!(removed.contains(&dead), "{dead} left: removed {removed:?}");
    ensure!(
        !removed.contains(&live),
        "{live} (owner running) was removed"
    );
    let left = |name: &str| docker(&["container", "inspect", name]).status.success();
    ensure!(!left(&dead), "{dead} is still there");
    ensure!(left(&live), "{live} is gone");
    drop(guard);
    Ok(Completion::Completed)
}

/// Removes containers on drop (also after a failed `ensure!`).
struct Removed(Vec<String>);

impl Drop for Removed {
    fn drop(&mut self) {
        let names: Vec<&str> = self.0.iter().map(String::as_str).collect();
        docker(&[&["rm", "-f", "-v"], names.as_slice()].concat());
    }
}

fn errors_without_docker(_: &Env) -> TestResult {
    let missing = block_on(Docker::with_program("/nonexistent/docker").ping())
        .err()
        .context("ping worked")?;
    ensure!(missing.kind() == DockerErrorKind::NotInstalled, "{missing}");
    ensure!(
        missing.to_string().contains("install Docker"),
        "no install hint: {missing}"
    );

    if Command::new("docker").arg("--version").output().is_err() {
        return Ok(Completion::Completed);
    }
    // The real CLI, pointed at a socket nobody listens on.
    let wrapper =
        std::env::temp_dir().join(format!("{PREFIX}-{}-docker-down.sh", std::process::id()));
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nDOCKER_HOST=unix:///nonexistent/docker.sock exec docker \"$@\"\n",
    )?;
    Command::new("chmod").arg("+x").arg(&wrapper).status()?;
    let down = block_on(Docker::with_program(wrapper.to_string_lossy()).ping());
    std::fs::remove_file(&wrapper)?;
    let down = down
        .err()
        .context("ping of a socket nobody listens on worked")?;
    ensure!(down.kind() == DockerErrorKind::DaemonUnreachable, "{down}");
    ensure!(
        down.to_string().contains("fix: start the Docker daemon"),
        "no fix: {down}"
    );

    // An older CLI without a daemon: `docker info` exits 0 and prints no server version.
    let silent =
        std::env::temp_dir().join(format!("{PREFIX}-{}-docker-silent.sh", std::process::id()));
    std::fs::write(
        &silent,
        "#!/bin/sh
echo
exit 0
",
    )?;
    Command::new("chmod").arg("+x").arg(&silent).status()?;
    let empty = block_on(Docker::with_program(silent.to_string_lossy()).ping());
    std::fs::remove_file(&silent)?;
    let empty = empty
        .err()
        .context("an empty server version was accepted")?;
    ensure!(
        empty.kind() == DockerErrorKind::DaemonUnreachable,
        "{empty}"
    );
    ensure!(
        empty.to_string().contains("printed no server version"),
        "{empty}"
    );
    Ok(Completion::Completed)
}
