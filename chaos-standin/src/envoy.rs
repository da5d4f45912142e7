//! `envoy -c /home/envoy/envoy.yaml`: the HA load balancer, in place of Envoy.
//!
//! kind runs it unprivileged as `bash -c 'mkdir -p /home/envoy && echo … > envoy.yaml … &&
//! while true; do envoy -c /home/envoy/envoy.yaml && break; sleep 1; done'`
//! (`GenerateBootstrapCommand`, `pkg/cluster/internal/loadbalancer/config.go`): a bootstrap
//! naming file-based CDS and LDS, both `resources: []` at first. kind then writes the listener
//! and the cluster of control planes into them (atomically, with `mv`:
//! `pkg/cluster/internal/create/actions/loadbalancer/loadbalancer.go`).
//!
//! This stand-in reads the bootstrap's `cds_config`/`lds_config` paths, polls both files for
//! changes, listens on each listener's address and port, and TCP-proxies every connection to
//! a healthy endpoint of the listener's cluster, round robin, resolving the endpoints' names at
//! each connection (`STRICT_DNS`), within the cluster's `connect_timeout`. Endpoints are
//! health-checked by TCP connect every `interval` (kind asks for an HTTP check of /healthz over
//! TLS; a connect is what the stand-in does), with `unhealthy_threshold` and
//! `healthy_threshold`; as in Envoy, a new endpoint is unhealthy until its first check passes,
//! and when fewer than half are healthy (Envoy's default `healthy_panic_threshold` of 50 %)
//! traffic goes to all of them. Unlike Envoy's `tcp_proxy` (one connect attempt by default), a
//! connection whose endpoint refuses is tried on the others, in turn: during kind's HA creation
//! only the first control plane serves until the others join, and kind's `kubectl` calls through
//! the load balancer do not retry. The admin port is not served.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::config::parse_duration;

/// A listener of `lds.yaml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// `name`.
    pub name: String,
    /// `address.socket_address`, as `host:port`.
    pub address: String,
    /// The `tcp_proxy` filter's `cluster`.
    pub cluster: String,
}

/// A cluster of `cds.yaml`.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// `name`.
    pub name: String,
    /// `connect_timeout`.
    pub connect_timeout: Duration,
    /// The endpoints of `load_assignment`, as (host, port).
    pub endpoints: Vec<(String, u16)>,
    /// The first of `health_checks`, if any.
    pub health_check: Option<HealthCheck>,
}

/// An active health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// `interval`.
    pub interval: Duration,
    /// `timeout`.
    pub timeout: Duration,
    /// `unhealthy_threshold`.
    pub unhealthy_threshold: u32,
    /// `healthy_threshold`.
    pub healthy_threshold: u32,
}

/// The bootstrap's CDS and LDS paths.
pub fn bootstrap_paths(yaml: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let doc: Value = serde_saphyr::from_str(yaml).context("parsing the envoy bootstrap")?;
    let dynamic = &doc["dynamic_resources"];
    let path = |key: &str| -> anyhow::Result<PathBuf> {
        match dynamic[key]["path_config_source"]["path"].as_str() {
            Some(p) => Ok(PathBuf::from(p)),
            None if dynamic[key]["path"].is_string() => Ok(PathBuf::from(
                dynamic[key]["path"].as_str().unwrap_or_default(),
            )),
            None => crate::unsupported(format!("an envoy bootstrap without a file-based {key}")),
        }
    };
    Ok((path("cds_config")?, path("lds_config")?))
}

fn resources(yaml: &str) -> anyhow::Result<Vec<Value>> {
    let doc: Value = serde_saphyr::from_str(yaml).context("parsing an xDS file")?;
    Ok(doc["resources"].as_array().cloned().unwrap_or_default())
}

fn duration(value: &Value, default: Duration) -> anyhow::Result<Duration> {
    match value.as_str() {
        Some(text) => parse_duration(text),
        None => Ok(default),
    }
}

fn number(value: &Value, default: u32) -> u32 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .map_or(default, |n| n as u32)
}

