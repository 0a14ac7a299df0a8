//! `Site`: a scratch directory with the example flags file, where `vexil` runs against
//! one test database, the way an operator's shell on a host would.

use std::process::Command;

use vexil_testkit::{Run, Workdir};

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
        dir.write(
            "feature_flags.yaml",
            include_str!("../../../../examples/feature_flags.yaml"),
        );
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

/// A live process of `env` linking the library with these variables and the example
/// flags, reporting every 100 ms; returned once its first report is in.
pub(crate) async fn live_process(url: String, env: &str, vars: &[(&str, &str)]) -> vexil::Flags {
    let flags = vexil_core::FlagSet::parse(
        "feature_flags.yaml",
        include_bytes!("../../../../examples/feature_flags.yaml"),
    )
    .unwrap();
    let process = vexil::Flags::builder()
        .env(env)
        .flag_set(flags)
        .env_vars(vexil_core::EnvSnapshot::capture(vars.iter().copied()))
        .database_url(url)
        .application("web")
        .heartbeat(std::time::Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let mut health = process.watch_health();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        health.wait_for(|h| {
            h.reported_at
                .is_some_and(|at| at > std::time::SystemTime::UNIX_EPOCH)
        }),
    )
    .await
    .expect("the process never reported")
    .unwrap();
    process
}
