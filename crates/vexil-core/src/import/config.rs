//! An app's config as `vexil import` reads it: `heroku config --json --app X` output
//! (one JSON object, name → value) or a dotenv file (`KEY=VALUE`, `export KEY=VALUE`,
//! quotes, comments, blank lines), each `FLAG_*` variable with the line it is on.
//!
//! Every other variable is skipped as it is read: its value is never copied, kept or
//! shown, since config holds secrets (database URLs, API keys). For the same reason
//! an error names the line and what is wrong with it, never the line's text: a line
//! that does not parse may be the middle of a secret.

use crate::env_var::PREFIX;

/// How a config file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `heroku config --json`: `{"NAME": "value", …}`.
    Json,
    /// `NAME=value` lines (`heroku config --shell` prints these too).
    Dotenv,
}

impl Format {
    /// JSON when the first character that is not white space is `{`; else dotenv.
    pub fn detect(text: &str) -> Format {
        match text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .chars()
            .next()
        {
            Some('{') => Format::Json,
            _ => Format::Dotenv,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Dotenv => "dotenv",
        }
    }
}

/// One `FLAG_*` variable of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    /// The value as written, unquoted; `None` for a JSON value that is no string,
    /// number or boolean (`null`, an object).
    pub raw: Option<String>,
    /// 1-based: the line the name is on.
    pub line: u64,
}

/// What a config file holds, as far as an import may know it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Every `FLAG_*` variable, in file order, repeats included.
    pub variables: Vec<Variable>,
    /// How many other variables were skipped (their names and values are not kept).
    pub ignored: usize,
}

/// Why a config file cannot be read; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("line {line}: {why}")]
    Line { line: u64, why: &'static str },
    /// serde_json's own words (it never repeats the text), without its position.
    #[error("line {line}, column {column}: not valid JSON: {why}")]
    Json { line: u64, column: u64, why: String },
}

impl ConfigError {
    pub fn line(&self) -> u64 {
        match self {
            ConfigError::Line { line, .. } | ConfigError::Json { line, .. } => *line,
        }
    }
}

/// The `FLAG_*` variables of `text`, written as `format`.
pub fn read(text: &str, format: Format) -> Result<Config, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Json => json(text),
        Format::Dotenv => dotenv(text),
    }
}

fn line_error(line: u64, why: &'static str) -> ConfigError {
    ConfigError::Line { line, why }
}

/// A JSON object of names to values. serde_json checks the whole text first (its
/// errors say where, and never what); then one walk over the object finds each key's
/// line, which serde_json does not keep.
fn json(text: &str) -> Result<Config, ConfigError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Err(e) => {
            let message = e.to_string();
            let why = match message.rfind(" at line ") {
                Some(at) => message[..at].to_owned(),
                None => message,
            };
            return Err(ConfigError::Json {
                line: e.line() as u64,
                column: e.column() as u64,
                why,
            });
        }
        Ok(serde_json::Value::Object(_)) => {}
        Ok(_) => {
            return Err(line_error(
                1,
                "the JSON is not an object of names to values (heroku config --json prints one)",
            ));
        }
    }
    let mut walk = JsonWalk { text, pos: 0 };
    let mut config = Config::default();
    walk.skip_space();
    walk.pos += 1; // `{`, checked above.
    loop {
        walk.skip_space();
        match walk.peek() {
            Some('}') | None => break,
            Some(',') => {
                walk.pos += 1;
                continue;
            }
            _ => {}
        }
        let line = walk.line();
        let name = walk.string();
        walk.skip_space();
        walk.pos += 1; // `:`
        walk.skip_space();
        if !name.starts_with(PREFIX) {
            walk.skip_value();
            config.ignored += 1;
            continue;
        }
        let raw = match walk.peek() {
            Some('"') => Some(walk.string()),
            Some('{' | '[') => {
                walk.skip_value();
                None
            }
            _ => {
                let start = walk.pos;
                walk.skip_value();
                Some(walk.text[start..walk.pos].trim().to_owned()).filter(|v| v != "null")
            }
        };
        config.variables.push(Variable { name, raw, line });
    }
    Ok(config)
}

/// A walk over JSON text already known to be valid.
struct JsonWalk<'a> {
    text: &'a str,
    pos: usize,
}

impl JsonWalk<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn line(&self) -> u64 {
        self.text[..self.pos].matches('\n').count() as u64 + 1
    }

    fn skip_space(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The string that starts here, decoded; past its closing quote.
    fn string(&mut self) -> String {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut at = start + 1;
        while bytes[at] != b'"' {
            at += if bytes[at] == b'\\' { 2 } else { 1 };
        }
        self.pos = at + 1;
        serde_json::from_str(&self.text[start..self.pos]).unwrap_or_default()
    }

    /// Past the value that starts here: a string, a nested object or array, or a
    /// number, `true`, `false` or `null`.
    fn skip_value(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.peek() {
                Some('"') => {
                    self.string();
                    if depth == 0 {
                        return;
                    }
                    continue;
                }
                Some('{' | '[') => depth += 1,
                Some('}' | ']') if depth == 0 => return,
                Some('}' | ']') => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return;
                    }
                }
                Some(',') if depth == 0 => return,
                Some(c) if c.is_whitespace() && depth == 0 => return,
                None => return,
                _ => {}
            }
            self.pos += self.peek().map_or(1, char::len_utf8);
        }
    }
}

