//! The namespace each test gets: created before it runs, removed by the heal after it.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::watcher;

use crate::wait;

/// A DNS-1123 label for a test: `chaos-<test name>-<seed>`, at most 63 characters.
pub(crate) fn name_for(test: &str, seed: u64) -> String {
    format!("chaos-{}-{:08x}", dns_label_part(test, 45), seed as u32)
}

/// `text` as part of a DNS label or a kind cluster name: lowercase letters, digits and single
/// dashes, at most `max` characters, no dash at either end.
pub(crate) fn dns_label_part(text: &str, max: usize) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let mut part = mapped
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    part.truncate(max);
    part.trim_end_matches('-').to_owned()
}

pub(crate) async fn create(client: kube::Client, name: &str) -> anyhow::Result<()> {
    let object = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "chaos-runtime".to_owned(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client)
        .create(&PostParams::default(), &object)
        .await?;
    Ok(())
}

/// Deletes the namespace and waits until it is gone.
pub(crate) async fn remove(
    client: kube::Client,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api = Api::<Namespace>::all(client);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(err) => return Err(err.into()),
    }
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    wait::until_list(
        api,
        config,
        format!("namespace {name} to be deleted"),
        timeout,
        |found| match found {
            [] => Ok(()),
            [ns, ..] => Err(format!(
                "namespace {name} in phase {}",
                ns.status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .unwrap_or("unknown")
            )),
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_dns_labels() {
        let name = name_for("nodes::Kill_One_Master[k8s=1.29]", 0xdead_beef_1234);
        assert_eq!(name, "chaos-nodes-kill-one-master-k8s-1-29-beef1234");
        let long = name_for(&"x".repeat(200), 1);
        assert!(long.len() <= 63, "{long}");
    }
}
