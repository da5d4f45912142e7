//! `systemctl`, for the two units PID 1 supervises (`kubelet`, `kube-apiserver`).
//!
//! It talks to PID 1 ([`crate::entrypoint`]) through files under `/run/chaos-standin`: a
//! `<unit>.stopped` mark keeps a unit down, and PID 1 writes `<unit>.pid` while the unit runs.
//! `stop` returns once the process is gone, `start` once it runs, each within 10 s.

use std::time::Duration;

use anyhow::bail;

use crate::paths::{Paths, UNITS, read_file, write_file};

/// What `systemctl` was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `start UNIT...`
    Start,
    /// `stop UNIT...`
    Stop,
    /// `restart UNIT...`
    Restart,
    /// `is-active UNIT...`
    IsActive,
    /// `enable UNIT...`
    Enable,
    /// `daemon-reload`
    DaemonReload,
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The verb.
    pub action: Action,
    /// The units, without `.service`.
    pub units: Vec<String>,
    /// `-q`/`--quiet`: is-active prints nothing.
    pub quiet: bool,
}

/// How long `start` and `stop` wait for PID 1.
pub const WAIT: Duration = Duration::from_secs(10);

/// The outcome of a command: an exit code and what to print on stdout.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Parses `systemctl` arguments.
pub fn parse(args: &[String]) -> anyhow::Result<Command> {
    let mut action = None;
    let mut units = Vec::new();
    let mut quiet = false;
    for arg in args {
        match arg.as_str() {
            "-q" | "--quiet" => quiet = true,
            "--no-pager" => {}
            flag if flag.starts_with('-') => {
                return crate::unsupported(format!("the systemctl flag {flag}"));
            }
            verb if action.is_none() => {
                action = Some(match verb {
                    "start" => Action::Start,
                    "stop" => Action::Stop,
                    "restart" => Action::Restart,
                    "is-active" => Action::IsActive,
                    "enable" => Action::Enable,
                    "daemon-reload" => Action::DaemonReload,
                    other => return crate::unsupported(format!("systemctl {other}")),
                });
            }
            unit => units.push(unit.strip_suffix(".service").unwrap_or(unit).to_string()),
        }
    }
    let Some(action) = action else {
        return crate::unsupported("systemctl without a command");
    };
    match (&action, units.is_empty()) {
        (Action::DaemonReload, false) => bail!("systemctl daemon-reload takes no unit"),
        (Action::DaemonReload, true) => {}
        (_, true) => bail!("systemctl {action:?} needs a unit"),
        _ => {}
    }
    Ok(Command {
        action,
        units,
        quiet,
    })
}

/// The live process of a unit, from PID 1's pid file.
pub fn main_pid(paths: &Paths, unit: &str) -> Option<i32> {
    let pid: i32 = read_file(&paths.pid_file(unit)).ok()?.trim().parse().ok()?;
    process_alive(pid).then_some(pid)
}

/// Whether `pid` is a live (not zombie) process.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command in parentheses: `Z` is a zombie, `X` dead.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether the unit can run: kubeadm wrote the kubelet's configuration, or enabled
/// kube-apiserver.
pub fn configured(paths: &Paths, unit: &str) -> bool {
    match unit {
        "kubelet" => paths.kubelet_conf().exists() && paths.kubelet_flags().exists(),
        _ => paths.apiserver_unit().exists(),
    }
}

