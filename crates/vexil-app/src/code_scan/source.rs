//! `scan_source`: the reads of `FLAG_*` variables in one file's text, and the lines
//! the runbook's grep would list there that are no such read.
//!
//! A read is reported when its name is a literal that starts with `FLAG_`, or is
//! built at run time with a part that does (`f"FLAG_{key}"`): then it is marked
//! dynamic, since it can read any flag's variable. A name held in a variable is
//! traced to an assignment in the same file (`name = f"FLAG_{key}"` …
//! `os.environ.get(name)`). A name the scan cannot see into is reported, as dynamic,
//! when `FLAG_` is on the read's lines: the runbook's grep lists that line, and the
//! name may well be a flag's.
//!
//! What is kept out, though the runbook's grep lists it, and why: a read whose name
//! is a literal that does not start with `FLAG_` (`os.environ.get("HOME")  # not
//! FLAG_X`, `os.environ.get("MY_FLAG_X")`) reads no flag's variable, for certain; and
//! a line that only names `os.environ.get` without calling it with a name (prose in a
//! comment or docstring). Each such line comes back in [`SourceScan::grep_only`] with
//! the reason, so an operator who runs the runbook's grep can tell why vexil passed.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use vexil_core::env_var::PREFIX;

use super::Language;
use super::forms::{Form, patterns};
use super::name::{self, Name, Until, shown};

/// The runbook's GA check, `grep -r 'os.environ.get.*FLAG_' console/app/`, as a
/// regex over one line: each character of that basic regular expression means the
/// same here.
pub const RUNBOOK_GREP: &str = "os.environ.get.*FLAG_";

/// The most characters of the source line a hit repeats.
pub(super) const MAX_TEXT_CHARS: usize = 200;

/// What [`scan_source`] found in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceScan {
    /// Every read of a `FLAG_*` variable, in order.
    pub hits: Vec<SourceHit>,
    /// The lines the runbook's grep lists that hold no such read, in order.
    pub grep_only: Vec<SourceGrepOnly>,
}

/// One read of a `FLAG_*` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHit {
    /// 1-based.
    pub line: u64,
    /// 1-based, in bytes: where the read starts (`os.getenv`, not the variable).
    pub column: u64,
    /// The variable read, `FLAG_X`; for a name built at run time, its known part and
    /// `{…}` for the rest (`FLAG_{…}`, or `{…}` when nothing of it is known).
    pub variable: String,
    /// Whether the name is built at run time.
    pub dynamic: bool,
    /// The line the read starts on, trimmed and cut to 200 characters.
    pub text: String,
}

/// A line the runbook's grep lists that reads no `FLAG_*` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceGrepOnly {
    /// 1-based.
    pub line: u64,
    /// The line, trimmed and cut to 200 characters.
    pub text: String,
    /// Why it is no read of a flag's variable, for an operator.
    pub why: String,
}

/// Every read of a `FLAG_*` variable in one file's `text`, and the lines of it the
/// runbook's grep lists that are no such read.
pub fn scan_source(language: Language, text: &str) -> SourceScan {
    let lines = LineIndex::new(text);
    let assigned = assignments(language, text);
    let mut reads = reads(language, text);
    reads.sort_by_key(|read| read.start);
    reads.dedup_by_key(|read| read.start);

    let mut scan = SourceScan::default();
    // Reads of variables that are no flag's, by line: the reason a grep line is kept out.
    let mut others: HashMap<u64, Vec<String>> = HashMap::new();
    for read in reads {
        let line = lines.line(read.start);
        let (variable, dynamic) = match read.name {
            Name::Literal(variable) if variable.starts_with(PREFIX) => (variable, false),
            Name::Literal(variable) => {
                others.entry(line).or_default().push(variable);
                continue;
            }
            Name::Built(shown) => (shown, true),
            Name::Opaque { idents, alone } => {
                match idents.iter().find_map(|ident| assigned.get(ident)) {
                    Some(Name::Literal(variable)) if alone => (variable.clone(), false),
                    Some(Name::Literal(variable)) => (shown(variable), true),
                    Some(Name::Built(shown)) => (shown.clone(), true),
                    Some(Name::Opaque { .. }) | None => {
                        if !lines.around(read.start, read.end).contains(PREFIX) {
                            continue;
                        }
                        ("{…}".to_owned(), true)
                    }
                }
            }
        };
        scan.hits.push(SourceHit {
            line,
            column: (read.start - lines.start_of(line) + 1) as u64,
            variable,
            dynamic,
            text: cut(lines.text(line)),
        });
    }

    static GREP: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(RUNBOOK_GREP).expect("the runbook's grep is a valid regex"));
    for (at, line_text) in text.split('\n').enumerate() {
        let line = at as u64 + 1;
        if !GREP.is_match(line_text) || scan.hits.iter().any(|hit| hit.line == line) {
            continue;
        }
        let why = match others.get(&line) {
            Some(names) => format!("reads {}, not a FLAG_* variable", names.join(" and ")),
            None => "names os.environ.get but calls it with no variable's name".to_owned(),
        };
        scan.grep_only.push(SourceGrepOnly {
            line,
            text: cut(line_text),
            why,
        });
    }
    scan
}

/// One read, whatever its name.
struct Read {
    /// Byte offsets: where the read starts, where its name ends.
    start: usize,
    end: usize,
    name: Name,
}

