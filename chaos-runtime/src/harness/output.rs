//! Whole lines on the terminal. Every `chaos:` line goes to stderr in one write; and while tests
//! run, if stdout and stderr are the same file (one terminal, one CI log, one pipe), stdout is
//! relayed line by line, so that a `chaos:` line never lands inside a test's line.
//!
//! Why the relay: libtest-mimic prints a test's line in pieces. `Printer::print_test` writes
//! `test NAME ... ` and flushes it, and `print_single_outcome` writes `ok` and the newline later
//! (libtest-mimic 0.8 `src/printer.rs`); with one test thread it even runs the test between the
//! two (`src/lib.rs`, `run`: "Print `test foo ...`, run the test, then print the outcome in the
//! same line"). A line written to stderr meanwhile lands inside it. While the relay runs, fd 1 is
//! a pipe that a thread of ours reads; it writes only whole lines to the real stdout, taking the
//! same turn as the `chaos:` lines (and the live progress display steps aside for both).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::progress;

/// One writer at a time on the terminal: a `chaos:` line or a batch of whole stdout lines.
static TURN: Mutex<()> = Mutex::new(());

/// The relay running now, if any.
static RELAY: Mutex<Option<Running>> = Mutex::new(None);

/// How long the end of the run waits for the relay to pass on what is left in its pipe (a child
/// process that inherited stdout and still runs keeps the pipe open: then it stops waiting).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Writes `text`, whole lines, to stderr in one write, never inside a line of stdout.
pub(crate) fn to_stderr(text: &str) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    progress::aside(|| {
        // Stderr is unbuffered: one `write_all` of the whole text is one write(2) for it.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    });
}

/// Writes whole lines to the real stdout, in the same turns as [`to_stderr`].
fn to_stdout(out: &File, lines: &[u8]) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    progress::aside(|| {
        let mut out = out;
        let _ = out.write_all(lines);
    });
}

/// Bytes in, whole lines out: what the relay holds back until its line ends.
#[derive(Default)]
pub(crate) struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Takes `bytes`; returns every line they complete (with its newline), in one piece.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.pending.extend_from_slice(bytes);
        let end = self.pending.iter().rposition(|&b| b == b'\n')? + 1;
        let rest = self.pending.split_off(end);
        Some(std::mem::replace(&mut self.pending, rest))
    }

    /// What is left at the end: a last line without its newline.
    pub(crate) fn rest(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }
}

struct Running {
    /// The real stdout, put back on fd 1 at the end.
    saved: Arc<File>,
    /// Said by the relay's thread once it has passed everything on.
    done: mpsc::Receiver<()>,
}

/// Stops the relay when dropped (the normal end of a run; also when the harness unwinds).
pub(crate) struct Relay(());

impl Drop for Relay {
    fn drop(&mut self) {
        stop_relay();
    }
}

/// Starts relaying stdout if stdout and stderr are the same file; `None` if they are not (each
/// goes its own way, and nothing can land inside anything) or if the relay cannot be set up (then
/// output is as before, and says so).
pub(crate) fn relay_stdout() -> Option<Relay> {
    if !same_file(1, 2) {
        return None;
    }
    match start_relay() {
        Ok(()) => Some(Relay(())),
        Err(err) => {
            progress::say(format!(
                "could not relay stdout ({err}): a `chaos:` line may land inside a test's line"
            ));
            None
        }
    }
}