/// Parses `lds.yaml`.
pub fn parse_listeners(yaml: &str) -> anyhow::Result<Vec<Listener>> {
    resources(yaml)?
        .into_iter()
        .map(|l| {
            let socket = &l["address"]["socket_address"];
            let host = socket["address"].as_str().unwrap_or("0.0.0.0");
            let port = number(&socket["port_value"], 0);
            let filters = l["filter_chains"].as_array().into_iter().flatten();
            let cluster = filters
                .flat_map(|c| c["filters"].as_array().into_iter().flatten())
                .find(|f| f["name"] == "envoy.filters.network.tcp_proxy")
                .and_then(|f| f["typed_config"]["cluster"].as_str());
            let Some(cluster) = cluster else {
                return crate::unsupported("an envoy listener without a tcp_proxy filter");
            };
            let address = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            Ok(Listener {
                name: l["name"].as_str().unwrap_or_default().to_string(),
                address,
                cluster: cluster.to_string(),
            })
        })
        .collect()
}

/// Parses `cds.yaml`.
pub fn parse_clusters(yaml: &str) -> anyhow::Result<Vec<Cluster>> {
    resources(yaml)?
        .into_iter()
        .map(|c| {
            let endpoints = c["load_assignment"]["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["lb_endpoints"].as_array().into_iter().flatten())
                .map(|e| {
                    let socket = &e["endpoint"]["address"]["socket_address"];
                    let host = socket["address"].as_str().unwrap_or_default().to_string();
                    (host, number(&socket["port_value"], 0) as u16)
                })
                .collect();
            let health_check = match c["health_checks"].as_array().and_then(|h| h.first()) {
                Some(h) => Some(HealthCheck {
                    interval: duration(&h["interval"], Duration::from_secs(5))?,
                    timeout: duration(&h["timeout"], Duration::from_secs(1))?,
                    unhealthy_threshold: number(&h["unhealthy_threshold"], 1),
                    healthy_threshold: number(&h["healthy_threshold"], 1),
                }),
                None => None,
            };
            Ok(Cluster {
                name: c["name"].as_str().unwrap_or_default().to_string(),
                connect_timeout: duration(&c["connect_timeout"], Duration::from_secs(5))?,
                endpoints,
                health_check,
            })
        })
        .collect()
}

#[derive(Debug, Default)]
struct Health {
    healthy: bool,
    /// Whether a check ran yet.
    checked: bool,
    successes: u32,
    failures: u32,
}

/// One cluster's live state: its config, its endpoints' health, the round-robin cursor.
#[derive(Debug)]
struct ClusterState {
    config: Cluster,
    health: HashMap<(String, u16), Health>,
    next: usize,
}

impl ClusterState {
    /// The endpoints to try for one connection, in order: the next round robin among the
    /// healthy ones (all of them in panic mode or without health checks), then the rest of
    /// that pool, then every other endpoint.
    fn attempts(&mut self) -> Vec<(String, u16)> {
        let Some(first) = self.pick() else {
            return Vec::new();
        };
        let all = &self.config.endpoints;
        let start = all.iter().position(|e| *e == first).unwrap_or(0);
        let healthy = |e: &(String, u16)| self.health.get(e).is_some_and(|h| h.healthy);
        let rotated = all[start..].iter().chain(&all[..start]);
        let mut order: Vec<(String, u16)> = vec![first.clone()];
        order.extend(
            rotated
                .clone()
                .filter(|e| **e != first && healthy(e))
                .cloned(),
        );
        order.extend(rotated.filter(|e| **e != first && !healthy(e)).cloned());
        order
    }

    /// The next endpoint round robin among the healthy ones (all of them in panic mode or
    /// without health checks).
    fn pick(&mut self) -> Option<(String, u16)> {
        let all = &self.config.endpoints;
        if all.is_empty() {
            return None;
        }
        let healthy: Vec<&(String, u16)> = all
            .iter()
            .filter(|e| self.health.get(*e).is_some_and(|h| h.healthy))
            .collect();
        let panic = self.config.health_check.is_none() || healthy.len() * 2 < all.len();
        let pool: Vec<&(String, u16)> = if panic { all.iter().collect() } else { healthy };
        let chosen = pool[self.next % pool.len()].clone();
        self.next = self.next.wrapping_add(1);
        Some(chosen)
    }
}

type Clusters = Arc<Mutex<HashMap<String, ClusterState>>>;

/// The load balancer: what it listens on, checks and forwards to.
pub struct Proxy {
    clusters: Clusters,
    listeners: HashMap<String, (Listener, JoinHandle<()>)>,
    checkers: HashMap<String, (Cluster, JoinHandle<()>)>,
}

impl Default for Proxy {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for (_, task) in self.listeners.values() {
            task.abort();
        }
        for (_, task) in self.checkers.values() {
            task.abort();
        }
    }
}

