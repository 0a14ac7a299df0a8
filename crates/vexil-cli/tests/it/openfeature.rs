//! OpenFeature's own OFREP providers, unmodified, against the real `vexil serve`: the
//! Python SDK's and the JavaScript server SDK's read a flag, see a flip made with
//! `vexil flip`, and are refused once the client key is revoked with `vexil
//! client-key revoke`; the JavaScript web SDK's hears the flip through the event
//! stream the bulk answer advertises (polling off).
//!
//! The clients live in `tests/openfeature/` and come from their registries: `.ci/services`
//! installs the Python ones into `target/openfeature/venv` (hash-pinned) and runs
//! `npm ci` for the JavaScript ones. A missing interpreter or package fails the test
//! with what to run; it never skips.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vexil_store::Backend;
use vexil_testkit::{TestDb, ok};

use crate::serve::Server;
use crate::site::Site;

/// How long a client has to see what it must see.
const WAIT: Duration = Duration::from_secs(20);

/// `crates/vexil-cli/tests/openfeature`.
fn clients() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openfeature")
}

/// The Python of the venv `.ci/services` made.
fn python() -> PathBuf {
    let python =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/openfeature/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash .ci/services`, which installs OpenFeature's Python SDK and OFREP provider",
        python.display()
    );
    python
}

/// A JavaScript client's directory, once `npm ci` ran there.
fn node_dir(name: &str) -> PathBuf {
    let dir = clients().join(name);
    assert!(
        dir.join("node_modules/@openfeature").exists(),
        "{}/node_modules is missing: run `bash .ci/services`, which runs `npm ci` there",
        dir.display()
    );
    dir
}

/// A served site: `vexil serve` on a SQLite file with the example flags, a superadmin
/// to flip with, and a prod client key for `app`; revocations apply within a second.
struct World {
    site: Site,
    server: Server,
    url: String,
    key: String,
    key_id: String,
    _test_db: TestDb,
}

impl World {
    async fn new(app: &str) -> World {
        let test_db = TestDb::new(Backend::Sqlite).await;
        let site = Site::new(test_db.url_string());
        ok(&site.run_with_stdin(
            &["user", "add", "alice", "--role", "superadmin"],
            "a long enough password\n",
        ));
        let created = site.run(&["client-key", "create", "--env", "prod", "--app", app]);
        let key = ok(&created).trim().to_owned();
        let key_id = created.stderr.split_whitespace().nth(2).unwrap().to_owned();
        let mut command = site.command(&["serve", "--bind", "127.0.0.1:0"]);
        command.env("VEXIL_TOKEN_CACHE_SECONDS", "1");
        let server = Server::spawn(command);
        let line = server.wait_for("vexil listening on http://");
        let url = format!("http://{}", line.rsplit("http://").next().unwrap());
        World {
            site,
            server,
            url,
            key,
            key_id,
            _test_db: test_db,
        }
    }

    fn flip_dark_mode_on(&self) {
        ok(&self.site.run(&[
            "flip",
            "dark_mode",
            "--env",
            "prod",
            "--on",
            "--as",
            "alice",
            "--reason",
            "an OpenFeature check",
        ]));
    }

    fn revoke(&self) {
        ok(&self.site.run(&["client-key", "revoke", &self.key_id]));
    }

    fn client(&self, mut command: Command) -> Client {
        command
            .env("VEXIL_URL", &self.url)
            .env("VEXIL_CLIENT_KEY", &self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        Client::spawn(command)
    }
}

/// A client process: lines in on stdin, JSON lines out.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Value>,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Client {
    fn spawn(mut command: Command) -> Client {
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        let stdin = child.stdin.take();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if send.send(value).is_err() {
                    break;
                }
            }
        });
        Client {
            child,
            stdin,
            lines,
        }
    }

    /// The next line it prints.
    fn next(&self) -> Value {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("the client printed nothing within {WAIT:?}"))
    }

    /// Evaluates `flag` once.
    fn evaluate(&mut self, flag: &str) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{flag}").unwrap();
        stdin.flush().unwrap();
        self.next()
    }

    /// Evaluates `flag` until `done` holds of the answer (a flip takes the server's
    /// feed a moment; a revocation, its key cache window).
    fn evaluate_until(&mut self, flag: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = self.evaluate(flag);
            if done(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "never so: the last answer was {answer}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// What a server-side provider must show: a default, the flip, the revocation.
fn reads_flips_and_is_refused_when_revoked(world: &World, mut client: Client) {
    assert_eq!(
        client.evaluate("dark_mode"),
        json!({"value": false, "reason": "DEFAULT", "variant": "off", "error_code": null})
    );
    let missing = client.evaluate("no_such_flag");
    assert_eq!(missing["error_code"], "FLAG_NOT_FOUND", "{missing}");
    world.flip_dark_mode_on();
    let flipped = client.evaluate_until("dark_mode", |a| a["value"] == true);
    assert_eq!(
        flipped,
        json!({"value": true, "reason": "STATIC", "variant": "on", "error_code": null})
    );
    world.revoke();
    let refused = client.evaluate_until("dark_mode", |a| a["error_code"] != Value::Null);
    assert_eq!(
        refused,
        json!({"value": false, "reason": "ERROR", "variant": null, "error_code": "GENERAL"}),
        "the code's default, with an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_ofrep_provider_reads_flips_and_is_refused_when_revoked() {
    let python = python();
    let world = World::new("openfeature-python").await;
    let mut command = Command::new(python);
    command.arg(clients().join("python/evaluate.py"));
    let client = world.client(command);
    reads_flips_and_is_refused_when_revoked(&world, client);
    drop(world.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_ofrep_provider_reads_flips_and_is_refused_when_revoked() {
    let dir = node_dir("node");
    let world = World::new("openfeature-node").await;
    let mut command = Command::new("node");
    command.arg(dir.join("evaluate.mjs")).current_dir(&dir);
    let client = world.client(command);
    reads_flips_and_is_refused_when_revoked(&world, client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ofrep_provider_hears_a_flip_through_the_event_stream() {
    let dir = node_dir("web");
    let world = World::new("openfeature-web").await;
    let mut command = Command::new("node");
    command
        .arg(dir.join("listen.mjs"))
        .current_dir(&dir)
        .env("VEXIL_FLAG", "dark_mode");
    let client = world.client(command);
    assert_eq!(
        client.next(),
        json!({"event": "ready", "value": false, "reason": "DEFAULT"})
    );
    let flipped_at = Instant::now();
    world.flip_dark_mode_on();
    // Polling is off: only the stream's `refetchEvaluation` can bring this.
    assert_eq!(
        client.next(),
        json!({"event": "changed", "value": true, "reason": "STATIC"})
    );
    println!(
        "the web provider heard the flip in {:?}",
        flipped_at.elapsed()
    );
}
