//! The `kubelet` unit: registers its node, keeps it `Ready` with heartbeats, renews its Lease,
//! and runs the pods bound to it, over HTTP(S) to the cluster's API like the real kubelet.
//!
//! The heartbeats follow the real kubelet's rules: the node status (with the `Ready`
//! condition's `lastHeartbeatTime`) every `nodeStatusUpdateFrequency` of the
//! KubeletConfiguration (default 10 s), and the Lease `kube-node-lease/<node>` every quarter of
//! `nodeLeaseDurationSeconds` (default 40 s: `nodeLeaseRenewIntervalFraction = 0.25` in
//! `pkg/kubelet/kubelet.go`). One simplification: the real kubelet only *posts* an unchanged
//! status every `nodeStatusReportFrequency` (5 m) and relies on the Lease in between; this one
//! posts it every `nodeStatusUpdateFrequency`. The node lifecycle controller goes by either.
//!
//! Requests have short timeouts, so that a node cut off from the API (a paused container, an
//! iptables partition) fails its heartbeats rather than hanging on them; each failure is
//! logged to stderr.
//!
//! Pods have no real containers: a pod bound here goes `Pending` with `ContainerCreating`, then
//! `Running` and `Ready` after the start delay, with the status shapes of
//! [`chaos_sim::control::pod_status`]. The pods whose "containers" run are remembered under
//! `/run` (a tmpfs): a kubelet restarted by `systemctl` finds them still running, while after a
//! container restart they are gone and the pods restart (`restartCount` + 1).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chaos_sim::control::pod_status;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::parse_duration;
use crate::paths::{Paths, read_file, write_file};

/// What a real kubeadm passes the kubelet in `kubeadm-flags.env` and on its command line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// `--hostname-override`: the node's name.
    pub node_name: String,
    /// `--node-ip` (kind passes the container's address on its network).
    pub node_ip: String,
    /// `--provider-id` (kind: `kind://docker/<cluster>/<node>`).
    pub provider_id: String,
    /// `--node-labels`.
    pub labels: BTreeMap<String, String>,
    /// `--register-with-taints`, as Taint objects.
    pub taints: Vec<Value>,
    /// The kubelet's version (`/kind/version`).
    pub version: String,
}

/// `--node-labels=k=v,k2=v2` (an empty string is none).
pub fn parse_node_labels(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => bail!("node label {pair:?} is not key=value"),
        })
        .collect()
}

/// Everything the kubelet runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Its flags.
    pub flags: Flags,
    /// `nodeStatusUpdateFrequency` (default 10 s).
    pub status_update_frequency: Duration,
    /// `nodeLeaseDurationSeconds` (default 40).
    pub lease_duration_seconds: u32,
    /// From a pod bound here to its containers running.
    pub pod_start: Duration,
    /// The timeout of each request.
    pub request_timeout: Duration,
    /// The file of running containers.
    pub containers_file: PathBuf,
}

impl Settings {
    /// From the files `kubeadm` wrote: the flags and `/var/lib/kubelet/config.yaml`.
    pub fn from_files(paths: &Paths) -> anyhow::Result<Self> {
        let flags: Flags = serde_json::from_str(&read_file(&paths.kubelet_flags())?)
            .context("reading the kubelet flags")?;
        let config: Value = serde_saphyr::from_str(&read_file(&paths.kubelet_config())?)
            .context("reading the KubeletConfiguration")?;
        let status_update_frequency = match config["nodeStatusUpdateFrequency"].as_str() {
            Some(text) => parse_duration(text)?,
            None => Duration::from_secs(10),
        };
        let lease_duration_seconds = config["nodeLeaseDurationSeconds"]
            .as_u64()
            .map_or(40, |s| s as u32);
        Ok(Self {
            flags,
            status_update_frequency,
            lease_duration_seconds,
            pod_start: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            containers_file: paths.containers(),
        })
    }
}

/// The pods whose containers run, kept in a file so that they outlive the kubelet process.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Containers {
    /// Pod uid → its IP.
    running: BTreeMap<String, String>,
    next_ip: u32,
}

