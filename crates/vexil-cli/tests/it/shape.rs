//! The command line itself: `--help`, `--version`, and usage errors.

use vexil_testkit::Workdir;

use crate::VEXIL;

#[test]
fn help_lists_the_commands() {
    let run = Workdir::new().run(VEXIL, ["--help"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("Usage: vexil [OPTIONS] <COMMAND>"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("check"), "{}", run.stdout);
    assert!(run.stdout.contains("[env: VEXIL_FLAGS=]"), "{}", run.stdout);
}

#[test]
fn version_prints_the_crate_version() {
    let run = Workdir::new().run(VEXIL, ["--version"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), concat!("vexil ", env!("CARGO_PKG_VERSION"), "\n"))
    );
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let run = Workdir::new().run(VEXIL, ["chekc"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with("error: unrecognized subcommand 'chekc'"),
        "{}",
        run.stderr
    );
}
