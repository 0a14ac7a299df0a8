//! `vexil serve` as an operator runs it: refused on an invalid flags file, then
//! serving, reloading on SIGHUP (keeping the last valid set on a bad file), and
//! draining on SIGTERM with exit 0. Every wait is for a line the server prints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use vexil_store::Backend;
use vexil_testkit::TestDb;

use crate::site::Site;

const DEADLINE: Duration = Duration::from_secs(30);

pub(crate) struct Server {
    pub(crate) child: Child,
    stderr: Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(site: &Site) -> Server {
        Server::spawn(site.command(&["serve", "--bind", "127.0.0.1:0"]))
    }

    pub(crate) fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            stderr: lines,
        }
    }

    /// The first stderr line containing `text`.
    pub(crate) fn wait_for(&self, text: &str) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("the server never printed {text:?}"));
            if line.contains(text) {
                return line;
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// `GET path` over a plain socket: the status line and the body.
fn get(address: &str, path: &str) -> (String, String) {
    get_with(address, path, "")
}

/// `GET path` with extra header lines (each ending in `\r\n`).
fn get_with(address: &str, path: &str, headers: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

const VALID: &str = "dark_mode:\n  default: false\n  description: Dark theme.\n  risk: low\n";
const INVALID: &str = "dark_mode:\n  default: maybe\n  risk: low\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_bad_file_reloads_on_sighup_and_drains_on_sigterm() {
    let test_db = TestDb::unmigrated(Backend::Sqlite).await;
    let site = Site::new(test_db.url_string());

    site.dir.write("feature_flags.yaml", INVALID);
    let refused = site.run(&["serve", "--bind", "127.0.0.1:0"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("feature_flags.yaml:2:12:")
            && refused
                .stderr
                .ends_with("error: not serving: the flags file feature_flags.yaml is invalid\n"),
        "{refused:?}"
    );

    site.dir.write("feature_flags.yaml", VALID);
    let server = Server::start(&site);
    server.wait_for("applied migration 0001 init");
    let line = server.wait_for("vexil listening on http://");
    let address = line.rsplit("http://").next().unwrap().to_owned();
    assert_eq!(
        get(&address, "/healthz"),
        ("HTTP/1.1 200 OK".to_owned(), "ok\n".to_owned())
    );

    site.dir.write("feature_flags.yaml", INVALID);
    server.signal("HUP");
    let kept = server.wait_for("keeping the last valid flags");
    assert!(kept.contains("feature_flags.yaml:2:12"), "{kept}");
    site.dir.write("feature_flags.yaml", VALID);
    server.signal("HUP");
    server.wait_for("reloaded feature_flags.yaml: 1 flags");
    assert_eq!(get(&address, "/healthz").0, "HTTP/1.1 200 OK");

    server.signal("TERM");
    server.wait_for("stopping; finishing the requests in flight");
    let mut server = server;
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_prints_one_account_per_role_and_cleans_up() {
    let site = Site::new("sqlite://unused.db".to_owned());
    let mut child = site
        .command(&["serve", "--demo", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<String> = stdout.lines().map_while(Result::ok).take(8).collect();
    let server = Server {
        stderr: {
            let stderr = child.stderr.take().unwrap();
            let (send, lines) = channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
            lines
        },
        child,
    };
    assert_eq!(lines[0], "demo accounts (the passwords are shown once):");
    for (line, (name, role)) in lines[1..5].iter().zip([
        ("reader", "readonly"),
        ("helpdesk", "support"),
        ("operator", "ops"),
        ("root", "superadmin"),
    ]) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&words[..2], [name, role], "{line}");
        assert!(
            words[2].len() == 24 && words[2].chars().all(|c| c.is_ascii_hexdigit()),
            "{line}"
        );
    }
    assert!(
        lines[5].starts_with(
            "root's TOTP (add it to an authenticator app): otpauth://totp/vexil:root?secret="
        ),
        "{}",
        lines[5]
    );
    let dir_line = server.wait_for("demo: a throw-away database in ");
    let dir = dir_line
        .trim_start_matches("demo: a throw-away database in ")
        .trim_end_matches(" (removed when the server stops)")
        .to_owned();
    assert!(
        std::path::Path::new(&dir).join("vexil.db").exists(),
        "{dir}"
    );
    // Its owner's only, the directory and the database in it.
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [
        (std::path::PathBuf::from(&dir), 0o700),
        (std::path::Path::new(&dir).join("vexil.db"), 0o600),
    ] {
        let found = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(found, mode, "{}", path.display());
    }
    let line = server.wait_for("vexil listening on http://");
    let address = line.rsplit("http://").next().unwrap().to_owned();
    assert_eq!(get(&address, "/healthz").0, "HTTP/1.1 200 OK");
    // The ops account's API token, for a first API call.
    let token = lines[6]
        .strip_prefix("operator's API token (Authorization: Bearer …): ")
        .unwrap_or_else(|| panic!("{}", lines[6]));
    let (status, body) = get_with(
        &address,
        "/api/v1/me",
        &format!("Authorization: Bearer {token}\r\n"),
    );
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert_eq!(
        body,
        r#"{"name":"operator","role":"ops","totp_enrolled":false}"#
    );
    // The demo runs with the master switch on: a first flip changes what runs.
    let http = reqwest::Client::new();
    let flipped = http
        .post(format!("http://{address}/api/v1/flags/dark_mode/flip"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(r#"{"env": "prod", "from": false, "to": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(flipped.status(), 200, "{}", flipped.text().await.unwrap());
    let flag = http
        .get(format!("http://{address}/api/v1/flags/dark_mode?env=prod"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let flag: serde_json::Value = serde_json::from_str(&flag).unwrap();
    assert_eq!(flag["value"], true, "{flag}");
    assert_eq!(flag["source"], "db", "{flag}");
    // A client key for prod's applications, for a first application.
    let key = lines[7]
        .strip_prefix("a client key for prod's applications (/sdk/v1, /ofrep/v1): ")
        .unwrap_or_else(|| panic!("{}", lines[7]));
    assert!(key.starts_with("vxc_") && key.len() == 68, "{key}");
    let (status, body) = get_with(
        &address,
        "/sdk/v1/snapshot",
        &format!("Authorization: Bearer {key}\r\n"),
    );
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.starts_with(r#"{"env":"prod","#), "{body}");
    assert!(
        !site.dir.path().join("unused.db").exists(),
        "DATABASE_URL is not used"
    );

    server.signal("TERM");
    let mut server = server;
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
    assert!(
        !std::path::Path::new(&dir).exists(),
        "{dir} outlived the server"
    );
}

/// `VEXIL_LOG_FORMAT=json`: one JSON object per line, and the lines of a request
/// carry its id (here a proxy's, which the server keeps and sends back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let site = Site::new(test_db.url_string());
    site.dir.write("feature_flags.yaml", VALID);
    let mut command = site.command(&["serve", "--bind", "127.0.0.1:0"]);
    command
        .env("VEXIL_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,tower_http=debug");
    let server = Server::spawn(command);
    let line = server.wait_for("vexil listening on http://");
    let address = line.rsplit("http://").next().unwrap().to_owned();
    let (status, _) = get_with(&address, "/healthz", "x-request-id: lb-7f3a\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let logged = server.wait_for("lb-7f3a");
    let entry: serde_json::Value =
        serde_json::from_str(&logged).unwrap_or_else(|e| panic!("{e}: {logged}"));
    assert_eq!(entry["span"]["id"], "lb-7f3a", "{entry}");
    assert_eq!(entry["span"]["path"], "/healthz", "{entry}");
    assert!(
        entry["timestamp"].is_string() && entry["level"].is_string(),
        "{entry}"
    );
}

/// An env in `VEXIL_REQUIRE_REASON` that is not one of vexil's stops the server
/// before it listens, naming the setting and the envs it knows.
#[tokio::test]
async fn serve_refuses_an_unknown_env_in_the_reasons_setting() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let site = Site::new(test_db.url_string());
    site.dir.write("feature_flags.yaml", VALID);
    let mut command = site.command(&["serve", "--bind", "127.0.0.1:0"]);
    command.env("VEXIL_REQUIRE_REASON", "prod,qa");
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Could not run (bad input), docs/cli.md's exit status 2.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "VEXIL_REQUIRE_REASON / --require-reason: unknown env 'qa' (expected one of: staging, prod)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
}

/// A database file other users can read (made before vexil made its files private):
/// every command that opens it says so, with the command that mends it.
#[tokio::test]
async fn a_database_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new("sqlite://vexil.db".to_owned());
    let file = site.dir.path().join("vexil.db");
    std::fs::write(&file, b"").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = site.run(&["migrate"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "warning: the database file 'vexil.db' can be read by other users (mode 644)"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
}

/// A password on the command line is readable by every local user (`ps`): refused
/// before anything connects, naming the variable to use; the same URL in the
/// environment is used as given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_database_url_on_the_command_line_is_refused() {
    let test_db = TestDb::new(Backend::Postgres).await;
    let with_password = test_db
        .url_string()
        .replacen("postgres@", "postgres:hunter2@", 1);
    let site = Site::new(with_password.clone());
    let mut command = site.command(&["audit", "--limit", "1", "--database-url", &with_password]);
    command.env_remove("DATABASE_URL");
    let run = vexil_testkit::Run::of(&mut command);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("carries a password, which every user of this machine can read in `ps`: set DATABASE_URL in the environment instead"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("hunter2"),
        "the password is never echoed"
    );
    // From the environment (trust auth ignores the password): it runs.
    let run = site.run(&["audit", "--limit", "1"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

/// A PostgreSQL URL to another machine that names no `sslmode` may fall back to plain
/// text: warned about once, before connecting, naming the host and never the
/// password. With an `sslmode`, or on this machine, nothing is said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_database_without_sslmode_is_warned_about() {
    // A password on the command line is refused before anything connects, so the
    // warning shows with no network and no wait on an unreachable host.
    let remote = "postgres://vexil:hunter2@db.example.com/vexil";
    let refused = |url: &str| {
        let site = Site::new(url.to_owned());
        let mut command = site.command(&["audit", "--limit", "1", "--database-url", url]);
        for name in ["DATABASE_URL", "PGSSLMODE", "PGHOST", "PGHOSTADDR"] {
            command.env_remove(name);
        }
        let run = vexil_testkit::Run::of(&mut command);
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(
            !run.stderr.contains("hunter2"),
            "the password is never echoed"
        );
        run
    };
    let warning = "warning: the PostgreSQL server 'db.example.com' is not on this machine and DATABASE_URL names no sslmode: the default (prefer) falls back to plain text without a word; add ?sslmode=verify-full (or require), see docs/deploy.md\n";
    let run = refused(remote);
    assert!(run.stderr.starts_with(warning), "{}", run.stderr);
    assert_eq!(run.stderr.matches("warning:").count(), 1, "{}", run.stderr);
    let run = refused(&format!("{remote}?sslmode=verify-full"));
    assert!(!run.stderr.contains("warning:"), "{}", run.stderr);

    let test_db = TestDb::new(Backend::Postgres).await;
    let loopback = test_db.url_string();
    for url in [
        loopback.clone(),
        loopback.replacen("127.0.0.1", "localhost", 1),
    ] {
        let run = Site::new(url).run(&["audit", "--limit", "1"]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(!run.stderr.contains("warning:"), "{}", run.stderr);
    }
}
