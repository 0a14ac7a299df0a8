//! `Workdir`: a scratch directory, removed when dropped, and a way to run the real
//! `vexil` binary in it (ripgrep's test approach: the binary, not its functions),
//! and the two asserts every such test makes: it succeeded (`ok`), or it failed with
//! this exit code and this one stderr line (`fails`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub struct Workdir {
    dir: TempDir,
}

/// What a finished command left: its exit code and its output as text.
#[derive(Debug)]
pub struct Run {
    /// `None` when the process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Workdir {
    pub fn new() -> Workdir {
        let dir = tempfile::Builder::new()
            .prefix("vexil-test-")
            .tempdir()
            .expect("cannot create a temporary directory");
        Workdir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// `bin` (pass `env!("CARGO_BIN_EXE_vexil")`) with `args`, run in this directory
    /// with every variable vexil reads removed, so that the developer's own shell
    /// cannot change a test's result.
    pub fn command<I, S>(&self, bin: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(bin);
        command.args(args).current_dir(self.dir.path());
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("FLAG_") || name.starts_with("VEXIL_") || name == "DATABASE_URL" {
                command.env_remove(name.as_ref());
            }
        }
        command
    }

    /// Runs `bin args…` here (see [`Workdir::command`]) and waits for it.
    pub fn run<I, S>(&self, bin: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run::of(&mut self.command(bin, args))
    }
}

impl Default for Workdir {
    fn default() -> Self {
        Workdir::new()
    }
}

impl Run {
    /// Runs `command` to its end and captures its output.
    pub fn of(command: &mut Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        Run {
            code: status.code(),
            stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
        }
    }

    /// Runs `command` with `stdin` written to its standard input, then closed.
    pub fn with_stdin(command: &mut Command, stdin: &str) -> Run {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let mut input = child.stdin.take().expect("stdin is piped");
        input
            .write_all(stdin.as_bytes())
            .expect("the child reads its stdin");
        drop(input);
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().expect("the child ends");
        Run {
            code: status.code(),
            stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
        }
    }

    /// The stderr lines, for comparing with a list.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

/// Asserts that `run` exited 0, and returns its stdout.
#[track_caller]
pub fn ok(run: &Run) -> &str {
    assert_eq!(run.code, Some(0), "{run:?}");
    &run.stdout
}

/// Asserts that `run` exited with `code`, printed exactly `stderr`, and nothing on
/// stdout.
#[track_caller]
pub fn fails(run: &Run, code: i32, stderr: &str) {
    assert_eq!(
        (run.code, run.stderr.as_str(), run.stdout.as_str()),
        (Some(code), stderr, ""),
        "{run:?}"
    );
}
