//! The resource table: which plurals exist, their Kind, scope and whether they have a status
//! subresource. Built-in kinds are fixed; CRDs add theirs when created; objects posted to an
//! unknown group are learned as generic resources.

use serde_json::Value;

/// Where the objects of one resource are kept: group and plural, not version, as in etcd.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ResourceKey {
    pub group: String,
    pub plural: String,
}

impl ResourceKey {
    pub fn new(group: &str, plural: &str) -> Self {
        Self {
            group: group.to_string(),
            plural: plural.to_string(),
        }
    }

    /// `pods` or `deployments.apps`, as error messages spell it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    BuiltIn,
    Crd,
    /// Learned from an object posted to a path no table or CRD knows.
    Generic,
}

#[derive(Clone, Debug)]
pub(crate) struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    /// Empty for a generic resource not created yet.
    pub kind: String,
    pub namespaced: bool,
    /// Has a `/status` subresource, so writes to it and to the main resource are split.
    pub has_status: bool,
    pub short_names: Vec<String>,
    pub origin: Origin,
}

impl ResourceInfo {
    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(&self.group, &self.plural)
    }

    pub fn api_version(&self) -> String {
        join_api_version(&self.group, &self.version)
    }

    pub fn generic(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            singular: kind.to_lowercase(),
            kind: kind.to_string(),
            namespaced,
            has_status: false,
            short_names: Vec::new(),
            origin: Origin::Generic,
        }
    }

    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.group == group && self.plural == plural
    }
}

pub(crate) fn join_api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

pub(crate) const NAMESPACES: (&str, &str) = ("", "namespaces");
pub(crate) const CRDS: (&str, &str) = ("apiextensions.k8s.io", "customresourcedefinitions");

/// (group, version, plural, kind, namespaced, status subresource, short names)
type BuiltIn = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    &'static [&'static str],
);

#[rustfmt::skip]
const BUILT_IN: &[BuiltIn] = &[
    ("", "v1", "namespaces", "Namespace", false, true, &["ns"]),
    ("", "v1", "nodes", "Node", false, true, &["no"]),
    ("", "v1", "pods", "Pod", true, true, &["po"]),
    ("", "v1", "services", "Service", true, true, &["svc"]),
    ("", "v1", "configmaps", "ConfigMap", true, false, &["cm"]),
    ("", "v1", "secrets", "Secret", true, false, &[]),
    ("", "v1", "serviceaccounts", "ServiceAccount", true, false, &["sa"]),
    ("", "v1", "events", "Event", true, false, &["ev"]),
    ("", "v1", "endpoints", "Endpoints", true, false, &["ep"]),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, true, &["pvc"]),
    ("", "v1", "persistentvolumes", "PersistentVolume", false, true, &["pv"]),
    ("apps", "v1", "deployments", "Deployment", true, true, &["deploy"]),
    ("apps", "v1", "replicasets", "ReplicaSet", true, true, &["rs"]),
    ("apps", "v1", "statefulsets", "StatefulSet", true, true, &["sts"]),
    ("apps", "v1", "daemonsets", "DaemonSet", true, true, &["ds"]),
    ("batch", "v1", "jobs", "Job", true, true, &[]),
    ("batch", "v1", "cronjobs", "CronJob", true, true, &["cj"]),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, true, &["pdb"]),
    ("coordination.k8s.io", "v1", "leases", "Lease", true, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", true, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, false, &[]),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false, true, &["crd", "crds"]),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, false, &["netpol"]),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", true, true, &["ing"]),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true, false, &[]),
    ("events.k8s.io", "v1", "events", "Event", true, false, &["ev"]),
];

pub(crate) struct Registry {
    entries: Vec<ResourceInfo>,
}

impl Registry {
    pub fn built_in() -> Self {
        let entries = BUILT_IN
            .iter()
            .map(
                |&(group, version, plural, kind, namespaced, has_status, short)| ResourceInfo {
                    group: group.into(),
                    version: version.into(),
                    plural: plural.into(),
                    singular: kind.to_lowercase(),
                    kind: kind.into(),
                    namespaced,
                    has_status,
                    short_names: short.iter().map(|s| s.to_string()).collect(),
                    origin: Origin::BuiltIn,
                },
            )
            .collect();
        Self { entries }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.entries
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceInfo> {
        let (group, version) = split_api_version(api_version);
        self.entries
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// Groups that only serve their fixed table: unknown plurals there are 404, as for real.
    pub fn is_built_in_group(&self, group: &str) -> bool {
        self.entries
            .iter()
            .any(|r| r.origin == Origin::BuiltIn && r.group == group)
    }

    /// Adds a resource, replacing the entry for the same group, version and plural.
    pub fn register(&mut self, info: ResourceInfo) {
        match self
            .entries
            .iter_mut()
            .find(|r| r.group == info.group && r.version == info.version && r.plural == info.plural)
        {
            Some(existing) => *existing = info,
            None => self.entries.push(info),
        }
    }

    /// Replaces whatever a CRD for `key` registered before with `infos`.
    pub fn set_crd(&mut self, key: &ResourceKey, infos: Vec<ResourceInfo>) {
        self.entries
            .retain(|r| !(r.origin == Origin::Crd && r.key() == *key));
        for info in infos {
            self.register(info);
        }
    }

    /// (group, versions) in first-registered order, core group excluded.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.entries.iter().filter(|r| !r.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) if !versions.contains(&r.version) => {
                    versions.push(r.version.clone());
                }
                Some(_) => {}
                None => groups.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        groups
    }

    pub fn resources_in<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceInfo> + 'a {
        self.entries
            .iter()
            .filter(move |r| r.group == group && r.version == version)
    }
}

/// What a CRD object declares: one entry per served version.
pub(crate) fn crd_resources(crd: &Value) -> (ResourceKey, Vec<ResourceInfo>) {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let singular = names["singular"]
        .as_str()
        .map_or_else(|| kind.to_lowercase(), str::to_string);
    let short_names: Vec<String> = names["shortNames"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let infos = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .filter_map(|v| {
            Some(ResourceInfo {
                group: group.to_string(),
                version: v["name"].as_str()?.to_string(),
                plural: plural.to_string(),
                singular: singular.clone(),
                kind: kind.to_string(),
                namespaced,
                has_status: v["subresources"]["status"].is_object(),
                short_names: short_names.clone(),
                origin: Origin::Crd,
            })
        })
        .collect();
    (ResourceKey::new(group, plural), infos)
}

/// The plural a RESTMapper would guess for a Kind nobody declared.
pub(crate) fn guess_plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.ends_with('s')
        || lower.ends_with('x')
        || lower.ends_with('z')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}
