//! `kubectl`, for exactly what kind runs on a node:
//!
//! - `taint nodes --all KEY[:EFFECT]-` and `label nodes --all KEY-`
//!   (`pkg/cluster/internal/create/actions/kubeadminit/init.go`);
//! - `create -f -` (`installcni/cni.go`) and `apply -f -` (`installstorage/storage.go`), with
//!   multi-document YAML on stdin, through discovery and the dynamic API;
//! - `get nodes --selector=… -o=jsonpath='{.items..status.conditions[-1:].status}'`
//!   (`waitforready/waitforready.go`, `kind create cluster --wait`).
//!
//! Flags may come before or after the verb. `apply` is server-side here (field manager
//! `kubectl`), where kubectl's default is client-side: the objects come out the same.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};

use crate::paths::Paths;

/// A parsed command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// `--kubeconfig`.
    pub kubeconfig: Option<String>,
    /// The verb and its positional arguments.
    pub args: Vec<String>,
    /// `--all`.
    pub all: bool,
    /// `-f`/`--filename`.
    pub filename: Option<String>,
    /// `-l`/`--selector`.
    pub selector: Option<String>,
    /// `-o`/`--output`.
    pub output: Option<String>,
}

/// Parses kubectl's arguments (flags anywhere, `--flag=value` or `--flag value`).
pub fn parse(args: &[String]) -> anyhow::Result<Command> {
    let mut command = Command::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if !arg.starts_with('-') || arg == "-" {
            command.args.push(arg.clone());
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let mut value = || -> anyhow::Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value")),
            }
        };
        match flag {
            "--kubeconfig" => command.kubeconfig = Some(value()?),
            "--all" => command.all = true,
            "-f" | "--filename" => command.filename = Some(value()?),
            "-l" | "--selector" => command.selector = Some(value()?),
            "-o" | "--output" => command.output = Some(value()?),
            other => return crate::unsupported(format!("the kubectl flag {other}")),
        }
    }
    Ok(command)
}

/// What one of kind's node-wide edits does to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEdit {
    /// `KEY[:EFFECT]-`: remove the taint(s).
    RemoveTaint {
        /// The key.
        key: String,
        /// The effect, None for all.
        effect: Option<String>,
    },
    /// `KEY-`: remove the label.
    RemoveLabel(String),
}

fn parse_edits(verb: &str, specs: &[String]) -> anyhow::Result<Vec<NodeEdit>> {
    if specs.is_empty() {
        bail!("kubectl {verb} nodes needs at least one {verb}");
    }
    specs
        .iter()
        .map(|spec| {
            let Some(spec) = spec.strip_suffix('-') else {
                return crate::unsupported(format!(
                    "adding a {verb} ({spec}): kind only removes them"
                ));
            };
            Ok(match verb {
                "taint" => match spec.split_once(':') {
                    Some((key, effect)) => NodeEdit::RemoveTaint {
                        key: key.into(),
                        effect: Some(effect.into()),
                    },
                    None => NodeEdit::RemoveTaint {
                        key: spec.into(),
                        effect: None,
                    },
                },
                _ => NodeEdit::RemoveLabel(spec.into()),
            })
        })
        .collect()
}

/// Runs kubectl; what it prints on stdout is returned.
pub async fn run(paths: &Paths, command: &Command, stdin: &mut dyn Read) -> anyhow::Result<String> {
    let kubeconfig = match &command.kubeconfig {
        Some(path) => paths.at(path),
        None => match std::env::var_os("KUBECONFIG") {
            Some(path) => path.into(),
            None => paths.admin_conf(),
        },
    };
    let client =
        || crate::kubeconfig::client(&kubeconfig, None, Some(std::time::Duration::from_secs(10)));
    let args: Vec<&str> = command.args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [
            verb @ ("taint" | "label"),
            "nodes" | "node" | "no",
            rest @ ..,
        ] => {
            let specs: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            let (names, specs): (Vec<String>, Vec<String>) = if command.all {
                (Vec::new(), specs)
            } else {
                let mut it = specs.into_iter();
                (it.next().into_iter().collect(), it.collect())
            };
            if names.is_empty() && !command.all {
                bail!("kubectl {verb} nodes needs a node name or --all");
            }
            let edits = parse_edits(verb, &specs)?;
            edit_nodes(&client().await?, &names, &edits).await
        }
        [verb @ ("create" | "apply")] => {
            if command.filename.as_deref() != Some("-") {
                return crate::unsupported(format!("kubectl {verb} other than -f -"));
            }
            let mut text = String::new();
            stdin.read_to_string(&mut text).context("reading stdin")?;
            create_or_apply(&client().await?, verb, &text).await
        }
        ["get", "nodes" | "node" | "no"] => get_nodes(&client().await?, command).await,
        _ => crate::unsupported(format!("kubectl {}", command.args.join(" "))),
    }
}

