//! Free text from outside (a reason, an audit or promotions filter, a name typed at
//! sign-in): the characters vexil refuses in it, one rule for every door
//! (docs/api.md#free-text).
//!
//! Refused, each for a reason an operator would give:
//!
//! - NUL: PostgreSQL's `text` cannot hold it, so it would fail the write (or the
//!   query) deep in the database instead of being refused at the door.
//! - Every other control character (C0, DEL, C1: `char::is_control`), TAB, LF and CR
//!   included: an ESC drives the terminal of whoever reads `vexil audit`, and a
//!   reason is one line in the audit page's sentence, in `vexil audit` and in the
//!   CLI's one-line messages. The console's reason inputs are single-line, so a line
//!   break can only come from a script, which gets a refusal naming the character
//!   rather than a silently rewritten reason. Leading and trailing whitespace is
//!   trimmed before the check where a field trims (a reason, a filter).
//! - The line and paragraph separators (U+2028, U+2029), for the same one line.
//! - The bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): they
//!   reorder the text shown after them, so an audit row would read otherwise than it
//!   is written.
//!
//! Allowed: the bidi marks (U+200E, U+200F, U+061C). They are zero-width and set the
//! direction of the characters next to them only; they cannot reorder a span, and a
//! reason in Arabic or Hebrew that quotes a ticket number needs them to read right.
//!
//! A refusal names the field, the character as `U+XXXX` (never the character itself,
//! which is what was refused) and its position, counted in characters from 1.

use std::fmt;

/// `text`, given for `field`, holds no refused character; else the first one.
pub fn check(field: &'static str, text: &str) -> Result<(), TextError> {
    match text
        .chars()
        .enumerate()
        .find_map(|(index, ch)| refused(ch).map(|why| (index, ch, why)))
    {
        None => Ok(()),
        Some((index, ch, why)) => Err(TextError {
            field,
            ch,
            position: index + 1,
            why,
        }),
    }
}

/// Why `ch` is refused in free text, or `None` when it is allowed.
pub fn refused(ch: char) -> Option<Refused> {
    match ch {
        '\0' => Some(Refused::Nul),
        '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' => Some(Refused::LineBreak),
        ch if ch.is_control() => Some(Refused::Control),
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Some(Refused::Bidi),
        _ => None,
    }
}

/// The kinds of refused character, each with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// U+0000, which the database cannot store.
    Nul,
    /// TAB, LF, CR, U+2028 or U+2029: the text must be one line.
    LineBreak,
    /// Any other C0 or C1 control character, or DEL.
    Control,
    /// A bidi embedding, override or isolate.
    Bidi,
}

impl Refused {
    fn describe(self) -> &'static str {
        match self {
            Refused::Nul => "a NUL, which the database cannot store",
            Refused::LineBreak => "a tab or line break, where the text must be one line",
            Refused::Control => "a control character, which could drive a terminal",
            Refused::Bidi => "a bidi control, which would reorder the text shown around it",
        }
    }
}

/// A refused character in a field's text: which, where, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextError {
    /// The field as the door names it (`reason`, `flag`, `actor`, …).
    pub field: &'static str,
    pub ch: char,
    /// In characters, from 1.
    pub position: usize,
    pub why: Refused,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: character {} is U+{:04X}, {}: remove it",
            self.field,
            self.position,
            u32::from(self.ch),
            self.why.describe()
        )
    }
}

impl std::error::Error for TextError {}