/// Every read the language's patterns find in `text`, in no particular order.
fn reads(language: Language, text: &str) -> Vec<Read> {
    let mut reads = Vec::new();
    for pattern in patterns(language, text).iter() {
        for captures in pattern.regex.captures_iter(text) {
            let Some(whole) = captures.get(0) else {
                continue;
            };
            if pattern.bare && text[..whole.start()].ends_with(['.', ':']) {
                continue;
            }
            match pattern.form {
                Form::Call => {
                    // A read inside a line comment ends with the line; a read without
                    // brackets (`ENV.fetch "FLAG_X"`) too.
                    let until = if !whole.as_str().ends_with(['(', '['])
                        || in_line_comment(language, text, whole.start())
                    {
                        Until::LineEnd
                    } else {
                        Until::Closer
                    };
                    let argument = name::argument(language, text, whole.end(), until);
                    if let Some(name::Argument {
                        name: Some(name),
                        end,
                    }) = argument
                    {
                        reads.push(Read {
                            start: whole.start(),
                            end,
                            name,
                        });
                    }
                }
                Form::Named => {
                    if let Some(name) = captures.name("name") {
                        reads.push(Read {
                            start: whole.start(),
                            end: whole.end(),
                            name: Name::Literal(name.as_str().to_owned()),
                        });
                    }
                }
                Form::Destructure => {
                    if let Some(list) = captures.name("list") {
                        reads.extend(destructured(list.start(), list.as_str()));
                    }
                }
                // No name at all: judged as a name the scan cannot see into.
                Form::Whole => reads.push(Read {
                    start: whole.start(),
                    end: whole.end(),
                    name: Name::Opaque {
                        idents: Vec::new(),
                        alone: false,
                    },
                }),
            }
        }
    }
    reads
}

/// The names taken apart in `{ FLAG_A, FLAG_B: b = "0", ...rest }`, at their places.
fn destructured(offset: usize, list: &str) -> Vec<Read> {
    let mut reads = Vec::new();
    let mut at = 0;
    for item in list.split(',') {
        let trimmed = item.trim_start();
        let start = offset + at + (item.len() - trimmed.len());
        at += item.len() + 1;
        let key: &str = trimmed
            .split(|c: char| c == ':' || c == '=' || c.is_whitespace())
            .next()
            .unwrap_or("");
        if key.is_empty() || key.starts_with("...") {
            continue;
        }
        let key = key.trim_matches(|c| c == '"' || c == '\'');
        reads.push(Read {
            start,
            end: start + key.len(),
            name: Name::Literal(key.to_owned()),
        });
    }
    reads
}

/// Each name assigned a literal that starts with `FLAG_`, or a name built with such
/// a part, anywhere in the file: `name = f"FLAG_{key}"`, `const v = "FLAG_" + k`,
/// `name := fmt.Sprintf("FLAG_%s", k)`, `let name: String = format!(…)`. The first
/// such assignment of a name counts.
fn assignments(language: Language, text: &str) -> HashMap<String, Name> {
    static ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b([A-Za-z_$][\w$]*)[ \t]*(?::[ \t]*[\w$<>\[\]., ]{1,60})?[ \t]*:?=")
            .expect("the assignment pattern is a valid regex")
    });
    let mut assigned = HashMap::new();
    if !text.contains(PREFIX) {
        return assigned;
    }
    for captures in ASSIGN.captures_iter(text) {
        let (Some(whole), Some(ident)) = (captures.get(0), captures.get(1)) else {
            continue;
        };
        // `==`, `=>` and `obj.attr = …` are no assignment of a plain name.
        if text[whole.end()..].starts_with(['=', '>']) || text[..whole.start()].ends_with('.') {
            continue;
        }
        let Some(argument) = name::argument(language, text, whole.end(), Until::LineEnd) else {
            continue;
        };
        let flagged = match &argument.name {
            Some(Name::Literal(literal)) => literal.starts_with(PREFIX),
            Some(Name::Built(_)) => true,
            _ => false,
        };
        if flagged && let Some(name) = argument.name {
            assigned.entry(ident.as_str().to_owned()).or_insert(name);
        }
    }
    assigned
}

/// Whether the line comment marker comes before `at` on its line (a naive look: a
/// `#` inside a string before it counts too, which at worst ends the argument at the
/// line's end).
fn in_line_comment(language: Language, text: &str, at: usize) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    text[line_start..at].contains(language.line_comment())
}

/// `line` trimmed and cut to [`MAX_TEXT_CHARS`] characters, `…` marking a cut.
pub(super) fn cut(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(MAX_TEXT_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

/// Where each line of a text starts.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// The 1-based line of byte `at`.
    fn line(&self, at: usize) -> u64 {
        self.starts.partition_point(|&start| start <= at) as u64
    }

    fn start_of(&self, line: u64) -> usize {
        self.starts[line as usize - 1]
    }

    fn end_of(&self, line: u64) -> usize {
        self.starts
            .get(line as usize)
            .map_or(self.text.len(), |next| next - 1)
    }

    fn text(&self, line: u64) -> &'a str {
        &self.text[self.start_of(line)..self.end_of(line)]
    }

    /// The whole lines from the one holding `start` to the one holding `end`.
    fn around(&self, start: usize, end: usize) -> &'a str {
        &self.text[self.start_of(self.line(start))..self.end_of(self.line(end))]
    }
}