fn start_relay() -> std::io::Result<()> {
    let mut relay = RELAY.lock().unwrap_or_else(|e| e.into_inner());
    if relay.is_some() {
        return Ok(());
    }
    let _ = std::io::stdout().flush();
    let (mut reader, writer) = std::io::pipe()?;
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` on fd 1 returns a new descriptor (or -1), which we own.
    let saved = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
    if saved < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `saved` was just made and is owned by nothing else.
    let saved = Arc::new(File::from(unsafe { OwnedFd::from_raw_fd(saved) }));
    // SAFETY: both descriptors are open; fd 1 now refers to the pipe.
    if unsafe { libc::dup2(writer.as_raw_fd(), 1) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    drop(writer); // fd 1 holds the pipe's write end now.
    let (done_tx, done) = mpsc::channel();
    let out = saved.clone();
    let spawned = std::thread::Builder::new()
        .name("chaos-stdout".into())
        .spawn(move || {
            let mut lines = Lines::default();
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if let Some(whole) = lines.push(&buf[..n]) {
                            to_stdout(&out, &whole);
                        }
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if let Some(rest) = lines.rest() {
                to_stdout(&out, &rest);
            }
            let _ = done_tx.send(());
        });
    if let Err(err) = spawned {
        // Put stdout back as it was.
        // SAFETY: both descriptors are open.
        unsafe { libc::dup2(saved.as_raw_fd(), 1) };
        return Err(err);
    }
    *relay = Some(Running { saved, done });
    Ok(())
}

/// Puts the real stdout back on fd 1 and waits (a bounded time) until the relay has passed on
/// what it still holds. Does nothing if no relay runs; called at the end of a run, and before the
/// process exits at once (a second signal).
pub(crate) fn stop_relay() {
    let Some(running) = RELAY.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let _ = std::io::stdout().flush();
    // SAFETY: both descriptors are open; this closes fd 1's hold on the pipe, so the relay's
    // thread reads to its end.
    unsafe { libc::dup2(running.saved.as_raw_fd(), 1) };
    let _ = running.done.recv_timeout(DRAIN_LIMIT);
}

/// Whether descriptors `a` and `b` are the same file (the same terminal, pipe or log file).
fn same_file(a: i32, b: i32) -> bool {
    let stat = |fd: i32| {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `fstat` fills `st` when it returns 0.
        (unsafe { libc::fstat(fd, st.as_mut_ptr()) } == 0)
            .then(|| unsafe { st.assume_init() })
            .map(|st| (st.st_dev, st.st_ino))
    };
    matches!((stat(a), stat(b)), (Some(x), Some(y)) if x == y)
}

/// The colour choice libtest-mimic would make for the real stdout: made before the relay puts a
/// pipe there (`--color auto` colours only a terminal), so colours stay as they would have been.
pub(crate) fn keep_colour(args: &mut libtest_mimic::Arguments) {
    use libtest_mimic::ColorSetting;
    if args.color.is_none() {
        args.color = Some(match anstream::AutoStream::choice(&std::io::stdout()) {
            anstream::ColorChoice::Always | anstream::ColorChoice::AlwaysAnsi => {
                ColorSetting::Always
            }
            _ => ColorSetting::Never,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_lines_come_out_and_the_rest_at_the_end() {
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"test [1m1w] a ... "), None);
        assert_eq!(
            lines.push(b"ok\ntest [1m1w] b"),
            Some(b"test [1m1w] a ... ok\n".to_vec())
        );
        assert_eq!(
            lines.push(b" ... ok\n\nrunning"),
            Some(b"test [1m1w] b ... ok\n\n".to_vec())
        );
        assert_eq!(lines.rest(), Some(b"running".to_vec()));
        assert_eq!(lines.rest(), None);
    }

    #[test]
    fn a_descriptor_is_the_same_file_as_its_duplicate_and_not_as_another() {
        let file = tempfile_in_target("same_file");
        let other = tempfile_in_target("same_file_other");
        // SAFETY: `dup` of an open descriptor.
        let dup = unsafe { OwnedFd::from_raw_fd(libc::dup(file.as_raw_fd())) };
        assert!(same_file(file.as_raw_fd(), dup.as_raw_fd()));
        assert!(!same_file(file.as_raw_fd(), other.as_raw_fd()));
        assert!(!same_file(file.as_raw_fd(), -1));
    }

    fn tempfile_in_target(name: &str) -> File {
        let dir = crate::dirs::chaos_dir().join("unit-output");
        std::fs::create_dir_all(&dir).unwrap();
        File::create(dir.join(format!("{name}-{}", std::process::id()))).unwrap()
    }
}
