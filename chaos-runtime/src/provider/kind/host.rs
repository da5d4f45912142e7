//! What the host must offer kind, checked before anything is created: that kind drives the same
//! Docker our own `docker` calls see, the host's cgroup version against the node versions, and
//! inotify limits against the number of clusters run at once. Each check is a plain function of
//! what was read, so that it can be tested without such a host.

use chaos_topology::Version;

/// The environment variable by which the kind CLI picks another node provider (podman,
/// nerdctl, finch): kind's `pkg/internal/runtime/runtime.go` (`GetDefault`).
pub const KIND_PROVIDER_VAR: &str = "KIND_EXPERIMENTAL_PROVIDER";

/// kind's own node provider for every kind command we run. Without it kind picks one from
/// `KIND_EXPERIMENTAL_PROVIDER`, or, unset, the first of docker, nerdctl, podman whose CLI is
/// there (`DetectNodeProvider`, kind `pkg/cluster/provider.go`): nodes our `docker` calls could
/// not see, so no fault could reach them.
pub const KIND_PROVIDER: &str = "docker";

/// Refuses a `KIND_EXPERIMENTAL_PROVIDER` other than docker, and a `docker` command that is not
/// Docker. `docker_v` is what `docker -v` printed: kind's docker provider requires it to start
/// with `Docker version` (`IsAvailable`, kind `pkg/cluster/internal/providers/docker/util.go`);
/// podman-docker's shim prints `podman version …`.
pub fn check_container_runtime(kind_provider: Option<&str>, docker_v: &str) -> Result<(), String> {
    if let Some(provider) = kind_provider.filter(|p| !p.is_empty() && *p != KIND_PROVIDER) {
        return Err(format!(
            "{KIND_PROVIDER_VAR}={provider} would make kind create nodes with {provider}, which this \
             project's Docker calls cannot see or fault; unset it (only Docker is supported)"
        ));
    }
    let first = docker_v.lines().next().unwrap_or("").trim();
    if !first.starts_with("Docker version") {
        return Err(format!(
            "`docker -v` printed {first:?}, not Docker (a podman-docker shim?); kind and this \
             project's faults need the Docker engine: install Docker, or put its CLI first on PATH"
        ));
    }
    Ok(())
}

/// The first Kubernetes minor whose kubelet refuses to start on cgroup v1: 1.35 made
/// `failCgroupV1: true` the kubelet default (KEP-5573, `keps/sig-node/5573-cgroup-v1-unsupported`),
/// and kind v0.31.0's node images for 1.35+ dropped cgroup v1 (release notes). kind itself only
/// warns on a cgroup v1 host (`validateProvider`, kind `pkg/cluster/internal/create/create.go`), so
/// creation would fail minutes later inside kubeadm, with the kubelet's error in the node's logs.
pub const FIRST_MINOR_WITHOUT_CGROUP_V1: u32 = 35;

/// Refuses node versions the host's cgroup version cannot run. `cgroup_version` is what `docker
/// info --format {{.CgroupVersion}}` printed (`1` or `2`; anything else is not checked).
pub fn check_cgroups(cgroup_version: &str, versions: &[Version]) -> Result<(), String> {
    if cgroup_version.trim() != "1" {
        return Ok(());
    }
    let Some(newest) = versions
        .iter()
        .filter(|v| v.minor >= FIRST_MINOR_WITHOUT_CGROUP_V1)
        .max_by_key(|v| v.minor)
    else {
        return Ok(());
    };
    Err(format!(
        "Kubernetes {newest} cannot run on this host: its Docker uses cgroup v1, and from 1.{FIRST_MINOR_WITHOUT_CGROUP_V1} \
         the kubelet refuses to start there (KEP-5573; kind's 1.{FIRST_MINOR_WITHOUT_CGROUP_V1}+ node images dropped \
         cgroup v1); use `k8s = \"1.34\"` or older, or a host with cgroup v2 \
         (`systemd.unified_cgroup_hierarchy=1`)"
    ))
}

/// inotify limits kind's known-issues page asks for when running several clusters
/// (`site/content/docs/user/known-issues.md`, "Pod errors due to too many open files"):
/// `fs.inotify.max_user_watches = 524288`, `fs.inotify.max_user_instances = 512`. Each node runs
/// a kubelet and systemd that take instances and watches of the host's one per-user budget.
pub const INOTIFY_WANTED: [(&str, u64); 2] = [
    ("fs.inotify.max_user_watches", 524_288),
    ("fs.inotify.max_user_instances", 512),
];

/// A warning when more than one cluster may run at once and the host's inotify limits are below
/// kind's recommendation: the lines that raise them. `limits`: each sysctl as read, `None` where
/// it could not be read (not Linux, say: nothing to say then).
pub fn inotify_warning(limits: &[(&str, Option<u64>)], max_clusters: usize) -> Option<String> {
    if max_clusters < 2 {
        return None;
    }
    let low: Vec<String> = INOTIFY_WANTED
        .iter()
        .filter_map(|(name, wanted)| {
            let (_, value) = limits.iter().find(|(n, _)| n == name)?;
            let value = (*value)?;
            (value < *wanted).then(|| format!("sudo sysctl -w {name}={wanted}  # now {value}"))
        })
        .collect();
    (!low.is_empty()).then(|| {
        format!(
            "up to {max_clusters} kind clusters may run at once, but this host's inotify limits are \
             below what kind asks for (nodes may fail with \"too many open files\"); raise them:\n  {}\n\
             or run fewer at once with CHAOS_MAX_CLUSTERS=1",
            low.join("\n  ")
        )
    })
}

