//! Applying manifests as `kubectl apply --server-side` does: multi-document YAML, a file, or
//! typed objects, each document into the given namespace unless it names its own.

use std::cell::Cell;
use std::fmt::Debug;
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, bail};
use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, Scope};
use kube::{Api, Client};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use serde_saphyr::Error;
use serde_saphyr::budget::{BudgetBreach, BudgetReport};

/// The field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "chaos-runtime";

/// The most YAML documents one manifest may hold (empty ones count).
///
/// serde-saphyr caps a stream at 1,024 documents by default (`Budget::max_documents`, "doc
/// separator storms"), a guard against hostile input. A manifest here is the test author's
/// own, and `kubectl apply -f` sets no such cap, so the cap is raised; it stays finite
/// because every document is one API request made in turn (10,000 take a while on kind),
/// and because serde-saphyr's other budgets (250,000 nodes, 1,000,000 events) count the
/// whole stream and stay as they are.
const MAX_DOCUMENTS: usize = 10_000;

/// Applies every document of `yaml` in order (empty documents are skipped) and returns the
/// objects as the API server stored them. Namespaced objects without a namespace go to
/// `namespace`. Stops at the first document that fails, saying which one and why. A manifest
/// of more than 10,000 documents is refused before anything is applied, saying so.
pub async fn apply_yaml(
    client: &Client,
    namespace: &str,
    yaml: &str,
) -> anyhow::Result<Vec<DynamicObject>> {
    let documents = parse_manifest(yaml)?;
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

/// Every document of a manifest, or one line saying why not: a budget of the YAML reader
/// exceeded is named as such (with what to do), not reported as invalid YAML.
fn parse_manifest(yaml: &str) -> anyhow::Result<Vec<Value>> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_documents: MAX_DOCUMENTS },
    };
    let err = match serde_saphyr::from_multiple_with_options(yaml, options) {
        Ok(documents) => return Ok(documents),
        Err(err) => err,
    };
    let Error::Budget { breach, .. } = err.without_snippet() else {
        bail!("the manifest is not valid YAML: {err}");
    };
    match breach {
        BudgetBreach::Documents { .. } => {
            let count = match count_documents(yaml) {
                Some(count) => count.to_string(),
                None => format!("more than {MAX_DOCUMENTS}"),
            };
            bail!(
                "the manifest has {count} YAML documents, more than the {MAX_DOCUMENTS} one \
                 manifest may hold; split it into several manifests applied one after the \
                 other, or build the objects in Rust and apply each with `apply_object`"
            )
        }
        breach => bail!(
            "the manifest is too large for the YAML reader ({breach:?}); split it into \
             several manifests applied one after the other"
        ),
    }
}

/// How many documents `yaml` holds (empty ones too, as the budget counts them), if the YAML
/// reader can read it all with no cap on documents.
fn count_documents(yaml: &str) -> Option<usize> {
    let counted = Rc::new(Cell::new(None));
    let report = Rc::clone(&counted);
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_documents: usize::MAX },
    }
    .with_budget_report(move |r: BudgetReport| {
        report.set(r.breached.is_none().then_some(r.documents));
    });
    serde_saphyr::from_multiple_with_options::<IgnoredAny>(yaml, options).ok()?;
    counted.get()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config_maps(count: usize) -> String {
        (0..count)
            .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\n"))
            .collect::<Vec<_>>()
            .join("---\n")
    }

    #[test]
    fn more_documents_than_serde_saphyrs_default_are_read() {
        assert_eq!(parse_manifest(&config_maps(1_025)).unwrap().len(), 1_025);
        assert_eq!(
            parse_manifest(&config_maps(MAX_DOCUMENTS)).unwrap().len(),
            MAX_DOCUMENTS
        );
    }

    #[test]
    fn a_manifest_over_the_cap_says_how_many_documents_the_cap_and_what_to_do() {
        let message = parse_manifest(&config_maps(10_500))
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "the manifest has 10500 YAML documents, more than the 10000 one manifest may hold; \
             split it into several manifests applied one after the other, or build the objects \
             in Rust and apply each with `apply_object`"
        );
    }

    #[test]
    fn invalid_yaml_is_still_called_invalid() {
        let message = parse_manifest("a: [1, 2\n").unwrap_err().to_string();
        assert!(
            message.starts_with("the manifest is not valid YAML: "),
            "{message}"
        );
    }
}