impl Containers {
    fn load(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    fn save(&self, path: &Path) {
        let text = serde_json::to_string(self).expect("plain data serializes");
        if let Err(e) = write_file(path, text) {
            eprintln!("remembering the running containers: {e:#}");
        }
    }
}

/// Runs the kubelet until the task is dropped. `client` makes the short requests (it should
/// carry short timeouts), `watch_client` the pod watch.
pub async fn run(client: kube::Client, watch_client: kube::Client, settings: Settings) {
    let kubelet = Arc::new(Kubelet::new(client, settings));
    let wake = Arc::new(Notify::new());
    let watch = tokio::spawn(watch_pods(
        watch_client,
        kubelet.flags().node_name.clone(),
        wake.clone(),
    ));
    let _abort_watch = AbortOnDrop(watch);
    let lease_every = Duration::from_secs(u64::from(kubelet.settings.lease_duration_seconds)) / 4;
    let mut next_status = Instant::now();
    let mut next_lease = Instant::now();
    let mut starting: HashMap<String, Instant> = HashMap::new();
    loop {
        let now = Instant::now();
        if now >= next_status {
            next_status = now + kubelet.settings.status_update_frequency;
            kubelet
                .logged("posting node status", kubelet.post_status())
                .await;
        }
        if now >= next_lease {
            next_lease = now + lease_every;
            kubelet
                .logged("renewing the node lease", kubelet.renew_lease())
                .await;
        }
        kubelet
            .logged("syncing pods", kubelet.sync_pods(&mut starting))
            .await;
        let next_start = starting.values().min().copied();
        let until = [Some(next_status), Some(next_lease), next_start]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_secs(1))
            .min(Instant::now() + Duration::from_secs(2));
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            () = wake.notified() => {}
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wakes the kubelet at every change of a pod bound to its node.
async fn watch_pods(client: kube::Client, node: String, wake: Arc<Notify>) {
    let pods: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut events = std::pin::pin!(watcher(pods, config).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(_) => wake.notify_one(),
            Err(e) => eprintln!("watching the pods of {node}: {e}"),
        }
    }
}

struct Kubelet {
    client: kube::Client,
    settings: Settings,
    nodes: Api<DynamicObject>,
    leases: Api<DynamicObject>,
    pods: Api<DynamicObject>,
    containers: std::sync::Mutex<Containers>,
}

fn dynamic<K>(client: &kube::Client, namespace: Option<&str>) -> Api<DynamicObject>
where
    K: kube::Resource<DynamicType = ()>,
{
    let resource = ApiResource::erase::<K>(&());
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

fn value_of(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).expect("an object serializes")
}

fn object_of(value: Value) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(value)?)
}

impl Kubelet {
    fn new(client: kube::Client, settings: Settings) -> Self {
        let containers = Containers::load(&settings.containers_file);
        Self {
            nodes: dynamic::<Node>(&client, None),
            leases: dynamic::<Lease>(&client, Some("kube-node-lease")),
            pods: dynamic::<Pod>(&client, None),
            client,
            settings,
            containers: std::sync::Mutex::new(containers),
        }
    }

    fn flags(&self) -> &Flags {
        &self.settings.flags
    }