/// `NAME=value` lines. A value may be unquoted (to the end of the line, less a
/// ` # comment`), or quoted: `'…'` as written, `"…"` with backslash escapes, either
/// running over several lines (a PEM key), and segments may follow one another as in
/// a shell (`'it'\''s'`, which `heroku config --shell` writes).
fn dotenv(text: &str) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    let mut lines = Lines {
        text,
        pos: 0,
        line: 1,
    };
    while lines.pos < text.len() {
        let line = lines.line;
        let rest = lines.rest_of_line().trim();
        if rest.is_empty() || rest.starts_with('#') {
            lines.next_line();
            continue;
        }
        if line == 1 && rest.starts_with("===") {
            return Err(line_error(
                1,
                "this is `heroku config`'s table; give its --json (or --shell) output",
            ));
        }
        lines.skip_blanks();
        if lines.rest_of_line().starts_with("export")
            && lines.rest_of_line()[6..].starts_with([' ', '\t'])
        {
            lines.pos += 6;
            lines.skip_blanks();
        }
        let name = lines.name();
        lines.skip_blanks();
        if name.is_empty() || !lines.rest_of_line().starts_with('=') {
            return Err(line_error(
                line,
                "not NAME=VALUE (the line is not shown: it may hold a secret)",
            ));
        }
        lines.pos += 1;
        lines.skip_blanks();
        let value = lines.value(line)?;
        if name.starts_with(PREFIX) {
            config.variables.push(Variable {
                name: name.to_owned(),
                raw: Some(value),
                line,
            });
        } else {
            config.ignored += 1;
        }
        lines.next_line();
    }
    Ok(config)
}

/// A cursor over a dotenv file that counts lines.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn rest_of_line(&self) -> &'a str {
        let rest = &self.text[self.pos..];
        &rest[..rest.find('\n').unwrap_or(rest.len())]
    }

    fn next_line(&mut self) {
        match self.text[self.pos..].find('\n') {
            Some(n) => {
                self.pos += n + 1;
                self.line += 1;
            }
            None => self.pos = self.text.len(),
        }
    }

    fn skip_blanks(&mut self) {
        let rest = self.rest_of_line();
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    /// A variable name: a letter or `_`, then letters, digits, `_`, `.` or `-`.
    fn name(&mut self) -> &'a str {
        let rest = self.rest_of_line();
        let len = rest
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphabetic()
                    || c == '_'
                    || (i > 0 && (c.is_ascii_digit() || c == '.' || c == '-')))
            })
            .map_or(rest.len(), |(i, _)| i);
        self.pos += len;
        &rest[..len]
    }

    /// The value that starts here (the name's line is `line`), leaving the cursor on
    /// its last line.
    fn value(&mut self, line: u64) -> Result<String, ConfigError> {
        let rest = self.rest_of_line();
        if !rest.starts_with(['\'', '"']) {
            // Unquoted: to the end of the line, less a comment after white space.
            let end = rest
                .char_indices()
                .find(|&(i, c)| c == '#' && i > 0 && rest[..i].ends_with([' ', '\t']))
                .map_or(rest.len(), |(i, _)| i);
            let value = rest[..end].trim().trim_end_matches('\r').to_owned();
            self.pos += rest.len();
            return Ok(value);
        }
        let mut value = String::new();
        let unclosed = || line_error(line, "a quoted value is never closed");
        while let Some(c) = self.text[self.pos..].chars().next() {
            match c {
                '\'' => {
                    let body = &self.text[self.pos + 1..];
                    let end = body.find('\'').ok_or_else(unclosed)?;
                    value.push_str(&body[..end]);
                    self.advance(end + 2);
                }
                '"' => {
                    self.pos += 1;
                    loop {
                        let c = self.text[self.pos..].chars().next().ok_or_else(unclosed)?;
                        self.advance(c.len_utf8());
                        match c {
                            '"' => break,
                            '\\' => {
                                let next =
                                    self.text[self.pos..].chars().next().ok_or_else(unclosed)?;
                                self.advance(next.len_utf8());
                                value.push(if next == 'n' { '\n' } else { next });
                            }
                            c => value.push(c),
                        }
                    }
                }
                '\\' => {
                    self.pos += 1;
                    if let Some(next) = self.text[self.pos..].chars().next().filter(|&n| n != '\n')
                    {
                        value.push(next);
                        self.pos += next.len_utf8();
                    }
                }
                c if c.is_whitespace() => break,
                c => {
                    value.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        let after = self.rest_of_line().trim();
        if !after.is_empty() && !after.starts_with('#') {
            return Err(line_error(
                self.line,
                "text after a quoted value (the line is not shown: it may hold a secret)",
            ));
        }
        self.pos += self.rest_of_line().len();
        Ok(value)
    }

    /// `n` bytes further, counting the line breaks passed.
    fn advance(&mut self, n: usize) {
        self.line += self.text[self.pos..self.pos + n].matches('\n').count() as u64;
        self.pos += n;
    }
}
