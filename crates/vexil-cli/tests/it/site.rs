//! `Site`: a scratch directory with the example flags file, where `vexil` runs against
//! one test database, the way an operator's shell on a host would.

use std::process::Command;

use vexil_testkit::{EXAMPLE_FLAGS, Run, Workdir};

use crate::VEXIL;

pub(crate) struct Site {
    pub(crate) dir: Workdir,
    url: String,
    /// `VEXIL_SECRET_KEY`, which PostgreSQL needs for TOTP (it has no key file).
    pub(crate) secret_key: Option<String>,
}

impl Site {
    /// The example flags file in a new directory, and `DATABASE_URL` set to `url`.
    pub(crate) fn new(url: String) -> Site {
        let dir = Workdir::new();
        dir.write("feature_flags.yaml", EXAMPLE_FLAGS);
        Site {
            dir,
            url,
            secret_key: None,
        }
    }

    /// `vexil args…` here, with this site's settings and nothing of the caller's.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = self.dir.command(VEXIL, args);
        command.env("DATABASE_URL", &self.url);
        if let Some(key) = &self.secret_key {
            command.env("VEXIL_SECRET_KEY", key);
        }
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
    }

    pub(crate) fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        Run::with_stdin(&mut self.command(args), stdin)
    }
}