impl Proxy {
    /// A proxy with nothing configured.
    pub fn new() -> Self {
        Self {
            clusters: Arc::default(),
            listeners: HashMap::new(),
            checkers: HashMap::new(),
        }
    }

    /// Applies a configuration: new or changed listeners and clusters start, gone ones stop.
    pub async fn apply(
        &mut self,
        listeners: Vec<Listener>,
        clusters: Vec<Cluster>,
    ) -> anyhow::Result<()> {
        {
            let mut states = lock(&self.clusters);
            states.retain(|name, _| clusters.iter().any(|c| &c.name == name));
            for cluster in &clusters {
                let state = states
                    .entry(cluster.name.clone())
                    .or_insert_with(|| ClusterState {
                        config: cluster.clone(),
                        health: HashMap::new(),
                        next: 0,
                    });
                state.config = cluster.clone();
                state.health.retain(|e, _| cluster.endpoints.contains(e));
                for endpoint in &cluster.endpoints {
                    state.health.entry(endpoint.clone()).or_default();
                }
            }
        }
        self.checkers.retain(|name, (config, task)| {
            let keep = clusters.iter().any(|c| &c.name == name && c == config);
            if !keep {
                task.abort();
            }
            keep
        });
        for cluster in clusters {
            if !self.checkers.contains_key(&cluster.name) {
                let task = tokio::spawn(check_health(self.clusters.clone(), cluster.clone()));
                self.checkers.insert(cluster.name.clone(), (cluster, task));
            }
        }
        self.listeners.retain(|name, (config, task)| {
            let keep = listeners.iter().any(|l| &l.name == name && l == config);
            if !keep {
                task.abort();
            }
            keep
        });
        for listener in listeners {
            if self.listeners.contains_key(&listener.name) {
                continue;
            }
            let socket = TcpListener::bind(&listener.address)
                .await
                .with_context(|| {
                    format!("listening on {} for {}", listener.address, listener.name)
                })?;
            println!(
                "listener {} on {} -> cluster {}",
                listener.name, listener.address, listener.cluster
            );
            let task = tokio::spawn(serve(
                socket,
                listener.cluster.clone(),
                self.clusters.clone(),
            ));
            self.listeners
                .insert(listener.name.clone(), (listener, task));
        }
        Ok(())
    }
}

fn lock(clusters: &Clusters) -> std::sync::MutexGuard<'_, HashMap<String, ClusterState>> {
    clusters
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn connect(host: &str, port: u16, timeout: Duration) -> anyhow::Result<TcpStream> {
    match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => bail!("no connection within {timeout:?}"),
    }
}

