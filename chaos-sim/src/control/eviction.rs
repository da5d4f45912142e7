//! The `pods/{name}/eviction` subresource: a pod is deleted unless that would take its
//! PodDisruptionBudget below what it allows (429). Checked and deleted under one store lock,
//! so concurrent evictions cannot both spend the last allowed disruption.

use serde_json::{Value, json};

use super::disruption::{budget, covers};
use super::pod_ready;
use crate::resources::ResourceKey;
use crate::{ApiError, ApiServer};

/// Evicts `namespace/name`; returns the `Status` to answer with (201).
pub(crate) fn evict(server: &ApiServer, namespace: &str, name: &str) -> Result<Value, ApiError> {
    let pods_key = ResourceKey::new("", "pods");
    let mut store = server.lock();
    let pod = store
        .get(&pods_key, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&pods_key, name))?;
    // Pods that are not running, or already going, are not protected by any budget.
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    let protected = !super::meta::is_deleting(&pod) && phase == "Running";
    if protected {
        let pdbs: Vec<Value> = store
            .list(
                &ResourceKey::new("policy", "poddisruptionbudgets"),
                Some(namespace),
                &Default::default(),
            )
            .into_iter()
            .filter(|pdb| covers(pdb, &pod))
            .collect();
        match pdbs.as_slice() {
            [] => {}
            [pdb] => {
                let pods = store.list(&pods_key, Some(namespace), &Default::default());
                let replica_sets = store.list(
                    &ResourceKey::new("apps", "replicasets"),
                    Some(namespace),
                    &Default::default(),
                );
                let b = budget(pdb, &pods, &replica_sets);
                // An unready pod costs nothing as long as the budget is met (IfHealthyBudget).
                let allowed = if pod_ready(&pod) {
                    b.disruptions_allowed > 0
                } else {
                    b.current_healthy >= b.desired_healthy
                };
                if !allowed {
                    return Err(ApiError::new(
                        429,
                        "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    ));
                }
            }
            _ => {
                return Err(ApiError::new(
                    500,
                    "InternalError",
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
        }
    }
    store.delete(&pods_key, namespace, name)?;
    Ok(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}
