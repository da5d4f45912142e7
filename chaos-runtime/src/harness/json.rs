//! `--format json`: test names that keep their topology, and failures in plain text.
//!
//! libtest-mimic's JSON events carry a trial's name but not its kind (0.8 `src/printer.rs`:
//! `print_test` and `print_single_outcome` write `"name": escape(name)`), where the pretty output
//! and `--list` show `[kind] name`; the harness puts a test's topology in the kind. Under JSON
//! the topology goes into the name instead: `[1m1w-k8s1.35] module::test`, the same text a user
//! reads in the pretty output. A failure goes into the event's `stdout` as an escaped string, so
//! colour codes in it would reach the reader as `\u001b[31m`: they are taken out.

use libtest_mimic::{Arguments, FormatSetting};

/// Whether the run prints JSON events.
pub(crate) fn is_json(args: &Arguments) -> bool {
    matches!(args.format, Some(FormatSetting::Json))
}

/// A trial's name and kind for the test `name` on the topology `label`.
pub(crate) fn trial_name(name: &str, label: &str, json: bool) -> (String, String) {
    match json {
        true => (format!("[{label}] {name}"), String::new()),
        false => (name.to_owned(), label.to_owned()),
    }
}

/// Under JSON, an exact filter or skip that is a test's bare name (the form the reproduce command
/// prints) is turned into the trial's name, `[label] name`: libtest-mimic matches an exact filter
/// against a trial's name or `[kind] name` only (0.8 `src/lib.rs`, `is_filtered_out`), and under
/// JSON the kind is empty. `tests`: each test's `(name, label)`.
pub(crate) fn exact_names(args: &mut Arguments, tests: &[(&str, String)]) {
    if !is_json(args) || !args.exact {
        return;
    }
    let full = |text: &mut String| {
        if let Some((name, label)) = tests.iter().find(|(name, _)| *name == text.as_str()) {
            *text = format!("[{label}] {name}");
        }
    };
    if let Some(filter) = &mut args.filter {
        full(filter);
    }
    args.skip.iter_mut().for_each(full);
}

/// `message` without ANSI escape sequences.
pub(crate) fn plain(message: &str) -> String {
    anstream::adapter::strip_str(message).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use libtest_mimic::Trial;

    fn json_args(extra: &[&str]) -> Arguments {
        let mut argv = vec!["suite", "--format", "json"];
        argv.extend_from_slice(extra);
        Arguments::from_iter(argv)
    }

    #[test]
    fn under_json_the_name_carries_the_topology_and_the_kind_is_empty() {
        assert_eq!(
            trial_name("nodes::kill", "1m1w-k8s1.35", true),
            ("[1m1w-k8s1.35] nodes::kill".to_owned(), String::new())
        );
        assert_eq!(
            trial_name("nodes::kill", "1m1w-k8s1.35", false),
            ("nodes::kill".to_owned(), "1m1w-k8s1.35".to_owned())
        );
    }

    #[test]
    fn an_exact_bare_name_still_selects_its_test_under_json() {
        let tests = [
            ("a", "1m1w-k8s1.35".to_owned()),
            ("b", "3m3w-k8s1.35".to_owned()),
        ];
        let trial = |name: &str, label: &str| {
            let (name, kind) = trial_name(name, label, true);
            Trial::test(name, || Ok(())).with_kind(kind)
        };
        let mut args = json_args(&["--exact", "a", "--skip", "b"]);
        exact_names(&mut args, &tests);
        assert!(!args.is_filtered_out(&trial("a", "1m1w-k8s1.35")));
        assert!(args.is_filtered_out(&trial("b", "3m3w-k8s1.35")));
        // The full name works as it is.
        let mut args = json_args(&["--exact", "[1m1w-k8s1.35] a"]);
        exact_names(&mut args, &tests);
        assert!(!args.is_filtered_out(&trial("a", "1m1w-k8s1.35")));
        // Not JSON: nothing to translate.
        let mut args = Arguments::from_iter(["suite", "--exact", "a"]);
        exact_names(&mut args, &tests);
        assert_eq!(args.filter.as_deref(), Some("a"));
    }

    #[test]
    fn colour_codes_are_taken_out_of_failures() {
        assert_eq!(
            plain("\u{1b}[31mleft\u{1b}[0m != \u{1b}[32mright\u{1b}[0m"),
            "left != right"
        );
    }
}