async fn serve(listener: TcpListener, cluster: String, clusters: Clusters) {
    loop {
        let Ok((mut inbound, peer)) = listener.accept().await else {
            continue;
        };
        let picked = lock(&clusters)
            .get_mut(&cluster)
            .map(|state| (state.attempts(), state.config.connect_timeout));
        let Some((attempts, timeout)) = picked.filter(|(a, _)| !a.is_empty()) else {
            eprintln!("{peer}: cluster {cluster} has no endpoint; closing");
            continue;
        };
        let cluster = cluster.clone();
        tokio::spawn(async move {
            for (host, port) in attempts {
                match connect(&host, port, timeout).await {
                    Ok(mut outbound) => {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                    Err(e) => eprintln!("{peer}: connecting to {host}:{port}: {e:#}"),
                }
            }
            eprintln!("{peer}: no endpoint of {cluster} accepted the connection; closing");
        });
    }
}

async fn check_health(clusters: Clusters, cluster: Cluster) {
    let Some(check) = cluster.health_check.clone() else {
        return;
    };
    loop {
        for (host, port) in &cluster.endpoints {
            let result = connect(host, *port, check.timeout).await;
            let mut states = lock(&clusters);
            let Some(state) = states.get_mut(&cluster.name) else {
                return;
            };
            let Some(health) = state.health.get_mut(&(host.clone(), *port)) else {
                continue;
            };
            let was = health.healthy;
            match &result {
                Ok(_) => {
                    health.successes += 1;
                    health.failures = 0;
                    // The first check decides at once, as Envoy does for a new host.
                    if !health.checked || health.successes >= check.healthy_threshold {
                        health.healthy = true;
                    }
                }
                Err(_) => {
                    health.failures += 1;
                    health.successes = 0;
                    if !health.checked || health.failures >= check.unhealthy_threshold {
                        health.healthy = false;
                    }
                }
            }
            let first = !health.checked;
            health.checked = true;
            if first || was != health.healthy {
                match (&result, health.healthy) {
                    (_, true) => println!("cluster {}: {host}:{port} healthy", cluster.name),
                    (Err(e), false) => {
                        println!("cluster {}: {host}:{port} unhealthy: {e:#}", cluster.name)
                    }
                    (Ok(_), false) => println!("cluster {}: {host}:{port} unhealthy", cluster.name),
                }
            }
        }
        tokio::time::sleep(check.interval).await;
    }
}

/// Reads the xDS files (None when one does not parse yet).
fn read_xds(cds: &Path, lds: &Path) -> anyhow::Result<(String, String)> {
    Ok((
        std::fs::read_to_string(cds).with_context(|| format!("reading {}", cds.display()))?,
        std::fs::read_to_string(lds).with_context(|| format!("reading {}", lds.display()))?,
    ))
}

/// Parses `envoy` arguments: `-c FILE` (or `--config-path`); `-l`/`--log-level` is accepted.
pub fn parse_args(args: &[String]) -> anyhow::Result<PathBuf> {
    let mut config = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" | "--config-path" => config = args.next().map(PathBuf::from),
            "-l" | "--log-level" => {
                args.next();
            }
            other => return crate::unsupported(format!("the envoy flag {other}")),
        }
    }
    config.context("envoy needs -c <bootstrap>")
}

