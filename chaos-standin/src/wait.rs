//! Waiting with a deadline that says what it waited for and what it saw last.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every `every` until it returns `Ok(Some(value))`, or fails after `timeout`
/// naming `what` and the last thing seen (the last `Err`, or the last `Ok(None)`'s note).
pub async fn until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("nothing yet");
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(seen) => last = seen,
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(every).await;
    }
}
