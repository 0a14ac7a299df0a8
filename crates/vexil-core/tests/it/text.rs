//! Free text from outside: which characters are refused, and how a refusal reads
//! (docs/api.md#free-text).

use proptest::prelude::*;
use vexil_core::text::{Refused, TextError, check, refused};

#[track_caller]
fn check_char(ch: char, expected: Option<Refused>) {
    assert_eq!(refused(ch), expected, "U+{:04X}", u32::from(ch));
}

#[test]
fn the_classifier_refuses_controls_line_breaks_and_bidi_controls() {
    use Refused::{Bidi, Control, LineBreak, Nul};
    for (ch, expected) in [
        ('\0', Some(Nul)),
        ('\t', Some(LineBreak)),
        ('\n', Some(LineBreak)),
        ('\r', Some(LineBreak)),
        ('\u{2028}', Some(LineBreak)),
        ('\u{2029}', Some(LineBreak)),
        ('\u{1}', Some(Control)),
        ('\u{1b}', Some(Control)),
        ('\u{1f}', Some(Control)),
        ('\u{7f}', Some(Control)),
        ('\u{80}', Some(Control)),
        ('\u{85}', Some(Control)),
        ('\u{9b}', Some(Control)),
        ('\u{9f}', Some(Control)),
        ('\u{202A}', Some(Bidi)),
        ('\u{202B}', Some(Bidi)),
        ('\u{202C}', Some(Bidi)),
        ('\u{202D}', Some(Bidi)),
        ('\u{202E}', Some(Bidi)),
        ('\u{2066}', Some(Bidi)),
        ('\u{2067}', Some(Bidi)),
        ('\u{2068}', Some(Bidi)),
        ('\u{2069}', Some(Bidi)),
        // Allowed: printable text in any script, and the bidi marks that mixed
        // Arabic or Hebrew text needs.
        (' ', None),
        ('a', None),
        ('~', None),
        ('\u{a0}', None),
        ('é', None),
        ('\u{5d0}', None),
        ('\u{627}', None),
        ('\u{200E}', None),
        ('\u{200F}', None),
        ('\u{061C}', None),
        ('\u{2065}', None),
        ('\u{206A}', None),
        ('😀', None),
    ] {
        check_char(ch, expected);
    }
}

#[test]
fn a_refusal_names_the_field_the_code_point_and_the_position() {
    assert_eq!(check("reason", "INC-42: roll back"), Ok(()));
    assert_eq!(check("reason", ""), Ok(()));
    // Positions count characters, not bytes; the first refused one is named.
    let error = check("reason", "héllo\u{202E}\0").unwrap_err();
    assert_eq!(
        error,
        TextError {
            field: "reason",
            ch: '\u{202E}',
            position: 6,
            why: Refused::Bidi
        }
    );
    for (field, text, message) in [
        (
            "reason",
            "héllo\u{202E}",
            "reason: character 6 is U+202E, a bidi control, which would reorder the text shown around it: remove it",
        ),
        (
            "flag",
            "a\0",
            "flag: character 2 is U+0000, a NUL, which the database cannot store: remove it",
        ),
        (
            "actor",
            "\u{1b}[31m",
            "actor: character 1 is U+001B, a control character, which could drive a terminal: remove it",
        ),
        (
            "reason",
            "a\tb",
            "reason: character 2 is U+0009, a tab or line break, where the text must be one line: remove it",
        ),
    ] {
        assert_eq!(check(field, text).unwrap_err().to_string(), message);
    }
}

proptest! {
    /// Any text is either accepted whole or refused at its first refused character.
    #[test]
    fn check_names_the_first_refused_character(text in any::<String>()) {
        let first = text.chars().position(|ch| refused(ch).is_some());
        match check("field", &text) {
            Ok(()) => prop_assert_eq!(first, None),
            Err(error) => {
                prop_assert_eq!(Some(error.position - 1), first);
                prop_assert_eq!(text.chars().nth(error.position - 1), Some(error.ch));
                let message = error.to_string();
                prop_assert!(!message.chars().any(|ch| refused(ch).is_some()), "{:?}", message);
            }
        }
    }
}
