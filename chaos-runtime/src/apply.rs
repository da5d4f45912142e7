//! Applying manifests as `kubectl apply --server-side` does: multi-document YAML, a file, or
//! typed objects, each document into the given namespace unless it names its own.

use std::fmt::Debug;
use std::path::Path;

use anyhow::{Context, bail};
use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, Scope};
use kube::{Api, Client};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "chaos-runtime";

/// Applies every document of `yaml` in order (empty documents are skipped) and returns the
/// objects as the API server stored them. Namespaced objects without a namespace go to
/// `namespace`. Stops at the first document that fails, saying which one and why.
pub async fn apply_yaml(
    client: &Client,
    namespace: &str,
    yaml: &str,
) -> anyhow::Result<Vec<DynamicObject>> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .map_err(|err| anyhow::anyhow!("the manifest is not valid YAML: {err}"))?;
    let mut applied = Vec::new();
    for (index, document) in documents
        .into_iter()
        .enumerate()
        .filter(|(_, d)| !d.is_null())
    {
        let object = apply_value(client, namespace, document)
            .await
            .with_context(|| format!("document {} of the manifest", index + 1))?;
        applied.push(object);
    }
    Ok(applied)
}

/// [`apply_yaml`] on the contents of a file.
pub async fn apply_file(
    client: &Client,
    namespace: &str,
    path: &Path,
) -> anyhow::Result<Vec<DynamicObject>> {
    let yaml =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    apply_yaml(client, namespace, &yaml)
        .await
        .with_context(|| format!("applying {}", path.display()))
}

/// Applies a typed object (a `Deployment`, a `Service`, ...) and returns it as stored.
pub async fn apply_object<K>(client: &Client, namespace: &str, object: &K) -> anyhow::Result<K>
where
    K: Serialize + DeserializeOwned + Debug,
{
    let value = serde_json::to_value(object).context("serializing the object")?;
    let applied = apply_value(client, namespace, value).await?;
    serde_json::from_value(serde_json::to_value(applied)?)
        .context("reading back the applied object")
}

async fn apply_value(
    client: &Client,
    namespace: &str,
    mut document: Value,
) -> anyhow::Result<DynamicObject> {
    let text = |pointer: &str| {
        document
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (Some(api_version), Some(kind)) = (text("/apiVersion"), text("/kind")) else {
        bail!("it has no apiVersion and kind; every document must say what it is");
    };
    let Some(name) = text("/metadata/name") else {
        bail!(
            "{api_version} {kind} has no metadata.name; server-side apply needs one (generateName cannot be applied)"
        );
    };
    let what = format!("{api_version} {kind} {name:?}");
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    let (resource, capabilities) = discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("the cluster does not serve {api_version} {kind}"))?;
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Namespaced => {
            let namespace = text("/metadata/namespace").unwrap_or_else(|| namespace.to_owned());
            document["metadata"]["namespace"] = Value::String(namespace.clone());
            Api::namespaced_with(client.clone(), &namespace, &resource)
        }
        Scope::Cluster => {
            if let Some(metadata) = document["metadata"].as_object_mut() {
                metadata.remove("namespace");
            }
            Api::all_with(client.clone(), &resource)
        }
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(&document))
        .await
        .with_context(|| format!("applying {what}"))
}
