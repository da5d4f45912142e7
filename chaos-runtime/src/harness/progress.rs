//! Progress on stderr while slow things happen, so a long cluster creation never looks like a hang.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a still-running step reports.
const EVERY: Duration = Duration::from_secs(10);

pub(crate) fn say(line: impl AsRef<str>) {
    eprintln!("chaos: {}", line.as_ref());
}

/// Runs `step`, saying `what` with the elapsed seconds every few seconds until it ends.
pub(crate) async fn reporting<T>(what: &str, step: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let mut step = std::pin::pin!(step);
    let mut ticker = tokio::time::interval_at((start + EVERY).into(), EVERY);
    loop {
        tokio::select! {
            out = &mut step => return out,
            _ = ticker.tick() => say(format!("{what} ({}s)", start.elapsed().as_secs())),
        }
    }
}
