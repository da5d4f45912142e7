//! What went wrong talking to Docker or to a node container: which node, which command, what it
//! printed, and what to do about it.

use crate::command::CommandError;

/// An error from a `docker` command or from a command run inside a node container.
///
/// Its message names the node, the command and its last lines of stderr, and ends with a `fix:`
/// line when there is something to do about it (start the daemon, start the node, …).
#[derive(Debug, thiserror::Error)]
#[error("{}{message}{}", on_node(.node), fix_line(.fix))]
pub struct DockerError {
    kind: DockerErrorKind,
    node: Option<String>,
    message: String,
    fix: Option<String>,
}

/// The kinds of [`DockerError`], for callers that react to some of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DockerErrorKind {
    /// The `docker` CLI is not installed.
    NotInstalled,
    /// The daemon does not answer: not started, or no permission on its socket.
    DaemonUnreachable,
    /// The container does not exist (any more).
    NoSuchContainer,
    /// The container exists but is not a kind node (no `io.x-k8s.kind.cluster` label).
    NotAKindNode,
    /// The container is stopped, so nothing can run inside it.
    NotRunning,
    /// The container is paused, so nothing can run inside it.
    Paused,
    /// The host kernel has no `sch_netem`, so `tc … netem` cannot work in any node.
    NetemUnavailable,
    /// A command did not finish within its timeout.
    TimedOut,
    /// The operation was asked for something impossible (e.g. a partition with an empty side).
    InvalidRequest,
    /// Any other failure of a command; the message carries its stderr.
    CommandFailed,
    /// Docker printed something this crate could not read.
    UnexpectedOutput,
}

impl DockerError {
    pub(crate) fn new(
        kind: DockerErrorKind,
        node: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        DockerError {
            kind,
            node: node.map(str::to_owned),
            message: message.into(),
            fix: None,
        }
    }

    pub(crate) fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Classifies a failed `docker` command by what it printed, and says what to do about it.
    pub(crate) fn from_command(node: Option<&str>, error: CommandError) -> Self {
        let stderr = stderr_of(&error).unwrap_or_default();
        let kind = match &error {
            CommandError::NotFound { .. } => DockerErrorKind::NotInstalled,
            CommandError::TimedOut { .. } => DockerErrorKind::TimedOut,
            _ if daemon_unreachable(stderr) => DockerErrorKind::DaemonUnreachable,
            _ if stderr.contains("No such container") || stderr.contains("No such object") => {
                DockerErrorKind::NoSuchContainer
            }
            _ if stderr.contains("is paused") => DockerErrorKind::Paused,
            _ if stderr.contains("is not running") => DockerErrorKind::NotRunning,
            _ => DockerErrorKind::CommandFailed,
        };
        let fix = fix_for(kind, node, stderr);
        DockerError {
            kind,
            node: node.map(str::to_owned),
            message: error.to_string(),
            fix,
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> DockerErrorKind {
        self.kind
    }

    /// The node container the failing operation was about, if any.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The message without the node and the fix.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// What to do about it, if this crate knows.
    pub fn fix(&self) -> Option<&str> {
        self.fix.as_deref()
    }
}

/// The stderr of a command that ran and failed.
pub(crate) fn stderr_of(error: &CommandError) -> Option<&str> {
    match error {
        CommandError::Failed { stderr, .. } => Some(stderr),
        _ => None,
    }
}

/// What to do when the daemon does not answer.
pub(crate) const START_DAEMON: &str = "start the Docker daemon (`sudo systemctl start docker`, \
     or start Docker Desktop), or point DOCKER_HOST at a running one";

fn daemon_unreachable(stderr: &str) -> bool {
    [
        "Cannot connect to the Docker daemon",
        "Is the docker daemon running",
        "error during connect",
    ]
    .iter()
    .any(|s| stderr.contains(s))
        || permission_denied(stderr)
}

fn permission_denied(stderr: &str) -> bool {
    stderr.contains("permission denied while trying to connect to the Docker daemon")
}

fn fix_for(kind: DockerErrorKind, node: Option<&str>, stderr: &str) -> Option<String> {
    let node = node.unwrap_or("<node>");
    let fix = match kind {
        DockerErrorKind::DaemonUnreachable if permission_denied(stderr) => {
            "add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log in \
             again), or run as root"
                .to_owned()
        }
        DockerErrorKind::DaemonUnreachable => START_DAEMON.to_owned(),
        DockerErrorKind::NoSuchContainer => format!(
            "the container `{node}` is gone: was its cluster deleted? List what exists with \
             `docker ps -a --filter label=io.x-k8s.kind.cluster`"
        ),
        DockerErrorKind::Paused => format!("unpause it first (`docker unpause {node}`)"),
        DockerErrorKind::NotRunning => format!("start it first (`docker start {node}`)"),
        DockerErrorKind::TimedOut => {
            "check that the daemon answers quickly (`docker info`); a loaded machine may need \
             fewer clusters in parallel"
                .to_owned()
        }
        _ => return None,
    };
    Some(fix)
}

/// `node `n1`: `, the start of a message about a node.
fn on_node(node: &Option<String>) -> String {
    node.as_ref()
        .map(|node| format!("node `{node}`: "))
        .unwrap_or_default()
}

/// The message's last line, when there is something to do.
fn fix_line(fix: &Option<String>) -> String {
    fix.as_ref()
        .map(|fix| format!("\nfix: {fix}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(stderr: &str) -> CommandError {
        CommandError::Failed {
            line: "docker stop n1".to_owned(),
            code: Some(1),
            stderr: stderr.to_owned(),
        }
    }

    #[test]
    fn a_stopped_daemon_says_to_start_it() {
        let stderr = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the \
                      docker daemon running?";
        let error = DockerError::from_command(None, failed(stderr));
        assert_eq!(error.kind(), DockerErrorKind::DaemonUnreachable);
        assert!(
            error
                .to_string()
                .ends_with(&format!("\nfix: {START_DAEMON}")),
            "{error}"
        );
    }

    #[test]
    fn a_missing_container_names_the_node_and_command() {
        let stderr = "Error response from daemon: No such container: n1";
        let error = DockerError::from_command(Some("n1"), failed(stderr));
        assert_eq!(error.kind(), DockerErrorKind::NoSuchContainer);
        let text = error.to_string();
        let expected = "node `n1`: `docker stop n1` failed with exit code 1:\n  \
                        Error response from daemon: No such container: n1\n\
                        fix: the container `n1` is gone";
        assert!(text.starts_with(expected), "{text}");
    }

    #[test]
    fn a_paused_node_says_to_unpause_it() {
        let stderr = "Error response from daemon: Container abc is paused, unpause the container \
                      before exec";
        let error = DockerError::from_command(Some("n1"), failed(stderr));
        assert_eq!(error.kind(), DockerErrorKind::Paused);
        assert_eq!(error.fix(), Some("unpause it first (`docker unpause n1`)"));
    }
}
