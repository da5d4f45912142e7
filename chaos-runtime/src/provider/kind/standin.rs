//! Stand-in kind (`CHAOS_KIND_STANDIN=1`): the real kind binary creates, lists, exports logs of and
//! deletes clusters whose node images were built here, for machines that cannot pull
//! `kindest/node` (no registry). Each stand-in node runs `chaos-node-agent` (the `chaos-standin`
//! crate) as its systemd, kubeadm, kubectl, kubelet and API server; the HA load balancer runs it as
//! envoy. Nothing of kind itself is faked; what is not exercised (the real kubeadm, kubelet, etcd,
//! containerd) is said in the README.
//!
//! The images come from `scripts/build-standin-images.sh` (base node image and load balancer);
//! this module adds one tag per Kubernetes version (`/kind/version`, which kind reads to choose
//! the kubeadm config API: `pkg/cluster/nodeutils/util.go` KubeVersion) and, where the daemon
//! refuses `--privileged`, a `docker` wrapper first on kind's PATH.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::images::NodeImage;
use crate::command::Cmd;
use crate::harness::progress::say;

/// The stand-in node image every version's tag is built from.
pub(crate) const BASE_IMAGE: &str = "chaos-standin-node:base";
/// Per-version tags: `chaos-standin-node:v1.29.14`. Tags, not digests: kind takes a local image
/// only by a reference Docker can resolve locally, and a digest can't be given to a local build.
const NODE_REPOSITORY: &str = "chaos-standin-node";
/// The load balancer image kind v0.33 runs for HA clusters (kind
/// `pkg/cluster/internal/loadbalancer/const.go`, `Image`); kind cannot be told another one, so the
/// stand-in is tagged with that name. The build script never overwrites a real envoy image.
pub(crate) const LOAD_BALANCER_IMAGE: &str = "docker.io/envoyproxy/envoy:v1.36.2";
/// The label every stand-in image carries (`node` or `load-balancer`).
pub(crate) const LABEL: &str = "io.chaos.standin";
/// The label of a version tag: the id of the base image it was built from.
const BASE_LABEL: &str = "io.chaos.standin.base";
const BUILD_HINT: &str = "build the stand-in images with scripts/build-standin-images.sh";

/// Stand-in mode's part of the kind provider.
#[derive(Debug)]
pub(crate) struct StandIn {
    /// Where the `docker` wrapper is, when the daemon refuses `--privileged`.
    wrapper_dir: Option<PathBuf>,
}

impl StandIn {
    /// `Some` with `CHAOS_KIND_STANDIN=1`: checks the images exist and whether the daemon needs
    /// the `--privileged` wrapper. The error says what is missing and how to get it.
    pub async fn from_env() -> anyhow::Result<Option<StandIn>> {
        if !crate::harness::settings::flag("CHAOS_KIND_STANDIN")? {
            return Ok(None);
        }
        for (image, what) in [(BASE_IMAGE, "node"), (LOAD_BALANCER_IMAGE, "load-balancer")] {
            if image_label(image, LABEL).await.is_none() {
                match image_id(image).await {
                    // A real envoy image works as kind's load balancer: it is used as it is.
                    Some(_) if what == "load-balancer" => {}
                    _ => bail!(
                        "CHAOS_KIND_STANDIN=1 needs the stand-in {what} image {image}, which is not in Docker; {BUILD_HINT}"
                    ),
                }
            }
        }
        let wrapper_dir = match privileged_refused().await {
            true => {
                let real = which("docker").context("docker is not on PATH")?;
                Some(write_docker_wrapper(
                    &crate::dirs::chaos_dir().join("standin"),
                    &real,
                )?)
            }
            false => None,
        };
        Ok(Some(StandIn { wrapper_dir }))
    }

    /// The stand-in image for the node `image` stands for, at the same Kubernetes version.
    pub fn node_image(&self, image: NodeImage) -> NodeImage {
        NodeImage {
            image: format!("{NODE_REPOSITORY}:{}", image.kubelet_version),
            ..image
        }
    }

    /// Builds the version tags that are missing or older than the base image.
    pub async fn ensure_images(&self, images: BTreeSet<(String, String)>) -> anyhow::Result<()> {
        let base = image_id(BASE_IMAGE)
            .await
            .with_context(|| format!("{BASE_IMAGE} is not in Docker; {BUILD_HINT}"))?;
        for (image, version) in images {
            if image_label(&image, BASE_LABEL).await.as_deref() == Some(base.as_str()) {
                continue;
            }
            say(format!("building stand-in node image {image}"));
            let dockerfile = format!(
                "FROM {BASE_IMAGE}\nRUN echo {version} > /kind/version\nLABEL {LABEL}=node {BASE_LABEL}={base}\n"
            );
            build_image(&image, &dockerfile)
                .await
                .with_context(|| format!("building stand-in node image {image}"))?;
        }
        Ok(())
    }

    /// `cmd` (a kind command) with the `docker` wrapper first on its PATH, if one is needed.
    pub fn kind_command(&self, cmd: Cmd) -> Cmd {
        match &self.wrapper_dir {
            Some(dir) => {
                let path = std::env::var_os("PATH").unwrap_or_default();
                let mut dirs = vec![dir.clone()];
                dirs.extend(std::env::split_paths(&path));
                let joined = std::env::join_paths(dirs).unwrap_or(path);
                cmd.env("PATH", joined.to_string_lossy())
            }
            None => cmd,
        }
    }
}

