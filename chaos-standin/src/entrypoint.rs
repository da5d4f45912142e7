//! The `entrypoint`: PID 1 of a node container, in place of systemd.
//!
//! It prints the line kind waits for (`Reached target .*Multi-User System.*|detected cgroup
//! v1`, `pkg/cluster/internal/providers/common/cgroups.go`), reaps every orphan, and
//! supervises the two units like systemd units with `Restart=always` (`RestartSec=1s`, as
//! kindest/node's kubelet.service):
//!
//! - `kube-apiserver` runs once kubeadm enabled it (its unit file under /etc/kubernetes, which
//!   survives a container restart);
//! - `kubelet` runs once kubeadm wrote its configuration, unless `systemctl stop kubelet` put
//!   its stopped mark under /run: a fresh tmpfs at each container start, so a restarted
//!   container boots the kubelet again, as systemd does with an enabled unit.
//!
//! Each unit is a child process started through its symlink (`/usr/local/bin/kubelet`, …), so
//! `ps` and `pgrep kubelet` show it by name. Its output goes to PID 1's stdout (`docker logs`)
//! prefixed with the unit's name, and to `/var/log/<unit>.log`. On SIGRTMIN+3 (kind's stop
//! signal, as systemd's) or SIGTERM it stops the units and exits 0.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};

use crate::paths::{Paths, UNITS, write_file};
use crate::systemctl::configured;

/// The line kind waits for before it goes on (systemd's own wording).
pub const READY_LINE: &str = "Reached target multi-user.target - Multi-User System.";

/// systemd's `RestartSec` of kindest/node's units.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// A node booting again (kubeadm had configured it: a `docker start` or `restart`) starts its
/// units this much after boot. On a real node systemd brings containerd up before the kubelet
/// (kindest/node's `kubelet.service`: `After=containerd.service`), and the kubelet's first status
/// comes seconds after boot. Without it the agent would heartbeat within milliseconds of `docker
/// start`, before a fault that outlives the boot (a partition the fault ledger puts back) is in
/// place again, which no real node could.
const REBOOT_DELAY: Duration = Duration::from_secs(3);
/// How long a unit has to exit after SIGTERM before SIGKILL (systemd: 90 s; kept short).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct UnitState {
    pid: Option<i32>,
    /// When SIGTERM was sent.
    stopping: Option<Instant>,
    /// When it last exited (for the restart delay).
    exited: Option<Instant>,
}

/// The executable a unit runs: its symlink in the image, else this binary with the role as
/// first argument.
fn unit_command(unit: &str) -> std::process::Command {
    let link = PathBuf::from("/usr/local/bin").join(unit);
    let own = std::env::current_exe().ok();
    let points_here = std::fs::canonicalize(&link).ok()
        == own.as_ref().and_then(|p| std::fs::canonicalize(p).ok());
    if link.exists() && points_here {
        std::process::Command::new(link)
    } else {
        let mut command =
            std::process::Command::new(own.unwrap_or_else(|| "chaos-node-agent".into()));
        command.arg(unit);
        command
    }
}

fn forward_output(unit: &'static str, stream: impl Read + Send + 'static, log: PathBuf) {
    std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .ok();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            println!("{unit}: {line}");
            if let Some(file) = file.as_mut() {
                let _ = writeln!(file, "{line}");
            }
        }
    });
}

fn spawn_unit(paths: &Paths, unit: &'static str) -> Option<i32> {
    let log = paths.unit_log(unit);
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut command = unit_command(unit);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match command.spawn() {
        Ok(mut child) => {
            let pid = child.id() as i32;
            if let Some(out) = child.stdout.take() {
                forward_output(unit, out, log.clone());
            }
            if let Some(err) = child.stderr.take() {
                forward_output(unit, err, log);
            }
            // Reaped by the waitpid(-1) loop, not through `child`.
            drop(child);
            let _ = write_file(&paths.pid_file(unit), pid.to_string());
            println!("Started {unit}.service (pid {pid}).");
            Some(pid)
        }
        Err(e) => {
            println!("Failed to start {unit}.service: {e}");
            None
        }
    }
}

fn signal_pid(pid: i32, signal: i32) {
    // SAFETY: sending a signal to a child we started.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Reaps every exited child (units and orphans alike); returns the pids that exited.
fn reap() -> Vec<(i32, i32)> {
    let mut exited = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on any child.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return exited;
        }
        exited.push((pid, status));
    }
}

fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("ended ({status})")
    }
}

/// One supervision step: reap, then start or stop each unit as wanted.
fn tick(paths: &Paths, units: &mut HashMap<&'static str, UnitState>, shutting_down: bool) {
    for (pid, status) in reap() {
        for (unit, state) in units.iter_mut() {
            if state.pid == Some(pid) {
                println!("{unit}.service: main process {pid} {}.", describe(status));
                state.pid = None;
                state.stopping = None;
                state.exited = Some(Instant::now());
                let _ = std::fs::remove_file(paths.pid_file(unit));
            }
        }
    }
    for unit in UNITS {
        let state = units.entry(unit).or_default();
        let wanted =
            !shutting_down && configured(paths, unit) && !paths.stopped_mark(unit).exists();
        match (wanted, state.pid) {
            (true, None) => {
                let delay_over = state.exited.is_none_or(|at| at.elapsed() >= RESTART_DELAY);
                if delay_over {
                    state.pid = spawn_unit(paths, unit);
                    state.exited = state.pid.is_none().then(Instant::now);
                }
            }
            (false, Some(pid)) => match state.stopping {
                None => {
                    println!("Stopping {unit}.service (pid {pid})...");
                    signal_pid(pid, libc::SIGTERM);
                    state.stopping = Some(Instant::now());
                }
                Some(at) if at.elapsed() >= STOP_TIMEOUT => {
                    println!("{unit}.service: did not stop within {STOP_TIMEOUT:?}, killing.");
                    signal_pid(pid, libc::SIGKILL);
                }
                Some(_) => {}
            },
            _ => {}
        }
    }
}

/// PID 1's main. Returns when told to stop, once the units are down.
pub async fn run(paths: &Paths) -> anyhow::Result<()> {
    std::fs::create_dir_all(paths.run_dir())?;
    write_file(
        &paths.run_dir().join("entrypoint.pid"),
        std::process::id().to_string(),
    )?;
    // Stale pid files of a previous boot would name other processes.
    for unit in UNITS {
        let _ = std::fs::remove_file(paths.pid_file(unit));
    }
    println!("{READY_LINE}");
    let _ = std::io::stdout().flush();
    let mut term = signal(SignalKind::terminate())?;
    let mut rtmin3 = signal(SignalKind::from_raw(libc::SIGRTMIN() + 3))?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut units: HashMap<&'static str, UnitState> = HashMap::new();
    let rebooted = UNITS.iter().any(|unit| configured(paths, unit));
    let units_from = Instant::now()
        + if rebooted {
            REBOOT_DELAY
        } else {
            Duration::ZERO
        };
    loop {
        if Instant::now() >= units_from {
            tick(paths, &mut units, false);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = term.recv() => break,
            _ = rtmin3.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    println!("Stopping the node's units...");
    let deadline = Instant::now() + STOP_TIMEOUT + Duration::from_secs(1);
    while units.values().any(|s| s.pid.is_some()) && Instant::now() < deadline {
        tick(paths, &mut units, true);
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("Reached target shutdown.target - System Shutdown.");
    Ok(())
}
