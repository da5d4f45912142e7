//! From registrations to an ordered run: one test case per registration and matrix entry, grouped
//! by the cluster it needs, largest groups first.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use chaos_topology::{Topology, TopologySpec, Version};

use crate::registry::TestRegistration;

/// One test as the harness runs it: a registration, with one version of a matrix chosen.
pub(crate) struct TestCase {
    /// `module::fn`, or `module::fn[k8s=1.29]` for a matrix entry.
    pub name: String,
    pub topology: Topology,
    pub timeout: Option<Duration>,
    pub ignore: Option<&'static str>,
    pub registration: &'static TestRegistration,
}

/// The tests that need one cluster, in the order they run on it.
pub(crate) struct Group {
    pub topology: Topology,
    pub tests: Vec<usize>,
}

/// Expands every registration into test cases, sorted by name.
pub(crate) fn test_cases(
    registrations: &'static [TestRegistration],
) -> anyhow::Result<Vec<TestCase>> {
    let mut cases = Vec::new();
    for reg in registrations {
        let base = test_name(reg);
        let versions = |list: &[&str]| -> anyhow::Result<Vec<Version>> {
            list.iter().map(|v| Ok(v.parse::<Version>()?)).collect()
        };
        for k8s in reg.k8s {
            let spec = TopologySpec {
                masters: reg.masters,
                workers: reg.workers,
                k8s: k8s.parse()?,
                master_versions: versions(reg.master_versions)?,
                worker_versions: versions(reg.worker_versions)?,
            };
            let topology = spec
                .build()
                .with_context(|| format!("test {base} ({}:{})", reg.file, reg.line))?;
            let name = match reg.k8s.len() {
                1 => base.clone(),
                _ => format!("{base}[k8s={k8s}]"),
            };
            cases.push(TestCase {
                name,
                topology,
                timeout: reg.timeout,
                ignore: reg.ignore,
                registration: reg,
            });
        }
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = cases.windows(2).find(|w| w[0].name == w[1].name) {
        bail!("two tests are named `{}`; rename one of them", pair[0].name);
    }
    Ok(cases)
}

/// `module::fn` without the crate's own segment (the test target's name).
fn test_name(reg: &TestRegistration) -> String {
    match reg.module_path.split_once("::") {
        Some((_, rest)) => format!("{rest}::{}", reg.name),
        None => reg.name.to_owned(),
    }
}

/// Groups the selected cases by topology: groups with more tests first, then by label, each
/// group's tests by name.
pub(crate) fn groups(cases: &[TestCase], selected: &[bool]) -> Vec<Group> {
    let mut by_topology: BTreeMap<&Topology, Vec<usize>> = BTreeMap::new();
    for (i, case) in cases.iter().enumerate().filter(|(i, _)| selected[*i]) {
        by_topology.entry(&case.topology).or_default().push(i);
    }
    let mut groups: Vec<Group> = by_topology
        .into_iter()
        .map(|(topology, tests)| Group {
            topology: topology.clone(),
            tests,
        })
        .collect();
    groups.sort_by(|a, b| {
        b.tests
            .len()
            .cmp(&a.tests.len())
            .then_with(|| a.topology.label().cmp(&b.topology.label()))
    });
    groups
}
