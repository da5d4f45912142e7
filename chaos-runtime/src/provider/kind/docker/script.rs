//! Shell scripts run inside a node with one `docker exec`: several iptables or tc steps cost one
//! round trip instead of one each, and a failing step is still named in the error.

use crate::command::{CommandError, last_lines};

use super::error::{DockerError, DockerErrorKind, stderr_of};

/// What a failing step prints before exiting, so the error can say which step it was.
const FAILED_MARKER: &str = "chaos-step-failed: ";

/// A POSIX shell script made of steps; the first failing step stops it.
pub(crate) struct Script {
    lines: Vec<String>,
}

impl Script {
    pub fn new() -> Self {
        let fail = format!("fail() {{ echo \"{FAILED_MARKER}$*\" >&2; exit 1; }}");
        Script { lines: vec![fail] }
    }

    /// `command` must succeed.
    pub fn must(&mut self, command: &[&str]) -> &mut Self {
        let line = must(command);
        self.lines.push(line);
        self
    }

    /// `command` must succeed, and runs only if `condition` (a shell condition) holds.
    pub fn must_if(&mut self, condition: &str, command: &[&str]) -> &mut Self {
        let line = format!("if {condition}; then {}; fi", must(command));
        self.lines.push(line);
        self
    }

    /// Any shell line; its failures are not checked.
    pub fn line(&mut self, line: impl Into<String>) -> &mut Self {
        self.lines.push(line.into());
        self
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The error for a failed run: the failing step and its output if a step failed, else what
    /// `docker exec` itself reported (node stopped, paused, gone).
    pub fn error(&self, node: &str, error: CommandError) -> DockerError {
        let Some(stderr) = stderr_of(&error) else {
            return DockerError::from_command(Some(node), error);
        };
        let Some(step) = stderr.lines().find_map(|l| l.strip_prefix(FAILED_MARKER)) else {
            return DockerError::from_command(Some(node), error);
        };
        let output: String = stderr
            .lines()
            .filter(|l| !l.starts_with(FAILED_MARKER))
            .map(|l| format!("{l}\n"))
            .collect();
        let failed = format!("`{step}` failed (in `docker exec {node} sh -c …`)");
        let message = match last_lines(&output, 12) {
            tail if tail.is_empty() => failed,
            tail => format!("{failed}:\n{tail}"),
        };
        DockerError::new(DockerErrorKind::CommandFailed, Some(node), message)
    }
}

/// `command || fail 'command'`.
fn must(command: &[&str]) -> String {
    let quoted = quote(command);
    format!("{quoted} || fail {}", quote_word(&command.join(" ")))
}

/// Words quoted for the shell, joined by spaces.
pub(crate) fn quote(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| quote_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_word(word: &str) -> String {
    // A NUL cannot reach a command's arguments anyway; shlex refuses to quote one.
    let word = word.replace('\0', "");
    shlex::try_quote(&word)
        .map(|quoted| quoted.into_owned())
        .unwrap_or(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(
            quote(&["iptables", "-A", "X", "-s", "10.0.0.1/32"]),
            "iptables -A X -s 10.0.0.1/32"
        );
        assert_eq!(
            quote(&["echo", "it's", "", "a b"]),
            "echo \"it's\" '' 'a b'"
        );
    }

    #[tokio::test]
    async fn a_quoted_word_reaches_the_command_as_it_was() {
        let words = ["it's", "a b", "$HOME", "x\"y", "", "`id`", "a\\b"];
        let script = format!("printf '%s\\n' {}", quote(&words));
        let output = crate::command::Cmd::new("sh")
            .args(["-c", &script])
            .run()
            .await
            .unwrap();
        assert_eq!(output.stdout, format!("{}\n", words.join("\n")));
    }

    #[tokio::test]
    async fn a_failing_step_is_named_with_its_output() {
        let mut script = Script::new();
        script
            .must(&["true"])
            .must(&["sh", "-c", "echo boom >&2; exit 3"])
            .must(&["true"]);
        let error = crate::command::Cmd::new("sh")
            .args(["-c", &script.text()])
            .run()
            .await
            .unwrap_err();
        let error = script.error("n1", error);
        assert_eq!(
            error.to_string(),
            "node `n1`: `sh -c echo boom >&2; exit 3` failed (in `docker exec n1 sh -c …`):\n  \
             boom"
        );
    }

    #[tokio::test]
    async fn a_guarded_step_runs_only_when_its_condition_holds() {
        let mut script = Script::new();
        script
            .must_if("false", &["false"])
            .must_if("true", &["echo", "ran"]);
        let output = crate::command::Cmd::new("sh")
            .args(["-c", &script.text()])
            .run()
            .await
            .unwrap();
        assert_eq!(output.stdout, "ran\n");
    }
}