/// Reads an inotify sysctl from `/proc/sys`.
pub fn read_sysctl(name: &str) -> Option<u64> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The newest kubeadm that cannot read the `v1beta4` config that a 1.32+ control plane writes in
/// `kube-system/kubeadm-config`: kubeadm 1.31 wrote both v1beta3 and v1beta4 "to ease transition
/// for clusters that join N-1 kubeadm version nodes" (kubernetes/kubernetes#125029); from 1.32 it
/// writes v1beta4 only, which kubeadm 1.30 and older do not know. On kind each node joins with
/// its own image's kubeadm.
const NEWEST_KUBEADM_WITHOUT_V1BETA4: u32 = 30;
const FIRST_CONTROL_PLANE_WITH_V1BETA4_ONLY: u32 = 32;

/// Refuses a mix in which some node's kubeadm cannot read the config the first control plane
/// writes. `first_control_plane`: the version of the node that runs `kubeadm init`.
pub fn check_join_skew(first_control_plane: Version, nodes: &[Version]) -> Result<(), String> {
    if first_control_plane.minor < FIRST_CONTROL_PLANE_WITH_V1BETA4_ONLY {
        return Ok(());
    }
    let Some(oldest) = nodes
        .iter()
        .filter(|v| v.minor <= NEWEST_KUBEADM_WITHOUT_V1BETA4)
        .min_by_key(|v| v.minor)
    else {
        return Ok(());
    };
    Err(format!(
        "a {oldest} node cannot join a {first_control_plane} control plane on kind: each node joins \
         with its own kubeadm, and kubeadm 1.{NEWEST_KUBEADM_WITHOUT_V1BETA4} and older cannot read \
         the v1beta4 config that 1.{FIRST_CONTROL_PLANE_WITH_V1BETA4_ONLY}+ control planes write \
         (kubernetes/kubernetes#125029); keep nodes within 1.31 of a 1.{FIRST_CONTROL_PLANE_WITH_V1BETA4_ONLY}+ \
         control plane (e.g. `k8s = \"1.31\"` with `worker_versions = [\"1.30\"]`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(minor: u32) -> Version {
        Version { minor, patch: None }
    }

    #[test]
    fn only_docker_is_accepted_as_kinds_provider_and_as_the_docker_command() {
        let docker = "Docker version 28.2.2, build e6534b4\n";
        assert_eq!(check_container_runtime(None, docker), Ok(()));
        assert_eq!(check_container_runtime(Some(""), docker), Ok(()));
        assert_eq!(check_container_runtime(Some("docker"), docker), Ok(()));
        let podman = check_container_runtime(Some("podman"), docker).unwrap_err();
        assert!(
            podman.contains("KIND_EXPERIMENTAL_PROVIDER=podman"),
            "{podman}"
        );
        assert!(podman.contains("unset it"), "{podman}");
        let shim = check_container_runtime(None, "podman version 4.9.3\n").unwrap_err();
        assert!(shim.contains("podman-docker shim"), "{shim}");
        assert!(!shim.contains('\n'), "one line: {shim}");
    }

    #[test]
    fn cgroup_v1_refuses_135_and_newer_and_nothing_else() {
        assert_eq!(check_cgroups("2", &[v(35), v(36)]), Ok(()));
        assert_eq!(check_cgroups("1", &[v(34), v(29)]), Ok(()));
        assert_eq!(check_cgroups("", &[v(35)]), Ok(()));
        let err = check_cgroups("1\n", &[v(34), v(35), v(36)]).unwrap_err();
        assert!(
            err.starts_with("Kubernetes 1.36 cannot run on this host"),
            "{err}"
        );
        assert!(err.contains("`k8s = \"1.34\"`"), "{err}");
    }

    #[test]
    fn workers_of_130_or_older_cannot_join_132_or_newer() {
        assert_eq!(check_join_skew(v(31), &[v(31), v(30), v(29)]), Ok(()));
        assert_eq!(check_join_skew(v(33), &[v(33), v(31)]), Ok(()));
        let err = check_join_skew(v(33), &[v(33), v(30)]).unwrap_err();
        assert!(
            err.starts_with("a 1.30 node cannot join a 1.33 control plane"),
            "{err}"
        );
        assert!(err.contains("#125029"), "{err}");
        assert!(check_join_skew(v(32), &[v(29)]).is_err());
    }

    #[test]
    fn low_inotify_limits_warn_with_the_sysctl_lines_only_when_clusters_run_at_once() {
        let low = [
            ("fs.inotify.max_user_watches", Some(8192)),
            ("fs.inotify.max_user_instances", Some(1024)),
        ];
        assert_eq!(inotify_warning(&low, 1), None);
        let warning = inotify_warning(&low, 4).expect("a warning");
        assert!(
            warning.contains("sudo sysctl -w fs.inotify.max_user_watches=524288  # now 8192"),
            "{warning}"
        );
        assert!(!warning.contains("max_user_instances"), "{warning}");
        let high = [
            ("fs.inotify.max_user_watches", Some(1_048_576)),
            ("fs.inotify.max_user_instances", Some(512)),
        ];
        assert_eq!(inotify_warning(&high, 8), None);
        let unreadable = [("fs.inotify.max_user_watches", None)];
        assert_eq!(inotify_warning(&unreadable, 8), None);
    }
}
