//! `vexil check`: the summary, every error on its own line, exit codes and `--json`.

use serde_json::{Value, json};
use vexil_testkit::{Run, Workdir};

use crate::VEXIL;

const GOOD: &str = "\
dark_mode:
  default: false
  soak_period_hours: 0
  description: Offer the dark colour scheme
  risk: low
billing_v2:
  default: false
  soak_period_hours: 48
  description: \"New billing pipeline — façade\"
  risk: high
";

/// Writes `yaml` as `feature_flags.yaml` and runs `vexil check` with `args`.
fn check(yaml: &str, args: &[&str]) -> Run {
    let dir = Workdir::new();
    dir.write("feature_flags.yaml", yaml);
    dir.run(VEXIL, [&["check"], args].concat())
}

#[test]
fn a_good_file_prints_one_summary_line() {
    let run = check(GOOD, &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "feature_flags.yaml: 2 flags (1 low, 0 medium, 1 high)\n"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn the_example_file_is_valid() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/feature_flags.yaml"
    );
    let run = Workdir::new().run(VEXIL, ["check", "--flags", example]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .ends_with("feature_flags.yaml: 12 flags (5 low, 4 medium, 3 high)\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_file_comes_from_flags_then_vexil_flags_then_the_default() {
    let dir = Workdir::new();
    dir.write("feature_flags.yaml", GOOD);
    dir.write(
        "one.yaml",
        "only: {default: true, description: x, risk: medium}\n",
    );
    dir.write("other.yaml", "{}\n");

    let run = Run::of(dir.command(VEXIL, ["check"]).env("VEXIL_FLAGS", "one.yaml"));
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "one.yaml: 1 flag (0 low, 1 medium, 0 high)\n")
    );
    let run = Run::of(
        dir.command(VEXIL, ["check", "--flags", "other.yaml"])
            .env("VEXIL_FLAGS", "one.yaml"),
    );
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "other.yaml: 0 flags (0 low, 0 medium, 0 high)\n")
    );
    let run = dir.run(VEXIL, ["check"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (
            Some(0),
            "feature_flags.yaml: 2 flags (1 low, 0 medium, 1 high)\n"
        )
    );
}

