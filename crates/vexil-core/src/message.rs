//! How text that came from outside appears inside vexil's one-line error messages.
//!
//! Every name an operator typed (a key, a field, an env) is shown single-quoted,
//! escaped so that a newline or a terminal escape cannot break the line, and cut
//! short so that a pasted essay does not flood the screen.

use std::fmt;

/// `text` single-quoted and escaped, at most [`LIMIT`] characters of it.
pub(crate) fn quoted(text: &str) -> Quoted<'_> {
    Quoted(text)
}

/// The most characters of an outside text that a message repeats.
pub(crate) const LIMIT: usize = 64;

pub(crate) struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for ch in self.0.chars().take(LIMIT) {
            // `escape_debug` escapes both quote characters; inside single quotes a double
            // quote needs none.
            if ch == '"' {
                f.write_str("\"")?;
            } else {
                write!(f, "{}", ch.escape_debug())?;
            }
        }
        f.write_str("'")?;
        if self.0.chars().nth(LIMIT).is_some() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// `text` with every character free text may not hold escaped (`crate::text`: control
/// characters, line breaks, bidi controls), so that a message or a record that quotes
/// input (as a parser's may) stays one line, reads in its order, and cannot drive the
/// operator's terminal.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|ch| {
            if crate::text::refused(ch).is_some() {
                ch.escape_debug().to_string()
            } else {
                ch.to_string()
            }
        })
        .collect()
}

/// An error and its causes on one line (`cannot open the database: connection
/// refused`), for a log field or a message that must say everything at once.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_escapes_and_cuts() {
        assert_eq!(quoted("billing_v2").to_string(), "'billing_v2'");
        assert_eq!(quoted("a\nb\u{1b}[31m").to_string(), "'a\\nb\\u{1b}[31m'");
        assert_eq!(quoted("it's \"x\"").to_string(), "'it\\'s \"x\"'");
        assert_eq!(quoted("héllo").to_string(), "'héllo'");
        let long = "x".repeat(LIMIT + 1);
        assert_eq!(
            quoted(&long).to_string(),
            format!("'{}'…", "x".repeat(LIMIT))
        );
    }
}
