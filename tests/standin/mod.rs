//! The `main` of the suites that run on kind: on real `kindest/node` images with
//! `CHAOS_E2E=kind` (needs Docker, kind and a registry: `.github/workflows/e2e-kind.yml`);
//! otherwise, where Docker is up, on stand-in kind (`CHAOS_KIND_STANDIN=1`), after installing kind
//! (`scripts/install-kind.sh`) and building the stand-in images (`scripts/build-standin-images.sh`),
//! both cached; without Docker every test is reported as ignored, with the reason, unless
//! `CHAOS_REQUIRE_DOCKER=1`, which makes that a failure. After the run, a container left by one of
//! the suite's clusters fails it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use chaos_runtime::__private::Suite;

/// Where the suite runs: real kind images with `CHAOS_E2E=kind`, else stand-in kind where Docker
/// is up (set up here, before the harness), else nowhere (ignored, with the reason).
pub fn main(package: &'static str, suite: &str) -> ExitCode {
    let listing = std::env::args().any(|a| a == "--list");
    if std::env::var("CHAOS_E2E").is_ok_and(|v| v == "kind") {
        return chaos_runtime::__private::run_main(package, Suite::OnProvider("kind"));
    }
    if listing {
        return chaos_runtime::__private::run_main(package, Suite::OnProvider("kind"));
    }
    let required = match chaos_runtime::__private::flag("CHAOS_REQUIRE_DOCKER") {
        Ok(required) => required,
        Err(err) => {
            eprintln!("{suite}: {err:#}");
            return ExitCode::from(2);
        }
    };
    match set_up_standin() {
        Ok(()) => {
            let before = match kind_containers() {
                Ok(before) => before,
                Err(err) => {
                    eprintln!("{suite}: FAILED: could not list containers: {err:#}");
                    return ExitCode::from(101);
                }
            };
            let code = chaos_runtime::__private::run_main(package, Suite::OnProvider("kind"));
            match leftover_containers(&before) {
                Ok(left) if left.is_empty() => code,
                Ok(left) => {
                    eprintln!(
                        "{suite}: FAILED: containers of clusters made during this run are left: {}",
                        left.join(", ")
                    );
                    ExitCode::from(101)
                }
                Err(err) => {
                    eprintln!("{suite}: FAILED: could not list containers: {err:#}");
                    ExitCode::from(101)
                }
            }
        }
        Err(err) if required => {
            eprintln!(
                "{suite}: FAILED: stand-in kind could not be set up (CHAOS_REQUIRE_DOCKER=1): {err:#}"
            );
            ExitCode::from(101)
        }
        Err(err) => {
            let reason = format!(
                "stand-in kind could not be set up ({err:#}); CHAOS_E2E=kind runs on real kind images"
            );
            chaos_runtime::__private::run_main(package, Suite::Ignored(reason.leak()))
        }
    }
}

/// Installs kind and builds the stand-in images (both cached), then points the harness at them:
/// `CHAOS_PROVIDER=kind CHAOS_KIND_STANDIN=1`.
fn set_up_standin() -> anyhow::Result<()> {
    // Older CLIs exit 0 with an empty server version when no daemon answers.
    let docker = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stderr(Stdio::null())
        .output();
    anyhow::ensure!(
        docker.is_ok_and(|out| out.status.success() && !out.stdout.trim_ascii().is_empty()),
        "no Docker daemon answers `docker info` with its version"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let on_path = |program: &str| {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        })
    };
    if std::env::var_os("CHAOS_KIND").is_none() && !on_path("kind") {
        let kind = script(&root.join("scripts/install-kind.sh"), &[])?;
        // SAFETY: single-threaded here: the harness has not started yet.
        unsafe { std::env::set_var("CHAOS_KIND", kind.trim()) };
    }
    // `cargo test` builds the agent with the workspace (chaos-standin has integration tests);
    // elsewhere the script builds it.
    let agent = agent_binary();
    let args: Vec<&str> = agent.iter().filter_map(|p| p.to_str()).collect();
    script(&root.join("scripts/build-standin-images.sh"), &args)?;
    // SAFETY: as above.
    unsafe {
        std::env::set_var("CHAOS_PROVIDER", "kind");
        std::env::set_var("CHAOS_KIND_STANDIN", "1");
    }
    Ok(())
}

/// Containers of kind clusters made while the suite ran (not in `before`) and still there after
/// it, unless clusters were to be kept (`CHAOS_KEEP`, `CHAOS_REUSE`).
fn leftover_containers(before: &[KindContainer]) -> anyhow::Result<Vec<String>> {
    for keeps in ["CHAOS_KEEP", "CHAOS_REUSE"] {
        if chaos_runtime::__private::flag(keeps)? {
            return Ok(Vec::new());
        }
    }
    Ok(kind_containers()?
        .into_iter()
        .filter(|c| !before.contains(c))
        .map(|c| format!("{} (cluster {})", c.name, c.cluster))
        .collect())
}

/// A container of a kind cluster this project names (`chaos-…`; `chaos-fx…` are the Docker
/// fixtures' own).
#[derive(Debug, PartialEq, Eq)]
pub struct KindContainer {
    pub name: String,
    pub cluster: String,
}

/// Every container, running or not, of a kind cluster this project names.
pub fn kind_containers() -> anyhow::Result<Vec<KindContainer>> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=io.x-k8s.kind.cluster",
            "--format",
            "{{.Names}} {{.Label \"io.x-k8s.kind.cluster\"}}",
        ])
        .output()?;
    anyhow::ensure!(out.status.success(), "docker ps failed ({})", out.status);
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, cluster)| cluster.starts_with("chaos-") && !cluster.starts_with("chaos-fx"))
        .map(|(name, cluster)| KindContainer {
            name: name.to_owned(),
            cluster: cluster.to_owned(),
        })
        .collect())
}

/// `target/<profile>/chaos-node-agent`, next to this test's `deps/` directory, if it was built.
fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let agent = profile_dir.join("chaos-node-agent");
    agent.is_file().then_some(agent)
}

/// Runs a project script, its progress on our stderr; returns its stdout.
fn script(path: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(path)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| anyhow::anyhow!("could not run {}: {e}", path.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed ({})",
        path.display(),
        out.status
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