#[test]
fn output_that_cannot_be_written_is_an_error_not_a_panic() {
    let dir = Workdir::new();
    dir.write("feature_flags.yaml", GOOD);
    let full = std::fs::File::create("/dev/full").expect("/dev/full exists on Linux");
    let run = Run::of(dir.command(VEXIL, ["check"]).stdout(full));
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(
        run.stderr,
        "error: cannot write to stdout: No space left on device (os error 28)\n"
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    let dir = Workdir::new();
    dir.write("feature_flags.yaml", GOOD);
    // A pipe whose read end is closed before vexil starts: its first write fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let run = Run::of(dir.command(VEXIL, ["check", "--json"]).stdout(writer));
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
}

#[test]
fn outside_text_stays_on_one_line() {
    let dir = Workdir::new();
    let run = dir.run(VEXIL, ["check", "--flags", "new\nline.yaml"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "error: cannot read flags file 'new\\nline.yaml': No such file or directory (os error 2)\n"
    );
    dir.write(
        "bad\u{1b}[31m.yaml",
        "a: {default: 1, description: x, risk: low}\n",
    );
    let run = dir.run(VEXIL, ["check", "--flags", "bad\u{1b}[31m.yaml"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr,
        "bad\\u{1b}[31m.yaml:1:14: flag 'a': field 'default' must be a boolean (true or false), found the integer 1\n"
    );
}

/// Every kind of error, through the real binary: each on its own stderr line, exit 1.
#[test]
fn each_bad_file_prints_its_errors_and_exits_1() {
    #[track_caller]
    fn bad(yaml: &str, expected: &[&str]) {
        let run = check(yaml, &[]);
        assert_eq!(run.code, Some(1), "{run:?}");
        assert_eq!(run.stdout, "");
        assert_eq!(run.stderr_lines(), expected, "\n--- input ---\n{yaml}");
    }
    const TAIL: &str = "description: x, risk: low}";
    bad(
        "billing_v2:\n  defualt: false\n  default: false\n  description: x\n  risk: low\n",
        &[
            "feature_flags.yaml:2:3: flag 'billing_v2': unknown field 'defualt' \
           (expected one of: default, soak_period_hours, description, risk)",
        ],
    );
    bad(
        &format!("a: {{default: true, {TAIL}\na: {{default: true, {TAIL}\n"),
        &["feature_flags.yaml:2:1: flag 'a': duplicate flag (first declared at line 1)"],
    );
    bad(
        &format!("a: {{default: yes, {TAIL}\n"),
        &[
            "feature_flags.yaml:1:14: flag 'a': field 'default' must be a boolean (true or false), found the string 'yes'",
        ],
    );
    bad(
        "a: {risk: low}\n",
        &[
            "feature_flags.yaml:1:1: flag 'a': missing field 'default'",
            "feature_flags.yaml:1:1: flag 'a': missing field 'description'",
        ],
    );
    bad(
        "a: {default: true, description: \" \", risk: low}\n",
        &["feature_flags.yaml:1:33: flag 'a': field 'description' is empty"],
    );
    bad(
        "a: {default: true, description: x, risk: critical}\n",
        &[
            "feature_flags.yaml:1:42: flag 'a': field 'risk' must be one of low, medium, high, found the string 'critical'",
        ],
    );
    bad(
        &format!("a: {{default: true, soak_period_hours: -1, {TAIL}\n"),
        &[
            "feature_flags.yaml:1:39: flag 'a': field 'soak_period_hours' must be a whole number of hours from 0 to 8760, found the integer -1",
        ],
    );
    bad(
        &format!("a: {{default: true, soak_period_hours: 2.5, {TAIL}\n"),
        &[
            "feature_flags.yaml:1:39: flag 'a': field 'soak_period_hours' must be a whole number of hours from 0 to 8760, found the number 2.5",
        ],
    );
    bad(
        &format!("New-Flag: {{default: true, {TAIL}\n"),
        &[
            "feature_flags.yaml:1:1: flag 'New-Flag': invalid key: it must start with a lower-case letter (a-z)",
        ],
    );
    bad(
        "- a\n- b\n",
        &[
            "feature_flags.yaml:1:1: the file must be a mapping of flag keys to declarations, found a sequence",
        ],
    );
    bad(
        "",
        &[
            "feature_flags.yaml:1:1: the file is empty: declare at least one flag, or write {} to declare none",
        ],
    );
    bad(
        "a: [\n",
        &["feature_flags.yaml:1:4: YAML syntax: unclosed bracket '['"],
    );
    // A control character is shown escaped: the error stays one line and harmless.
    bad(
        "a: {default: true}\n\u{0}",
        &["feature_flags.yaml:2:1: YAML syntax: unexpected character: `\\u{0}'"],
    );
}

#[test]
fn a_missing_or_unreadable_file_is_one_line_and_exit_2() {
    let dir = Workdir::new();
    let run = dir.run(VEXIL, ["check"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "error: cannot read flags file 'feature_flags.yaml' (set --flags PATH or VEXIL_FLAGS): \
         No such file or directory (os error 2)\n"
    );
    let run = dir.run(VEXIL, ["check", "--flags", "nope.yaml"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "error: cannot read flags file 'nope.yaml': No such file or directory (os error 2)\n"
    );
    let run = dir.run(VEXIL, ["check", "--flags", "."]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "error: cannot read flags file '.': Is a directory (os error 21)\n"
    );
}

#[test]
fn an_endless_file_is_refused_as_too_large() {
    let run = Workdir::new().run(VEXIL, ["check", "--flags", "/dev/zero"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr,
        "/dev/zero:1:1: the file is larger than the limit of 4194304 bytes\n"
    );
}

#[test]
fn json_on_a_good_file_lists_the_flags() {
    let run = check(GOOD, &["--json"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report,
        json!({
            "file": "feature_flags.yaml",
            "valid": true,
            "counts": {"low": 1, "medium": 0, "high": 1},
            "flags": [
                {"key": "dark_mode", "default": false, "soak_period_hours": 0,
                 "description": "Offer the dark colour scheme", "risk": "low"},
                {"key": "billing_v2", "default": false, "soak_period_hours": 48,
                 "description": "New billing pipeline — façade", "risk": "high"},
            ],
            "warnings": [],
        })
    );
}

#[test]
fn json_on_a_bad_file_lists_the_errors_with_line_and_column() {
    let run = check(
        "a:\n  default: 1\n  description: x\n  risk: low\nB: {}\n",
        &["--json"],
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stderr, "error: feature_flags.yaml: 5 errors\n");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report,
        json!({
            "file": "feature_flags.yaml",
            "valid": false,
            "errors": [
                {"line": 2, "column": 12, "key": "a",
                 "message": "field 'default' must be a boolean (true or false), found the integer 1"},
                {"line": 5, "column": 1, "key": "B",
                 "message": "invalid key: it must start with a lower-case letter (a-z)"},
                {"line": 5, "column": 1, "key": "B", "message": "missing field 'default'"},
                {"line": 5, "column": 1, "key": "B", "message": "missing field 'description'"},
                {"line": 5, "column": 1, "key": "B", "message": "missing field 'risk'"},
            ],
        })
    );
}

#[test]
fn flag_variables_of_the_calling_process_are_checked_too() {
    let dir = Workdir::new();
    dir.write("feature_flags.yaml", GOOD);
    let run = Run::of(
        dir.command(VEXIL, ["check"])
            .env("FLAG_DARK_MODE", "maybe")
            .env("FLAG_BILLING_V3", "1")
            .env("FLAG_BILLING_V2", "on")
            .env("FLAG_CONSOLE_FEATURE_FLAGS_DB", "sure"),
    );
    assert_eq!(run.code, Some(0), "warnings never fail the check: {run:?}");
    assert_eq!(
        run.stdout,
        "feature_flags.yaml: 2 flags (1 low, 0 medium, 1 high)\n"
    );
    assert_eq!(
        run.stderr_lines(),
        [
            "warning: FLAG_CONSOLE_FEATURE_FLAGS_DB='sure' (invalid: expected one of 1, true, on, yes, 0, false, off, no); the DB layer stays off",
            "warning: FLAG_BILLING_V3 is set but overrides no declared flag",
            "warning: FLAG_DARK_MODE='maybe' (invalid: expected one of 1, true, on, yes, 0, false, off, no); flag dark_mode ignores it",
        ]
    );
}
