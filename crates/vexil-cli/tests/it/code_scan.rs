//! `vexil doctor --code` beside the runbook's own GA check, on the committed corpus of
//! real-world reads (`vexil_testkit::code_corpus`): the real `grep` binary runs
//! `grep -r 'os.environ.get.*FLAG_' DIR` verbatim, and every line it prints must be
//! among vexil's hits, except the few lines vexil keeps out for a reason this test
//! names; vexil's extra hits (the reads the grep misses) are listed here too. Both
//! databases, as doctor needs one; the scan itself touches neither.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vexil_store::Backend;
use vexil_testkit::{TestDb, both, code_corpus};

use crate::site::Site;

/// The grep lines vexil does not report, each with the reason it may keep it out.
const KEPT_OUT: [(&str, &str); 4] = [
    // Not source: vexil reads the languages it knows, and a README runs nowhere; the
    // grep's line there is still shown, with why.
    (
        "console/app/README.md:3",
        "not scanned: in no language the scan reads",
    ),
    // Prose in a docstring that names the function; no call.
    (
        "console/app/settings.py:3",
        "names os.environ.get but calls it with no variable's name",
    ),
    // A read of another variable; FLAG_ only in the comment.
    (
        "console/app/settings.py:13",
        "reads DATABASE_URL, not a FLAG_* variable",
    ),
    // `MY_FLAG_LEGACY` is no flag's variable: those start with FLAG_.
    (
        "console/app/settings.py:15",
        "reads MY_FLAG_LEGACY, not a FLAG_* variable",
    ),
];

/// vexil's hits that the runbook's grep misses: other languages, `os.getenv`,
/// bare and aliased imports, `environ[...]`, `in os.environ`, calls spread over lines,
/// names held in a variable, whole-environment reads filtered on `FLAG_`, scripts
/// known by their `#!` line.
const EXTRA: [&str; 40] = [
    "console/app/jobs/digest.py:6",
    "console/app/jobs/digest.py:7",
    "console/app/jobs/digest.py:8",
    "console/app/services/flags.py:27",
    "console/app/services/flags.py:30",
    "console/app/settings.py:17",
    "console/app/settings.py:18",
    "console/app/settings.py:19",
    "console/app/settings.py:20",
    "console/app/views/billing.py:11",
    "console/app/views/billing.py:12",
    "console/app/views/billing.py:19",
    "console/app/views/billing.py:23",
    "raptor/bin/flags:3",
    "raptor/lib/flags.rb:10",
    "raptor/lib/flags.rb:14",
    "raptor/lib/flags.rb:18",
    "raptor/lib/flags.rb:22",
    "raptor/lib/flags.rb:6",
    "services/ledger/flags.rs:10",
    "services/ledger/flags.rs:14",
    "services/ledger/flags.rs:17",
    "services/ledger/flags.rs:6",
    "services/notifier/main.go:10",
    "services/notifier/main.go:15",
    "services/notifier/main.go:18",
    "services/notifier/main.go:21",
    "services/reports/Flags.java:12",
    "services/reports/Flags.java:17",
    "services/reports/Flags.java:8",
    "web/src/config.js:5",
    "web/src/config.js:6",
    "web/src/config.js:7",
    "web/src/flags.ts:10",
    "web/src/flags.ts:14",
    "web/src/flags.ts:17",
    "web/src/flags.ts:4",
    "web/src/flags.ts:5",
    "web/src/flags.ts:6",
    "web/src/flags.ts:7",
];

/// `file:line` of each line `grep -r PATTERN root` prints, relative to `root`. grep
/// prints `path:text` without line numbers (the runbook's command has no `-n`), so
/// each text is found in its file; every line that equals it counts.
fn runbook_grep(root: &Path) -> BTreeSet<String> {
    let output = Command::new("grep")
        .args(["-r", "os.environ.get.*FLAG_"])
        .arg(root)
        .output()
        .expect("the grep binary runs");
    assert!(output.status.success(), "grep found nothing: {output:?}");
    let stdout = String::from_utf8(output.stdout).expect("grep prints UTF-8 here");
    let mut lines = BTreeSet::new();
    for printed in stdout.lines() {
        let rest = printed
            .strip_prefix(&format!("{}/", root.display()))
            .unwrap_or_else(|| panic!("grep printed {printed:?}, not a line below the root"));
        let (file, text) = rest.split_once(':').expect("grep prints path:text");
        let contents = std::fs::read_to_string(root.join(file)).unwrap();
        let mut found = false;
        for (at, line) in contents.lines().enumerate() {
            if line == text {
                lines.insert(format!("{file}:{}", at + 1));
                found = true;
            }
        }
        assert!(found, "grep's line {printed:?} is not in {file}");
    }
    lines
}

/// `file:line` of each JSON entry (a hit or a grep-only line), relative to `root`.
fn places(root: &Path, entries: &Value) -> BTreeSet<String> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let path = entry["path"].as_str().unwrap();
            let rel = Path::new(path).strip_prefix(root).unwrap();
            format!("{}:{}", rel.display(), entry["line"])
        })
        .collect()
}

async fn every_line_of_the_runbook_grep_is_a_hit(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let site = Site::new(test_db.url_string());
    let corpus = code_corpus();
    let grep = runbook_grep(&corpus);

    let run = site.run(&["doctor", "--code", corpus.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let code_reads = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "code_reads")
        .unwrap();
    assert_eq!(code_reads["outcome"], "fail", "{code_reads:#}");
    let hits = places(&corpus, &report["code"]["hits"]);

    // Every grep line is a hit, but for the lines kept out, each for its reason.
    let missed: BTreeSet<String> = grep.difference(&hits).cloned().collect();
    let kept_out: BTreeSet<String> = KEPT_OUT.iter().map(|(at, _)| (*at).to_owned()).collect();
    assert_eq!(missed, kept_out, "grep lines vexil does not report");
    // Each line vexil does not count as a read comes back with why: the README unread,
    let grep_only: Vec<(String, String)> = report["code"]["grep_only"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            let path = Path::new(line["path"].as_str().unwrap());
            let rel = path.strip_prefix(&corpus).unwrap().display().to_string();
            (
                format!("{rel}:{}", line["line"]),
                line["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = KEPT_OUT
        .iter()
        .map(|(at, why)| ((*at).to_owned(), (*why).to_owned()))
        .collect();
    assert_eq!(grep_only, expected);
    assert_eq!(places(&corpus, &report["code"]["grep_only"]).len(), 4);

    // What vexil finds that the grep does not.
    let extra: BTreeSet<String> = hits.difference(&grep).cloned().collect();
    let expected: BTreeSet<String> = EXTRA.iter().map(|at| (*at).to_owned()).collect();
    assert_eq!(extra, expected, "vexil's hits beyond the grep's lines");
    // The issue's two lines, dynamic names each.
    let dynamic = |line: u64| {
        report["code"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|hit| {
                hit["path"].as_str().unwrap().ends_with("services/flags.py") && hit["line"] == line
            })
            .unwrap()
            .clone()
    };
    for line in [13, 17] {
        let hit = dynamic(line);
        assert_eq!(
            (&hit["variable"], &hit["dynamic"], &hit["language"]),
            (
                &Value::from("FLAG_{…}"),
                &Value::Bool(true),
                &Value::from("python")
            ),
            "{hit:#}"
        );
    }
}
both!(every_line_of_the_runbook_grep_is_a_hit);
