//! Which kind release to plan for.

use chaos_runtime::__kind::images::{self, KindRelease};

/// The release of the `kind` on PATH, else the newest release this build knows; says on stderr
/// when it assumes one, and when this build does not know the release's images.
pub(crate) fn installed_or_newest() -> KindRelease {
    let installed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(images::installed_release()));
    let release = installed.unwrap_or_else(|err| {
        let newest = KindRelease::newest_known();
        eprintln!("note: {err:#}; planning for kind {newest}, the newest release this build knows");
        newest
    });
    if let Some(warning) = release.warning() {
        eprintln!("warning: {warning}");
    }
    release
}