fn entrypoint_running(paths: &Paths) -> anyhow::Result<()> {
    let pid_file = paths.run_dir().join("entrypoint.pid");
    match read_file(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
    {
        Some(pid) if process_alive(pid) => Ok(()),
        _ => bail!(
            "no chaos-standin entrypoint supervises units here ({} names no live process)",
            pid_file.display()
        ),
    }
}

/// Starts a unit and waits until it runs.
pub async fn start(paths: &Paths, unit: &str) -> anyhow::Result<()> {
    entrypoint_running(paths)?;
    if !configured(paths, unit) {
        bail!(
            "{unit} has no configuration yet: in the stand-in, kubeadm init/join configures and enables it"
        );
    }
    let _ = std::fs::remove_file(paths.stopped_mark(unit));
    crate::wait::until(
        &format!("{unit} to run"),
        WAIT,
        Duration::from_millis(100),
        || async {
            match main_pid(paths, unit) {
                Some(_) => Ok(Some(())),
                None => Err(format!("{unit} not running yet")),
            }
        },
    )
    .await?;
    Ok(())
}

/// Stops a unit and waits until its process is gone.
pub async fn stop(paths: &Paths, unit: &str) -> anyhow::Result<()> {
    write_file(&paths.stopped_mark(unit), "")?;
    crate::wait::until(
        &format!("{unit} to stop"),
        WAIT,
        Duration::from_millis(100),
        || async {
            match main_pid(paths, unit) {
                Some(pid) => Err(format!("{unit} still running as pid {pid}")),
                None => Ok(Some(())),
            }
        },
    )
    .await
}

/// Runs a parsed command.
pub async fn run(paths: &Paths, command: &Command) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome {
        code: 0,
        stdout: String::new(),
        stderr: String::new(),
    };
    for unit in &command.units {
        if !UNITS.contains(&unit.as_str()) {
            outcome.code = 5;
            outcome.stderr = format!("Unit {unit}.service not found.\n");
            return Ok(outcome);
        }
    }
    for unit in &command.units {
        match command.action {
            Action::Start => start(paths, unit).await?,
            Action::Stop => stop(paths, unit).await?,
            Action::Restart => {
                stop(paths, unit).await?;
                start(paths, unit).await?;
            }
            Action::IsActive => {
                let active = main_pid(paths, unit).is_some();
                if !command.quiet {
                    outcome
                        .stdout
                        .push_str(if active { "active\n" } else { "inactive\n" });
                }
                if !active {
                    outcome.code = 3;
                }
            }
            // kubelet.service is enabled in the image, as in kindest/node; kube-apiserver is
            // enabled by kubeadm, which knows how it must run.
            Action::Enable if unit == "kubelet" || configured(paths, unit) => {}
            Action::Enable => bail!(
                "kube-apiserver is enabled by kubeadm init/join in the stand-in (it needs to know how to run)"
            ),
            Action::DaemonReload => {}
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn verbs_and_units() {
        let c = parse(&args("stop kubelet.service")).unwrap();
        assert_eq!(c.action, Action::Stop);
        assert_eq!(c.units, ["kubelet"]);
        let c = parse(&args("is-active -q kube-apiserver")).unwrap();
        assert_eq!(c.action, Action::IsActive);
        assert!(c.quiet);
        assert_eq!(
            parse(&args("daemon-reload")).unwrap().action,
            Action::DaemonReload
        );
    }

    #[test]
    fn what_is_not_supported_says_so() {
        for line in [
            "mask kubelet",
            "start --user kubelet",
            "",
            "daemon-reload kubelet",
            "start",
        ] {
            assert!(parse(&args(line)).is_err(), "{line:?}");
        }
        let err = parse(&args("mask kubelet")).unwrap_err().to_string();
        assert!(err.contains("does not support systemctl mask"), "{err}");
    }

    #[tokio::test]
    async fn unknown_units_are_not_found() {
        let paths = Paths::new(std::env::temp_dir().join("standin-systemctl-none"));
        let outcome = run(&paths, &parse(&args("restart containerd")).unwrap())
            .await
            .unwrap();
        assert_eq!(outcome.code, 5);
        assert_eq!(outcome.stderr, "Unit containerd.service not found.\n");
        let outcome = run(&paths, &parse(&args("is-active kubelet")).unwrap())
            .await
            .unwrap();
        assert_eq!((outcome.code, outcome.stdout.as_str()), (3, "inactive\n"));
    }
}
