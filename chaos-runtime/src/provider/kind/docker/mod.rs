//! Docker-level access to kind's node containers: find a cluster's nodes, and fault them (stop,
//! kill, pause, kubelet stop, network partitions, netem) through a [`FaultLedger`] that records
//! every fault and can undo them all.
//!
//! Everything goes through the `docker` CLI, as kind itself does, so whatever `docker` reaches
//! (DOCKER_HOST, contexts) is what is used. A node is addressed by its container name, e.g.
//! `chaos-1-worker2`.

mod error;
mod faults;
mod ledger;
mod netem;
mod nodes;
mod partition;
mod script;

use std::time::Duration;

pub use crate::faults::NodeFault;
pub use error::{DockerError, DockerErrorKind};
pub use ledger::{FaultDescription, FaultId, FaultLedger, HealError};
pub(crate) use nodes::CLUSTER_LABEL;
pub use nodes::NodeContainer;

use crate::command::{Cmd, Output};
use script::Script;

const INSTALL_HINT: &str = "install Docker (https://docs.docker.com/engine/install/; on Debian or \
                            Ubuntu `sudo apt-get install docker.io`)";

/// Long enough for `docker stop` (10 s grace before SIGKILL) on a loaded machine.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The `docker` CLI.
#[derive(Clone, Debug)]
pub struct Docker {
    program: String,
}

impl Default for Docker {
    fn default() -> Self {
        Docker::new()
    }
}

impl Docker {
    /// The `docker` on PATH.
    pub fn new() -> Self {
        Docker::with_program("docker")
    }

    /// Another Docker-compatible CLI, or `docker` at a given path.
    pub fn with_program(program: impl Into<String>) -> Self {
        Docker {
            program: program.into(),
        }
    }

    /// Succeeds if the daemon answers (`docker info`); otherwise says how to get one running.
    pub async fn ping(&self) -> Result<(), DockerError> {
        let cmd = self.command(["info", "--format", "{{.ServerVersion}}"]);
        let output = cmd.timeout(Duration::from_secs(20)).run().await;
        let output = output.map_err(|error| DockerError::from_command(None, error))?;
        // Older CLIs print client information and exit 0 with the server error on stderr.
        match output.stdout.trim() {
            "" => Err(DockerError::new(
                DockerErrorKind::DaemonUnreachable,
                None,
                "`docker info` printed no server version",
            )
            .with_fix(error::START_DAEMON)),
            _ => Ok(()),
        }
    }

    fn command<I: IntoIterator<Item = S>, S: Into<String>>(&self, args: I) -> Cmd {
        Cmd::new(&self.program)
            .args(args)
            .timeout(COMMAND_TIMEOUT)
            .install_hint(INSTALL_HINT)
    }

    /// Runs `docker <args>` about `node` (named in errors).
    async fn run(&self, node: Option<&str>, args: &[&str]) -> Result<Output, DockerError> {
        let cmd = self.command(args.iter().copied());
        cmd.run()
            .await
            .map_err(|error| DockerError::from_command(node, error))
    }

    /// Runs `docker exec <node> <args>`.
    async fn exec(&self, node: &str, args: &[&str]) -> Result<Output, DockerError> {
        let cmd = self.command(["exec", node]).args(args.iter().copied());
        cmd.run()
            .await
            .map_err(|error| DockerError::from_command(Some(node), error))
    }

    /// Runs a script inside `node`; an error names the step of the script that failed.
    async fn run_script(&self, node: &str, script: &Script) -> Result<Output, DockerError> {
        let cmd = self.command(["exec", node, "sh", "-c", &script.text()]);
        cmd.run().await.map_err(|error| script.error(node, error))
    }
}