    fn containers(&self) -> std::sync::MutexGuard<'_, Containers> {
        self.containers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `work` under the request timeout, logging what failed.
    async fn logged(&self, what: &str, work: impl Future<Output = anyhow::Result<()>>) {
        match tokio::time::timeout(self.settings.request_timeout * 2, work).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("{}: {what}: {e:#}", self.flags().node_name),
            Err(_) => eprintln!(
                "{}: {what}: no answer from the API within {:?}",
                self.flags().node_name,
                self.settings.request_timeout * 2
            ),
        }
    }

    /// The Node as the kubelet registers it (`initialNode` in
    /// `pkg/kubelet/kubelet_node_status.go`): the well-known labels, `--node-labels`,
    /// `--register-with-taints` and `--provider-id`.
    fn initial_node(&self) -> Value {
        let flags = self.flags();
        let arch = go_arch();
        let mut labels = json!({
            "kubernetes.io/hostname": flags.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
        });
        for (k, v) in &flags.labels {
            labels[k] = v.clone().into();
        }
        let mut node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": flags.node_name, "labels": labels},
            "spec": {"providerID": flags.provider_id},
        });
        if !flags.taints.is_empty() {
            node["spec"]["taints"] = flags.taints.clone().into();
        }
        node
    }

    /// Registers the node if it is absent (also after the API lost it: the stand-in's API has
    /// no etcd), then posts its status.
    async fn post_status(&self) -> anyhow::Result<()> {
        let name = self.flags().node_name.clone();
        let current = match self.nodes.get_opt(&name).await? {
            Some(node) => node,
            None => {
                let created = self
                    .nodes
                    .create(&PostParams::default(), &object_of(self.initial_node())?)
                    .await
                    .context("registering the node")?;
                println!("registered node {name}");
                created
            }
        };
        let mut node = value_of(&current);
        pod_status::post_node_ready(&mut node);
        self.node_status(&mut node["status"]);
        self.nodes
            .replace_status(&name, &PostParams::default(), &object_of(node)?)
            .await?;
        Ok(())
    }

    /// Addresses, capacity and node info.
    fn node_status(&self, status: &mut Value) {
        let flags = self.flags();
        status["addresses"] = json!([
            {"type": "InternalIP", "address": flags.node_ip},
            {"type": "Hostname", "address": flags.node_name},
        ]);
        let capacity = json!({
            "cpu": std::thread::available_parallelism().map_or(1, |n| n.get()).to_string(),
            "memory": format!("{}Ki", meminfo_kib()),
            "pods": "110",
            "ephemeral-storage": format!("{}Ki", disk_kib()),
            "hugepages-2Mi": "0",
        });
        status["capacity"] = capacity.clone();
        status["allocatable"] = capacity;
        status["daemonEndpoints"] = json!({"kubeletEndpoint": {"Port": 10250}});
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "Linux".into());
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        status["nodeInfo"] = json!({
            "machineID": read("/etc/machine-id"),
            "systemUUID": read("/sys/class/dmi/id/product_uuid"),
            "bootID": read("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": read("/proc/sys/kernel/osrelease"),
            "osImage": os_image,
            "containerRuntimeVersion": "containerd://chaos-standin",
            "kubeletVersion": flags.version,
            "kubeProxyVersion": flags.version,
            "operatingSystem": "linux",
            "architecture": go_arch(),
        });
    }

    /// Renews `kube-node-lease/<node>`, creating it (owned by the Node) if absent.
    async fn renew_lease(&self) -> anyhow::Result<()> {
        let name = self.flags().node_name.clone();
        let now = k8s_openapi::jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
            .to_string();
        if let Some(lease) = self.leases.get_opt(&name).await? {
            let mut lease = value_of(&lease);
            lease["spec"]["renewTime"] = now.into();
            lease["spec"]["holderIdentity"] = name.clone().into();
            lease["spec"]["leaseDurationSeconds"] = self.settings.lease_duration_seconds.into();
            self.leases
                .replace(&name, &PostParams::default(), &object_of(lease)?)
                .await?;
            return Ok(());
        }
        let Some(node) = self.nodes.get_opt(&name).await? else {
            bail!("no Node {name} to own its Lease yet");
        };
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": "kube-node-lease",
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                    "uid": node.metadata.uid}],
            },
            "spec": {"holderIdentity": name,
                     "leaseDurationSeconds": self.settings.lease_duration_seconds,
                     "renewTime": now},
        });
        self.leases
            .create(&PostParams::default(), &object_of(lease)?)
            .await?;
        Ok(())
    }

    /// Brings every pod bound here one step further.
    async fn sync_pods(&self, starting: &mut HashMap<String, Instant>) -> anyhow::Result<()> {
        let node = &self.flags().node_name;
        let list = self
            .pods
            .list(&kube::api::ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await?;
        let pods: Vec<Value> = list.items.iter().map(value_of).collect();
        let uids: Vec<String> = pods.iter().map(|p| uid(p).to_string()).collect();
        {
            // Pods gone from the API: so are their containers.
            let mut containers = self.containers();
            let before = containers.running.len();
            containers.running.retain(|u, _| uids.contains(u));
            if containers.running.len() != before {
                containers.save(&self.settings.containers_file);
            }
        }
        starting.retain(|u, _| uids.contains(u));
        for pod in pods {
            let uid = uid(&pod).to_string();
            if !pod["metadata"]["deletionTimestamp"].is_null() {
                self.forget(&uid);
                starting.remove(&uid);
                self.finalize(&pod).await?;
                continue;
            }
            if matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            ) {
                self.forget(&uid);
                continue;
            }
            let running_ip = self.containers().running.get(&uid).cloned();
            if let Some(ip) = running_ip {
                if !pod_status::is_running_ready(&pod) || pod["status"]["podIP"] != ip.as_str() {
                    self.write_status(pod, |p| pod_status::mark_running(p, &ip))
                        .await?;
                }
                continue;
            }
            match starting.get(&uid) {
                Some(at) if *at <= Instant::now() => {
                    let ip = self.allocate_ip(&uid, &pod);
                    starting.remove(&uid);
                    self.write_status(pod, |p| pod_status::mark_running(p, &ip))
                        .await?;
                }
                Some(_) => {}
                None => {
                    starting.insert(uid, Instant::now() + self.settings.pod_start);
                    let host_ip = self.flags().node_ip.clone();
                    self.write_status(pod, |p| pod_status::mark_starting(p, &host_ip))
                        .await?;
                }
            }
        }
        Ok(())
    }

    fn forget(&self, uid: &str) {
        let mut containers = self.containers();
        if containers.running.remove(uid).is_some() {
            containers.save(&self.settings.containers_file);
        }
    }

    /// Starts the pod's containers: it gets an IP in the node's pod range (10.244.<last octet
    /// of the node IP>.0/24 here, kind's default pod subnet being 10.244.0.0/16).
    fn allocate_ip(&self, uid: &str, pod: &Value) -> String {
        let mut containers = self.containers();
        let ip = match pod["status"]["podIP"].as_str() {
            Some(ip) => ip.to_string(),
            None => {
                containers.next_ip = containers.next_ip.max(1) + 1;
                let octet = self.flags().node_ip.rsplit('.').next().unwrap_or("1");
                format!("10.244.{octet}.{}", containers.next_ip % 254 + 1)
            }
        };
        containers.running.insert(uid.to_string(), ip.clone());
        containers.save(&self.settings.containers_file);
        ip
    }

    async fn write_status(
        &self,
        pod: Value,
        change: impl FnOnce(&mut Value),
    ) -> anyhow::Result<()> {
        let mut new = pod.clone();
        change(&mut new);
        if new == pod {
            return Ok(());
        }
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let api = dynamic::<Pod>(&self.client, Some(ns));
        match api
            .replace_status(name, &PostParams::default(), &object_of(new)?)
            .await
        {
            Ok(_) => Ok(()),
            // Changed meanwhile (or gone): the next sync sees it as it is.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A pod being deleted: its containers are stopped, so it goes for good (grace 0), as the
    /// kubelet's status manager deletes a terminated pod.
    async fn finalize(&self, pod: &Value) -> anyhow::Result<()> {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let api = dynamic::<Pod>(&self.client, Some(ns));
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid(pod).to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}

/// `GOARCH` of this machine, as node labels name it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn meminfo_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn disk_kib() -> u64 {
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a zeroed struct for the kernel to fill.
    let ok = unsafe { libc::statvfs(c"/".as_ptr(), &mut stat) } == 0;
    if ok {
        stat.f_blocks * stat.f_frsize / 1024
    } else {
        0
    }
}

/// The unit's main: the flags and config kubeadm wrote, and clients from `kubelet.conf`.
pub async fn run_unit(paths: &Paths) -> anyhow::Result<()> {
    let settings = Settings::from_files(paths)?;
    let kubeconfig = paths.kubelet_conf();
    let client =
        crate::kubeconfig::client(&kubeconfig, None, Some(settings.request_timeout)).await?;
    let watch_client = crate::kubeconfig::client(&kubeconfig, None, None).await?;
    println!(
        "kubelet {} for node {} (status every {:?}, lease renewed every {}s/4)",
        settings.flags.version,
        settings.flags.node_name,
        settings.status_update_frequency,
        settings.lease_duration_seconds
    );
    run(client, watch_client, settings).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_labels_parse() {
        let labels = parse_node_labels("a=1, b=,c=x/y").unwrap();
        assert_eq!(labels["a"], "1");
        assert_eq!(labels["b"], "");
        assert_eq!(labels["c"], "x/y");
        assert!(parse_node_labels("").unwrap().is_empty());
        assert!(parse_node_labels("novalue").is_err());
    }
}
