//! `vexil` on a real terminal: a pseudo-terminal from util-linux's `script`, which the
//! test types into only after the prompt appears, as a person would. What it checks:
//! the password is asked twice and never echoed, two different answers change
//! nothing, and `user totp` adds a QR code when stdout is a terminal.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use vexil_store::Backend;
use vexil_testkit::TestDb;

use crate::site::Site;

/// How long a prompt may take to appear before the test gives up.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// A command running on a pseudo-terminal, with everything it printed so far.
struct Terminal {
    child: Child,
    input: Option<ChildStdin>,
    output: Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    /// `command` (its program, arguments, environment and directory) run by
    /// `script -qec`, so that its stdin, stdout and stderr are a terminal.
    fn start(command: &Command) -> Terminal {
        let quote =
            |s: &std::ffi::OsStr| format!("'{}'", s.to_str().unwrap().replace('\'', r"'\''"));
        let line: Vec<String> = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(quote)
            .collect();
        let mut script = Command::new("script");
        script
            .args(["-qec", &line.join(" "), "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(dir) = command.get_current_dir() {
            script.current_dir(dir);
        }
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => script.env(name, value),
                None => script.env_remove(name),
            };
        }
        let mut child = script
            .spawn()
            .expect("util-linux `script` is needed for the terminal tests (Debian: bsdutils)");
        let mut stdout = child.stdout.take().unwrap();
        let (send, output) = channel();
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buffer) {
                if send.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            input: child.stdin.take(),
            child,
            output,
            seen: String::new(),
        }
    }

    /// Waits until the output so far ends with `prompt`.
    fn expect(&mut self, prompt: &str) {
        while !self.seen.ends_with(prompt) {
            let chunk = self
                .output
                .recv_timeout(PROMPT_TIMEOUT)
                .unwrap_or_else(|_| {
                    panic!("no {prompt:?} prompt; the terminal showed {:?}", self.seen)
                });
            self.seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    fn type_line(&mut self, text: &str) {
        let input = self.input.as_mut().unwrap();
        input.write_all(format!("{text}\n").as_bytes()).unwrap();
        input.flush().unwrap();
    }

    /// The command's exit code (`script -e` passes it on) and everything the
    /// terminal showed, once the command has exited.
    fn finish(mut self) -> (Option<i32>, String) {
        drop(self.input.take());
        let status = self.child.wait().unwrap();
        // The reader thread ends, and the channel with it, once the terminal closes.
        while let Ok(chunk) = self.output.recv_timeout(PROMPT_TIMEOUT) {
            self.seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        (status.code(), self.seen)
    }
}

/// `vexil user add NAME --role ops` on a terminal, answering its two prompts.
fn add_user(site: &Site, name: &str, password: &str, again: &str) -> (Option<i32>, String) {
    let mut terminal = Terminal::start(&site.command(&["user", "add", name, "--role", "ops"]));
    terminal.expect("password: ");
    terminal.type_line(password);
    terminal.expect("again: ");
    terminal.type_line(again);
    terminal.finish()
}

#[tokio::test]
async fn a_password_is_asked_twice_on_a_terminal_and_never_echoed() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let site = Site::new(test_db.url_string());
    assert_eq!(site.run(&["migrate"]).code, Some(0));

    let (code, shown) = add_user(
        &site,
        "olive",
        "a long enough password",
        "a long enough password",
    );
    assert_eq!(code, Some(0), "{shown:?}");
    assert!(
        shown.contains("created account 'olive' with role ops"),
        "{shown:?}"
    );
    assert!(
        !shown.contains("long enough"),
        "the password was echoed: {shown:?}"
    );

    let (code, shown) = add_user(
        &site,
        "eve",
        "a long enough password",
        "a long enough passw0rd",
    );
    assert_eq!(code, Some(2), "{shown:?}");
    assert!(
        shown.contains("error: the two passwords differ; nothing was changed"),
        "{shown:?}"
    );
    let users = site.run(&["user", "list"]);
    assert_eq!(users.code, Some(0), "{users:?}");
    assert!(!users.stdout.contains("eve"), "{users:?}");

    // On a terminal, `user totp` shows the URI and the same URI as a QR code.
    let terminal = Terminal::start(&site.command(&["user", "totp", "olive"]));
    let (code, shown) = terminal.finish();
    assert_eq!(code, Some(0), "{shown:?}");
    assert!(
        shown.contains("otpauth://totp/vexil:olive?secret="),
        "{shown:?}"
    );
    assert!(
        shown.contains('█') && shown.contains('▀') && shown.contains('▄'),
        "no QR code: {shown:?}"
    );
}
