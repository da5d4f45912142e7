//! `cargo chaos ls` and `cargo chaos gc`: the kind clusters this project made, and removing the
//! ones whose run has ended.

use std::fmt::Write;

use chaos_runtime::__kind::ownership::{OwnerRecord, OwnerState, Records};
use chaos_runtime::__kind::{list_clusters, remove_leftovers};

use crate::Failure;

/// Lists every kind cluster with its owner: `running` (its run is still going), `gone` (left
/// over: `gc` removes it), `kept` (CHAOS_KEEP), or `not ours`.
pub(crate) fn ls() -> Result<(), Failure> {
    let records = Records::default_location();
    let (listings, stale) = runtime()?
        .block_on(list_clusters(&records))
        .map_err(Failure::Other)?;
    let mut out = String::new();
    writeln!(
        out,
        "{:<40} {:<9} {:>8}  KUBECONFIG",
        "CLUSTER", "OWNER", "PID"
    )
    .unwrap();
    for listing in &listings {
        let (owner, pid, kubeconfig) = match &listing.record {
            None => ("not ours", String::from("-"), String::from("-")),
            Some(record) => (
                owner(record),
                record.pid.to_string(),
                record
                    .kubeconfig
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        };
        writeln!(
            out,
            "{:<40} {owner:<9} {pid:>8}  {kubeconfig}",
            listing.name
        )
        .unwrap();
    }
    if listings.is_empty() {
        writeln!(out, "(no kind clusters)").unwrap();
    }
    for record in stale {
        writeln!(
            out,
            "note: {} is recorded but kind no longer has it; gc forgets it",
            record.cluster
        )
        .unwrap();
    }
    crate::print(&out)
}

/// Deletes the clusters whose owner is gone, and only those.
pub(crate) fn gc() -> Result<(), Failure> {
    let records = Records::default_location();
    let removed = runtime()?
        .block_on(remove_leftovers(&records))
        .map_err(Failure::Other)?;
    let mut out = String::new();
    for name in &removed {
        writeln!(out, "removed {name}").unwrap();
    }
    writeln!(out, "{} leftover cluster(s) removed", removed.len()).unwrap();
    crate::print(&out)
}

fn owner(record: &OwnerRecord) -> &'static str {
    match (record.kept, record.owner_state()) {
        (true, _) => "kept",
        (false, OwnerState::Running) => "running",
        (false, OwnerState::Gone) => "gone",
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(e.into()))
}
