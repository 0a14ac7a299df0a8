//! The audit payload's reason: one rule for the console, the API and the CLI.

use vexil_core::audit::{MAX_REASON_CHARS, ReasonError, reason};
use vexil_core::text::{Refused, TextError};

#[test]
fn a_reason_is_trimmed_optional_and_bounded() {
    assert_eq!(reason(None), Ok(None));
    assert_eq!(reason(Some("  \t ")), Ok(None));
    assert_eq!(
        reason(Some("  INC-42: roll back \n")),
        Ok(Some("INC-42: roll back"))
    );
    // Characters, not bytes: 500 accented letters are 1,000 bytes and still fit.
    let most = "é".repeat(MAX_REASON_CHARS);
    assert_eq!(reason(Some(&most)), Ok(Some(most.as_str())));
    let over = "x".repeat(MAX_REASON_CHARS + 1);
    assert_eq!(reason(Some(&over)), Err(ReasonError::TooLong));
    assert_eq!(
        ReasonError::TooLong.to_string(),
        "reason: it is longer than 500 characters"
    );
}

#[test]
fn a_reason_is_one_line_of_plain_text() {
    // Trimmed first: a trailing newline (`--reason "$(cat note)"`) is no refusal.
    assert_eq!(reason(Some("INC-42\n")), Ok(Some("INC-42")));
    assert_eq!(
        reason(Some(" INC-42\nroll back")),
        Err(ReasonError::Text(TextError {
            field: "reason",
            ch: '\n',
            position: 7,
            why: Refused::LineBreak
        }))
    );
    assert_eq!(
        reason(Some("x\u{202E}y")).unwrap_err().to_string(),
        "reason: character 2 is U+202E, a bidi control, which would reorder the text shown around it: remove it"
    );
}