async fn edit_nodes(
    client: &kube::Client,
    names: &[String],
    edits: &[NodeEdit],
) -> anyhow::Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let targets: Vec<String> = if names.is_empty() {
        nodes
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect()
    } else {
        names.to_vec()
    };
    let mut out = String::new();
    for name in targets {
        let node = serde_json::to_value(nodes.get(&name).await?)?;
        let mut taints: Vec<Value> = node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut labels = BTreeMap::new();
        let mut changed = false;
        for edit in edits {
            match edit {
                NodeEdit::RemoveTaint { key, effect } => {
                    let before = taints.len();
                    taints.retain(|t| {
                        t["key"] != key.as_str()
                            || effect.as_ref().is_some_and(|e| t["effect"] != e.as_str())
                    });
                    changed |= taints.len() != before;
                }
                NodeEdit::RemoveLabel(key) => {
                    if !node["metadata"]["labels"][key].is_null() {
                        labels.insert(key.clone(), Value::Null);
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            // kubectl fails when a taint to remove is not there; with --all it only says so.
            out.push_str(&format!("node/{name} not modified\n"));
            continue;
        }
        let patch = json!({"metadata": {"labels": labels}, "spec": {"taints": taints}});
        nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        let what = if matches!(edits[0], NodeEdit::RemoveLabel(_)) {
            "unlabeled"
        } else {
            "untainted"
        };
        out.push_str(&format!("node/{name} {what}\n"));
    }
    Ok(out)
}

async fn create_or_apply(client: &kube::Client, verb: &str, text: &str) -> anyhow::Result<String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).context("parsing the manifests")?;
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = String::new();
    for doc in docs.into_iter().filter(|d| d.is_object()) {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if kind == "List" {
            return crate::unsupported("kubectl create/apply of a List");
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.clone()),
        };
        let gvk = kube::api::GroupVersionKind::gvk(&group, &version, &kind);
        let Some((resource, caps)) = discovery.resolve_gvk(&gvk) else {
            bail!(
                "resource mapping not found for name: {name:?} kind: {kind:?} apiVersion: {api_version:?}: the stand-in's API does not serve it"
            );
        };
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                let ns = doc["metadata"]["namespace"].as_str().unwrap_or("default");
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let object: DynamicObject = serde_json::from_value(doc.clone())?;
        let lower = kind.to_lowercase();
        let group_suffix = if group.is_empty() {
            String::new()
        } else {
            format!(".{group}")
        };
        if verb == "create" {
            api.create(&PostParams::default(), &object).await?;
            out.push_str(&format!("{lower}{group_suffix}/{name} created\n"));
        } else {
            let existed = api.get_opt(&name).await?.is_some();
            let params = PatchParams::apply("kubectl").force();
            api.patch(&name, &params, &Patch::Apply(&doc)).await?;
            let what = if existed { "configured" } else { "created" };
            out.push_str(&format!("{lower}{group_suffix}/{name} {what}\n"));
        }
    }
    Ok(out)
}

/// The one jsonpath kind asks for: each node's last condition's status, space-separated,
/// wrapped in the literal quotes kind passes along.
const KIND_JSONPATH: &str = "{.items..status.conditions[-1:].status}";

