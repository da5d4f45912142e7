//! Running the CLIs we drive (kind, docker): always with a timeout, and with errors that say which
//! command failed, how, what it printed last, and what to do about a missing binary.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A command line to run.
#[derive(Clone, Debug)]
pub(crate) struct Cmd {
    program: String,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    /// Variables set for the child on top of ours.
    env: Vec<(String, String)>,
    timeout: Duration,
    /// What to tell the user when the program is not installed.
    install_hint: Option<&'static str>,
}

/// What a successful command printed on stdout (its stderr goes to `run_streaming`'s callback).
#[derive(Debug)]
pub(crate) struct Output {
    pub stdout: String,
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    /// The program is not installed; `hint` says how to install it.
    #[error("`{program}` is not installed or not on PATH{}", .hint.map(|h| format!("; {h}")).unwrap_or_default())]
    NotFound {
        program: String,
        hint: Option<&'static str>,
    },
    /// It ran past its timeout and was killed.
    #[error("`{line}` did not finish within {}", humantime::format_duration(*.timeout))]
    TimedOut { line: String, timeout: Duration },
    /// It exited unsuccessfully (`code: None`: killed by a signal); the message ends with the
    /// last lines of its stderr.
    #[error("{}", failed(.line, *.code, .stderr))]
    Failed {
        line: String,
        code: Option<i32>,
        stderr: String,
    },
    /// It could not be started, or its pipes failed.
    #[error("could not run `{line}`: {error}")]
    Io { line: String, error: std::io::Error },
}

/// [`CommandError::Failed`]'s message.
fn failed(line: &str, code: Option<i32>, stderr: &str) -> String {
    let mut message = match code {
        Some(code) => format!("`{line}` failed with exit code {code}"),
        None => format!("`{line}` was killed by a signal"),
    };
    let tail = last_lines(stderr, 12);
    if !tail.is_empty() {
        message.push_str(":\n");
        message.push_str(&tail);
    }
    message
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            stdin: None,
            env: Vec::new(),
            timeout: Duration::from_secs(60),
            install_hint: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Sets `key` in the child's environment.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn install_hint(mut self, hint: &'static str) -> Self {
        self.install_hint = Some(hint);
        self
    }

    /// The command as a shell line, for messages.
    pub fn line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the command to its end; a non-zero exit is an error carrying its stderr. The process
    /// is killed if the timeout passes or the future is dropped.
    pub async fn run(&self) -> Result<Output, CommandError> {
        self.run_streaming(|_| {}).await
    }

    /// As [`Cmd::run`], handing each line of stderr to `on_line` as it comes (kind writes its
    /// progress there).
    pub async fn run_streaming(
        &self,
        mut on_line: impl FnMut(&str),
    ) -> Result<Output, CommandError> {
        let line = self.line();
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // A group of its own: a Ctrl-C in the terminal reaches the harness, which decides
            // (a teardown's `docker` must not die with it), and a stopped command's children
            // (kind's `docker run`s) can be killed with it.
            .process_group(0)
            .spawn()
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => CommandError::NotFound {
                    program: self.program.clone(),
                    hint: self.install_hint,
                },
                _ => CommandError::Io {
                    line: line.clone(),
                    error,
                },
            })?;
        let mut group = GroupKill(child.id());
        if let (Some(input), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
            pipe.write_all(input)
                .await
                .map_err(|error| CommandError::Io {
                    line: line.clone(),
                    error,
                })?;
        }
        let (Some(mut stdout_pipe), Some(stderr_pipe)) = (child.stdout.take(), child.stderr.take())
        else {
            unreachable!("both pipes were requested");
        };
        let io = |error| CommandError::Io {
            line: line.clone(),
            error,
        };
        let finished = async {
            let mut stdout = Vec::new();
            let mut stderr = String::new();
            let mut lines = BufReader::new(stderr_pipe).lines();
            let read_stdout = stdout_pipe.read_to_end(&mut stdout);
            let read_stderr = async {
                while let Some(text) = lines.next_line().await? {
                    on_line(&text);
                    stderr.push_str(&text);
                    stderr.push('\n');
                }
                Ok::<(), std::io::Error>(())
            };
            let (out, err) = tokio::join!(read_stdout, read_stderr);
            out.map_err(io)?;
            err.map_err(io)?;
            let status = child.wait().await.map_err(io)?;
            group.0 = None; // Ended: its group id may be reused.
            Ok::<_, CommandError>((status, stdout, stderr))
        };
        let (status, stdout, stderr) = match tokio::time::timeout(self.timeout, finished).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(CommandError::TimedOut {
                    line,
                    timeout: self.timeout,
                });
            }
        };
        let stdout = String::from_utf8_lossy(&stdout).into_owned();
        match status.success() {
            true => Ok(Output { stdout }),
            false => Err(CommandError::Failed {
                line,
                code: status.code(),
                stderr,
            }),
        }
    }
}

/// Kills a command's whole process group when dropped before the command ended (timeout, or the
/// future dropped on a signal): a killed `kind create` must not leave its `docker run`s going.
struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: a plain syscall; the group is the one `process_group(0)` made for the
            // child, which has not been reaped yet (`wait` clears `self.0`).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }
}

/// The last `n` non-empty lines of `text`, indented.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_stdout_and_feeds_stdin() {
        let out = Cmd::new("sh")
            .args(["-c", "cat; echo err >&2"])
            .stdin("hello")
            .run()
            .await
            .unwrap();
        assert_eq!(out.stdout, "hello");
    }

    #[tokio::test]
    async fn a_failure_names_the_command_code_and_last_stderr() {
        let err = Cmd::new("sh")
            .args(["-c", "echo one >&2; echo two >&2; exit 3"])
            .run()
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sh -c echo one >&2; echo two >&2; exit 3` failed with exit code 3:\n  one\n  two"
        );
    }

    #[tokio::test]
    async fn a_missing_program_says_how_to_install_it() {
        let err = Cmd::new("no-such-tool-xyz")
            .install_hint("run scripts/install-it")
            .run()
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`no-such-tool-xyz` is not installed or not on PATH; run scripts/install-it"
        );
    }

    #[tokio::test]
    async fn streams_stderr_lines_as_they_come() {
        let mut seen = Vec::new();
        let out = Cmd::new("sh")
            .args(["-c", "echo a >&2; echo out; echo b >&2"])
            .run_streaming(|l| seen.push(l.to_owned()))
            .await
            .unwrap();
        assert_eq!(seen, ["a", "b"]);
        assert_eq!(out.stdout, "out\n");
    }

    #[tokio::test]
    async fn a_hanging_command_times_out() {
        let err = Cmd::new("sleep")
            .arg("5")
            .timeout(Duration::from_millis(100))
            .run()
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err}");
        assert_eq!(err.to_string(), "`sleep 5` did not finish within 100ms");
    }
}