/// The role's main: follows the bootstrap's xDS files until killed.
pub async fn run(bootstrap: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(bootstrap)
        .with_context(|| format!("reading {}", bootstrap.display()))?;
    let (cds, lds) = bootstrap_paths(&text)?;
    println!(
        "chaos-standin envoy: following {} and {}",
        lds.display(),
        cds.display()
    );
    let mut proxy = Proxy::new();
    let mut seen = (String::new(), String::new());
    loop {
        match read_xds(&cds, &lds) {
            Ok(files) if files != seen => {
                match (parse_clusters(&files.0), parse_listeners(&files.1)) {
                    (Ok(clusters), Ok(listeners)) => {
                        proxy.apply(listeners, clusters).await?;
                        seen = files;
                    }
                    (Err(e), _) | (_, Err(e)) => eprintln!("xDS files not usable yet: {e:#}"),
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kind's ProxyCDSConfigTemplate, for two control planes.
    pub(crate) const CDS: &str = r#"
resources:
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: kube_apiservers
  connect_timeout: 0.25s
  type: STRICT_DNS
  lb_policy: ROUND_ROBIN
  dns_lookup_family: V4_PREFERRED
  health_checks:
  - timeout: 3s
    interval: 2s
    unhealthy_threshold: 2
    healthy_threshold: 1
    initial_jitter: 0s
    no_traffic_interval: 3s
    always_log_health_check_failures: true
    always_log_health_check_success: true
    event_log_path: /dev/stdout
    http_health_check:
      path: /healthz
    transport_socket_match_criteria:
      tls_mode: "true"
  load_assignment:
    cluster_name: kube_apiservers
    endpoints:
    - lb_endpoints:
      - endpoint:
          address:
            socket_address:
              address: ha-control-plane
              port_value: 6443
      - endpoint:
          address:
            socket_address:
              address: ha-control-plane2
              port_value: 6443
"#;

    const LDS: &str = r#"
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: listener_apiserver
  address:
    socket_address:
      address: "0.0.0.0"
      port_value: 6443
  filter_chains:
  - filters:
    - name: envoy.filters.network.tcp_proxy
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
        stat_prefix: ingress_tcp
        cluster: kube_apiservers
"#;

    const BOOTSTRAP: &str = r#"
node:
  cluster: ha
  id: ha-external-load-balancer

dynamic_resources:
  cds_config:
    resource_api_version: V3
    path_config_source:
      path: /home/envoy/cds.yaml
  lds_config:
    resource_api_version: V3
    path_config_source:
      path: /home/envoy/lds.yaml

admin:
  access_log_path: /dev/stdout
  address:
    socket_address:
      address: 0.0.0.0
      port_value: 10000
"#;

    #[test]
    fn kinds_bootstrap_names_the_xds_files() {
        let (cds, lds) = bootstrap_paths(BOOTSTRAP).unwrap();
        assert_eq!(cds, Path::new("/home/envoy/cds.yaml"));
        assert_eq!(lds, Path::new("/home/envoy/lds.yaml"));
    }

    #[test]
    fn kinds_listener_and_cluster() {
        let listeners = parse_listeners(LDS).unwrap();
        assert_eq!(
            listeners,
            [Listener {
                name: "listener_apiserver".into(),
                address: "0.0.0.0:6443".into(),
                cluster: "kube_apiservers".into(),
            }]
        );
        let clusters = parse_clusters(CDS).unwrap();
        assert_eq!(clusters.len(), 1);
        let c = &clusters[0];
        assert_eq!(c.connect_timeout, Duration::from_millis(250));
        assert_eq!(
            c.endpoints,
            [
                ("ha-control-plane".into(), 6443),
                ("ha-control-plane2".into(), 6443)
            ]
        );
        assert_eq!(
            c.health_check,
            Some(HealthCheck {
                interval: Duration::from_secs(2),
                timeout: Duration::from_secs(3),
                unhealthy_threshold: 2,
                healthy_threshold: 1,
            })
        );
        assert!(parse_listeners("resources: []").unwrap().is_empty());
        assert!(parse_clusters("resources: []").unwrap().is_empty());
    }

    #[test]
    fn round_robin_over_healthy_endpoints_with_a_panic_threshold() {
        let mut cluster = parse_clusters(CDS).unwrap().remove(0);
        cluster.endpoints.push(("third".into(), 6443));
        let mut state = ClusterState {
            config: cluster.clone(),
            health: HashMap::new(),
            next: 0,
        };
        for e in &cluster.endpoints {
            state.health.insert(
                e.clone(),
                Health {
                    healthy: e.0 != "third",
                    ..Health::default()
                },
            );
        }
        let picks: Vec<String> = (0..4).map(|_| state.pick().unwrap().0).collect();
        assert_eq!(
            picks,
            [
                "ha-control-plane",
                "ha-control-plane2",
                "ha-control-plane",
                "ha-control-plane2"
            ]
        );
        // One of three healthy: below 50 %, so all take traffic.
        state
            .health
            .get_mut(&("ha-control-plane2".to_string(), 6443))
            .unwrap()
            .healthy = false;
        let picks: std::collections::HashSet<String> =
            (0..3).map(|_| state.pick().unwrap().0).collect();
        assert_eq!(picks.len(), 3);
    }

    #[test]
    fn a_connection_tries_healthy_endpoints_first_then_the_rest_each_once() {
        let mut cluster = parse_clusters(CDS).unwrap().remove(0);
        cluster.endpoints.push(("third".into(), 6443));
        let mut state = ClusterState {
            config: cluster.clone(),
            health: HashMap::new(),
            next: 0,
        };
        for e in &cluster.endpoints {
            let healthy = e.0 != "ha-control-plane2";
            state.health.insert(
                e.clone(),
                Health {
                    healthy,
                    ..Health::default()
                },
            );
        }
        let names =
            |order: Vec<(String, u16)>| -> Vec<String> { order.into_iter().map(|e| e.0).collect() };
        assert_eq!(
            names(state.attempts()),
            ["ha-control-plane", "third", "ha-control-plane2"]
        );
        assert_eq!(
            names(state.attempts()),
            ["third", "ha-control-plane", "ha-control-plane2"]
        );
    }
}