async fn image_id(image: &str) -> Option<String> {
    let out = Cmd::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .run()
        .await
        .ok()?;
    Some(out.stdout.trim().to_owned())
}

/// The value of `label` on `image`; `None` if the image or the label is missing.
async fn image_label(image: &str, label: &str) -> Option<String> {
    let format = format!("{{{{index .Config.Labels \"{label}\"}}}}");
    let out = Cmd::new("docker")
        .args(["image", "inspect", "--format", &format, image])
        .run()
        .await
        .ok()?;
    let value = out.stdout.trim();
    (!value.is_empty() && value != "<no value>").then(|| value.to_owned())
}

/// `docker build` of a Dockerfile with no context. The legacy builder where the buildx plugin is
/// missing (as in scripts/build-node-image.sh); both take the local base image, nothing is pulled.
async fn build_image(tag: &str, dockerfile: &str) -> anyhow::Result<()> {
    let buildx = Cmd::new("docker").args(["buildx", "version"]).run().await;
    let mut build = Cmd::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .stdin(dockerfile)
        .timeout(std::time::Duration::from_secs(300));
    if buildx.is_err() {
        build = build.env("DOCKER_BUILDKIT", "0");
    }
    build.run().await?;
    Ok(())
}

/// Whether the daemon refuses `docker run --privileged` (seen on daemons in restricted sandboxes:
/// `unable to apply caps: operation not permitted`).
async fn privileged_refused() -> bool {
    Cmd::new("docker")
        .args([
            "run",
            "--rm",
            "--privileged",
            "--entrypoint",
            "/bin/true",
            BASE_IMAGE,
        ])
        .timeout(std::time::Duration::from_secs(60))
        .run()
        .await
        .is_err()
}

/// Writes `<dir>/bin/docker`, which runs `real` (the real docker) with `--privileged` rewritten, and
/// returns `<dir>/bin`.
///
/// Why: kind runs every node with `docker run --privileged` and every node command with
/// `docker exec --privileged` (kind `pkg/cluster/internal/providers/docker/provision.go` and
/// `node.go`); a daemon that cannot grant every capability refuses both. Explicit capabilities
/// give the nodes what our stand-in needs (NET_ADMIN for iptables and tc, the unmasked /proc paths
/// of `systempaths=unconfined`); SYS_RESOURCE is the one such daemons cannot apply.
fn write_docker_wrapper(dir: &Path, real: &Path) -> anyhow::Result<PathBuf> {
    let script = format!(
        r#"#!/usr/bin/env bash
# Written by chaos-runtime for CHAOS_KIND_STANDIN=1 on a daemon that refuses --privileged: kind
# runs nodes with `docker run --privileged`; this maps that to explicit capabilities, and drops
# --privileged from `docker exec`. Everything else goes to the real docker unchanged.
set -u
real={real}
sub=${{1:-}}
args=()
for arg in "$@"; do
    if [ "$arg" = --privileged ]; then
        case "$sub" in
            run) args+=(--cap-add=ALL --cap-drop=SYS_RESOURCE --security-opt systempaths=unconfined) ;;
        esac
        continue
    fi
    args+=("$arg")
done
exec "$real" "${{args[@]}}"
"#,
        real = shlex::try_quote(&real.display().to_string())?
    );
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let path = bin.join("docker");
    // Written whole and renamed: another test process may be running kind through it.
    let tmp = bin.join(format!("docker.{}", std::process::id()));
    std::fs::write(&tmp, script).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(bin)
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stand_in_node_image_is_a_local_tag_at_the_same_version() {
        let standin = StandIn { wrapper_dir: None };
        let image = standin.node_image(NodeImage {
            image: "kindest/node:v1.29.14@sha256:abc".to_owned(),
            kubelet_version: "v1.29.14".to_owned(),
            release: None,
            best_effort: false,
        });
        assert_eq!(image.image, "chaos-standin-node:v1.29.14");
        assert_eq!(image.kubelet_version, "v1.29.14");
    }

    #[test]
    fn the_docker_wrapper_maps_privileged_to_capabilities_and_keeps_other_arguments() {
        let dir = std::env::temp_dir().join(format!("chaos-wrapper-{}", std::process::id()));
        // A fake "real docker" that prints its arguments one per line.
        let fake = dir.join("real");
        std::fs::create_dir_all(&fake).unwrap();
        let real = fake.join("docker");
        std::fs::write(&real, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        let wrapper_dir = write_docker_wrapper(&dir, &real).unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new(wrapper_dir.join("docker"))
                .args(args)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(
            run(&["run", "--name", "n 1", "--privileged", "img"]),
            "run\n--name\nn 1\n--cap-add=ALL\n--cap-drop=SYS_RESOURCE\n--security-opt\nsystempaths=unconfined\nimg\n"
        );
        assert_eq!(
            run(&["exec", "--privileged", "-i", "node", "kubeadm", "init"]),
            "exec\n-i\nnode\nkubeadm\ninit\n"
        );
        assert_eq!(run(&["ps", "-a"]), "ps\n-a\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
