//! The audit payload's reason: one rule for the console, the API and the CLI.

use vexil_core::audit::{MAX_REASON_CHARS, ReasonTooLong, reason};

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
    assert_eq!(reason(Some(&over)), Err(ReasonTooLong));
    assert_eq!(
        ReasonTooLong.to_string(),
        "the reason is longer than 500 characters"
    );
}
