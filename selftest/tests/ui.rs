//! Compile errors of `#[chaos_test]` that come from the runtime's own types, checked against the
//! real `chaos-runtime`: a result whose error does not convert (`IntoTestResult`) and a future that
//! is not `Send` (`TestFuture`). One case per file in `ui/`, rustc's expected output beside it.
//!
//! The other compile errors of the attribute are trybuild cases in `chaos-macros/tests/ui/`,
//! against a stand-in for the runtime: trybuild builds the dependencies of its cases again, in a
//! target directory and with flags of its own, which for the real runtime means kube, k8s-openapi,
//! tokio and the rest, twice. These cases instead run rustc on their own, in check mode, against
//! the runtime and anyhow that Cargo built for this test (the newest of their rlibs in
//! `target/<profile>/deps/`), so they cost a second or two. Their rendering of types (`StdError`,
//! `std::string::String`) depends on the crates in the graph, which is why they need the real
//! runtime.
//!
//! `.stderr` holds rustc's output, normalized as trybuild does for these cases: the case as
//! `$DIR/ui/<case>.rs` (`ui/<case>.rs` after ` --> `), the workspace as `$WORKSPACE`, and no line
//! numbers in files other than the case (nor the wider gutter they need), so that edits elsewhere
//! in the runtime do not change it. Regenerate with
//! `CHAOS_UI=overwrite cargo test -p chaos-selftest --test ui`, and read the diff.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest `lib<name>-<hash>.rlib` beside this test's executable: when builds with different
/// features left several, the one Cargo built last, normally for this run.
fn rlib(deps: &Path, name: &str) -> PathBuf {
    let prefix = format!("lib{name}-");
    std::fs::read_dir(deps)
        .expect("the deps directory")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let file = path.file_name().and_then(OsStr::to_str).unwrap_or_default();
            file.starts_with(&prefix) && file.ends_with(".rlib")
        })
        .max_by_key(|path| path.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no {prefix}*.rlib in {}", deps.display()))
}

/// rustc's output, with the paths made portable (see the module's comment).
fn normalize(stderr: &str, dir: &Path, workspace: &Path) -> String {
    let dir = format!("{}/", dir.display());
    let workspace = format!("{}/", workspace.display());
    let mut out = Vec::new();
    // Whether the snippet being printed is of a file other than the case.
    let mut elsewhere = false;
    for line in stderr.lines() {
        if line.starts_with("error: aborting due to")
            || line.starts_with("For more information about")
            || line.starts_with("Some errors have detailed explanations")
        {
            continue;
        }
        let line = line
            .replace(&dir, "$DIR/")
            .replace(&workspace, "$WORKSPACE/");
        if let Some((indent, path)) = line.split_once("--> ")
            && indent.trim().is_empty()
        {
            if let Some(case) = path.strip_prefix("$DIR/") {
                elsewhere = false;
                out.push(format!("{indent}--> {case}"));
            } else {
                elsewhere = true;
                // `path:line:column`, without the line and column; Cargo gives rustc the
                // workspace's sources relative to the workspace.
                let file = path.split(':').next().unwrap_or(path);
                let root = if file.starts_with('$') || file.starts_with('/') {
                    ""
                } else {
                    "$WORKSPACE/"
                };
                out.push(format!("{indent}--> {root}{file}"));
            }
            continue;
        }
        if elsewhere {
            // The gutter's line number, `45 | ...`, becomes blanks.
            let digits = line
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .count();
            if digits > 0 && line.trim_start()[digits..].starts_with(" |") {
                let start = line.len() - line.trim_start().len();
                out.push(format!(
                    "{}{}",
                    &line[..start + digits].replace(|c: char| c.is_ascii_digit(), " "),
                    &line[start + digits..]
                ));
                continue;
            }
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    // The gutter is as wide as the longest line number, also one of another file: narrowed to
    // what the case's own numbers need (the width of ` --> `'s indent, one for up to 9 lines).
    let indent = |l: &String| l.len() - l.trim_start().len();
    let arrows = out.iter().filter(|l| l.trim_start().starts_with("--> "));
    let extra = arrows.map(indent).min().unwrap_or(1).saturating_sub(1);
    for line in &mut out {
        if indent(line) >= extra {
            line.drain(..extra);
        }
    }
    out.join("\n") + "\n"
}

#[test]
fn ui() {
    let exe = std::env::current_exe().expect("the test's path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let (runtime, anyhow) = (rlib(deps, "chaos_runtime"), rlib(deps, "anyhow"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = dir.parent().expect("the workspace");
    let out_dir = std::env::temp_dir().join(format!("chaos-selftest-ui-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("a scratch directory");
    let overwrite = std::env::var_os("CHAOS_UI").is_some_and(|v| v == "overwrite");

    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir.join("ui"))
        .expect("ui/")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension() == Some(OsStr::new("rs")))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in ui/");
    let mut failures = Vec::new();
    for case in &cases {
        let output = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
            // Where Cargo ran rustc for the runtime, so that rustc finds its sources to quote.
            .current_dir(workspace)
            .arg(case)
            .args([
                "--edition",
                "2024",
                "--crate-type",
                "bin",
                "--emit",
                "metadata",
            ])
            .args(["--error-format", "human", "--color", "never"])
            .args(["--diagnostic-width", "140", "-A", "dead_code"])
            .arg("--out-dir")
            .arg(&out_dir)
            .arg("--extern")
            .arg(format!("chaos_runtime={}", runtime.display()))
            .arg("--extern")
            .arg(format!("anyhow={}", anyhow.display()))
            .arg("-L")
            .arg(format!("dependency={}", deps.display()))
            .output()
            .expect("rustc runs");
        let actual = normalize(&String::from_utf8_lossy(&output.stderr), dir, workspace);
        let expected_path = case.with_extension("stderr");
        if output.status.success() {
            failures.push(format!(
                "{} compiled, and must not:\n{actual}",
                case.display()
            ));
            continue;
        }
        if overwrite {
            std::fs::write(&expected_path, &actual).expect("writes the .stderr");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}: rustc's output differs from {}\n--- expected\n{expected}--- actual\n{actual}",
                case.display(),
                expected_path.display()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(
        failures.is_empty(),
        "{}\n(CHAOS_UI=overwrite rewrites the .stderr files; read the diff)",
        failures.join("\n")
    );
}