async fn get_nodes(client: &kube::Client, command: &Command) -> anyhow::Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut params = ListParams::default();
    if let Some(selector) = &command.selector {
        params = params.labels(selector);
    }
    let list = nodes.list(&params).await?;
    let output = command.output.as_deref().unwrap_or_default();
    let jsonpath = output.strip_prefix("jsonpath=");
    match jsonpath {
        Some(path) if path.trim_matches('\'') == KIND_JSONPATH => {
            let statuses: Vec<String> = list
                .items
                .iter()
                .filter_map(|n| {
                    let conditions = n.status.as_ref()?.conditions.as_ref()?;
                    Some(conditions.last()?.status.clone())
                })
                .collect();
            let quote = if path.starts_with('\'') { "'" } else { "" };
            Ok(format!("{quote}{}{quote}", statuses.join(" ")))
        }
        Some(path) => crate::unsupported(format!("the jsonpath {path}")),
        None if output.is_empty() => {
            let mut out = String::from("NAME STATUS VERSION\n");
            for node in list.items {
                let status = node.status.unwrap_or_default();
                let ready = status
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "Ready")
                    .map_or("Unknown".to_string(), |c| {
                        if c.status == "True" {
                            "Ready".into()
                        } else {
                            "NotReady".into()
                        }
                    });
                let version = status
                    .node_info
                    .map(|i| i.kubelet_version)
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{} {ready} {version}\n",
                    node.metadata.name.unwrap_or_default()
                ));
            }
            Ok(out)
        }
        None => crate::unsupported(format!("kubectl get -o {output}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kinds_taint_and_label_lines() {
        let c = parse(&args(&[
            "--kubeconfig=/etc/kubernetes/admin.conf",
            "taint",
            "nodes",
            "--all",
            "node-role.kubernetes.io/control-plane-",
        ]))
        .unwrap();
        assert_eq!(c.kubeconfig.as_deref(), Some("/etc/kubernetes/admin.conf"));
        assert!(c.all);
        assert_eq!(
            c.args,
            ["taint", "nodes", "node-role.kubernetes.io/control-plane-"]
        );
        let edits = parse_edits("taint", &c.args[2..]).unwrap();
        assert_eq!(
            edits,
            [NodeEdit::RemoveTaint {
                key: "node-role.kubernetes.io/control-plane".into(),
                effect: None
            }]
        );
        let edits = parse_edits("taint", &args(&["k:NoSchedule-"])).unwrap();
        assert_eq!(
            edits,
            [NodeEdit::RemoveTaint {
                key: "k".into(),
                effect: Some("NoSchedule".into())
            }]
        );
        let edits = parse_edits(
            "label",
            &args(&["node.kubernetes.io/exclude-from-external-load-balancers-"]),
        )
        .unwrap();
        assert_eq!(
            edits,
            [NodeEdit::RemoveLabel(
                "node.kubernetes.io/exclude-from-external-load-balancers".into()
            )]
        );
        assert!(
            parse_edits("taint", &args(&["k=v:NoSchedule"])).is_err(),
            "adding is not supported"
        );
    }

    #[test]
    fn flags_before_or_after_the_verb() {
        let a = parse(&args(&[
            "create",
            "--kubeconfig=/etc/kubernetes/admin.conf",
            "-f",
            "-",
        ]))
        .unwrap();
        let b = parse(&args(&[
            "--kubeconfig",
            "/etc/kubernetes/admin.conf",
            "apply",
            "-f",
            "-",
        ]))
        .unwrap();
        assert_eq!(a.filename.as_deref(), Some("-"));
        assert_eq!(b.filename.as_deref(), Some("-"));
        assert_eq!(a.args, ["create"]);
        assert_eq!(b.args, ["apply"]);
        let g = parse(&args(&[
            "--kubeconfig=/etc/kubernetes/admin.conf",
            "get",
            "nodes",
            "--selector=node-role.kubernetes.io/control-plane",
            "-o=jsonpath='{.items..status.conditions[-1:].status}'",
        ]))
        .unwrap();
        assert_eq!(
            g.selector.as_deref(),
            Some("node-role.kubernetes.io/control-plane")
        );
        assert_eq!(
            g.output.as_deref(),
            Some("jsonpath='{.items..status.conditions[-1:].status}'")
        );
        let err = parse(&args(&["get", "pods", "-w"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not support the kubectl flag -w"),
            "{err}"
        );
    }
}
