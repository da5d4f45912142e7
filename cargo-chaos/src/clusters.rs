//! `cargo chaos ls` and `cargo chaos gc`: the kind clusters this project made (and the containers
//! of its own Docker tests), and removing the ones whose run has ended.
//!
//! Both go through one decision, `Disposition::of`: `ls` prints, in its GC column, what `gc`
//! does with each line, and `gc` does exactly that.

use std::fmt::Write;

use chaos_runtime::__kind::ownership::{Disposition, OwnedContainer, Records, owned_containers};
use chaos_runtime::__kind::{Survey, list_clusters, remove_leftovers};

use crate::Failure;

/// Lists every kind cluster with its owner (`running`, `gone`, `kept`, `corrupt` or `not-ours`)
/// and what `gc` would do with it; then records of clusters kind no longer has, and the
/// containers of the project's own tests.
pub(crate) fn ls() -> Result<(), Failure> {
    let records = Records::default_location();
    let runtime = runtime()?;
    let survey = runtime
        .block_on(list_clusters(&records))
        .map_err(Failure::Other)?;
    let containers = runtime.block_on(owned_containers());
    let fixtures = containers.as_deref().unwrap_or_default();
    let mut out = render_clusters(&survey, fixtures);
    match containers {
        Ok(containers) if !containers.is_empty() => {
            writeln!(out, "\n{:<40} {:<9} {:>8}  GC", "CONTAINER", "OWNER", "PID").unwrap();
            for container in containers {
                let pid = container.pid.map(|p| p.to_string()).unwrap_or("-".into());
                let gc = match container.disposition {
                    Disposition::Remove => "remove",
                    _ => "-",
                };
                writeln!(
                    out,
                    "{:<40} {:<9} {pid:>8}  {gc}",
                    container.name,
                    container.disposition.label()
                )
                .unwrap();
            }
        }
        Ok(_) => {}
        Err(err) => eprintln!("warning: {err:#}"),
    }
    for corrupt in survey
        .clusters
        .iter()
        .filter_map(|c| c.corrupt.as_ref())
        .chain(&survey.corrupt)
    {
        eprintln!("warning: {corrupt}");
    }
    crate::print(&out)
}

/// The table of clusters and the notes on records without a cluster. A cluster with no record
/// whose nodes are containers of the project's tests (`fixtures`) is shown with their owner: `gc`
/// removes it by removing them (marked `(rm)`).
fn render_clusters(survey: &Survey, fixtures: &[OwnedContainer]) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "{:<40} {:<9} {:>8}  {:<6}  KUBECONFIG",
        "CLUSTER", "OWNER", "PID", "GC"
    )
    .unwrap();
    for listing in &survey.clusters {
        let disposition = listing.disposition();
        let (pid, kubeconfig) = match &listing.record {
            None => (String::from("-"), String::from("-")),
            Some(record) => (
                record.pid.to_string(),
                record
                    .kubeconfig
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        };
        let mut gc = match disposition {
            Disposition::Remove => "delete",
            _ => "-",
        };
        let mut owner = disposition.label();
        let nodes: Vec<&OwnedContainer> = fixtures
            .iter()
            .filter(|c| c.cluster.as_deref() == Some(listing.name.as_str()))
            .collect();
        if disposition == Disposition::NotOurs && !nodes.is_empty() {
            let all_gone = nodes.iter().all(|c| c.disposition == Disposition::Remove);
            (owner, gc) = match all_gone {
                true => ("gone", "(rm)"),
                false => ("running", "-"),
            };
        }
        writeln!(
            out,
            "{:<40} {owner:<9} {pid:>8}  {gc:<6}  {kubeconfig}",
            listing.name,
        )
        .unwrap();
    }
    if survey.clusters.is_empty() {
        writeln!(out, "(no kind clusters)").unwrap();
    }
    for record in &survey.stale {
        let note = match Disposition::of(Some(record), false) {
            Disposition::Remove => "gc forgets it".to_owned(),
            Disposition::Kept => "it was kept; gc leaves the record".to_owned(),
            _ => format!(
                "its run (pid {}) still goes, and may be creating it; gc leaves the record",
                record.pid
            ),
        };
        writeln!(
            out,
            "note: {} is recorded but kind does not have it; {note}",
            record.cluster
        )
        .unwrap();
    }
    out
}

/// Deletes the clusters whose owner is gone, and only those; removes the containers of the
/// project's own tests whose owner is gone. Goes on past a failure; exits 1 if anything could
/// not be removed or decided, saying what to run by hand.
pub(crate) fn gc() -> Result<(), Failure> {
    let records = Records::default_location();
    let report = runtime()?
        .block_on(remove_leftovers(&records))
        .map_err(Failure::Other)?;
    let mut out = String::new();
    for name in &report.removed {
        writeln!(out, "removed {name}").unwrap();
    }
    for name in &report.forgotten {
        writeln!(
            out,
            "forgot the record of {name} (kind no longer has the cluster)"
        )
        .unwrap();
    }
    for name in &report.containers {
        writeln!(out, "removed container {name}").unwrap();
    }
    writeln!(out, "{} leftover cluster(s) removed", report.removed.len()).unwrap();
    if !report.containers.is_empty() {
        writeln!(
            out,
            "{} leftover test container(s) removed",
            report.containers.len()
        )
        .unwrap();
    }
    crate::print(&out)?;
    for failure in &report.failed {
        eprintln!(
            "error: could not remove {}: {}\n  by hand: {}",
            failure.what,
            failure.error.trim_end(),
            failure.by_hand
        );
    }
    for corrupt in &report.corrupt {
        eprintln!("error: {corrupt}");
    }
    match report.failed.len() + report.corrupt.len() {
        0 => Ok(()),
        n => Err(Failure::Other(anyhow::anyhow!(
            "{n} leftover(s) not removed (above, each with what to run by hand)"
        ))),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(e.into()))
}
