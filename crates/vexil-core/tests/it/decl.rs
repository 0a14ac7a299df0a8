//! The flags file: what a valid file gives, and every kind of error with its exact
//! line, column, key and message.

use vexil_core::decl::{DEFAULT_SOAK_PERIOD_HOURS, MAX_FILE_BYTES};
use vexil_core::{FlagSet, Risk};

/// Parses `yaml` as `f.yaml` and compares the error lines (all of them, in order)
/// with `expected`; an empty `expected` means the file must parse.
#[track_caller]
fn check(yaml: &str, expected: &[&str]) {
    let actual: Vec<String> = match FlagSet::parse("f.yaml", yaml.as_bytes()) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.lines().collect(),
    };
    assert_eq!(actual, expected, "\n--- input ---\n{yaml}");
}

const GOOD: &str = "\
billing_v2:
  default: false
  soak_period_hours: 48
  description: \"New billing pipeline — façade for Stripe 🧾\"
  risk: high
search_typo_tolerance:
  default: true
  description: Fuzzy matching in search
  risk: low
";

#[test]
fn a_valid_file_gives_its_flags_in_file_order() {
    let flags = FlagSet::parse("f.yaml", GOOD.as_bytes()).unwrap();
    let keys: Vec<&str> = flags.iter().map(|d| d.key().as_str()).collect();
    assert_eq!(keys, ["billing_v2", "search_typo_tolerance"]);

    let billing = flags.get("billing_v2").unwrap();
    assert!(!billing.default());
    assert_eq!(billing.soak_period_hours(), 48);
    assert_eq!(
        billing.description(),
        "New billing pipeline — façade for Stripe 🧾"
    );
    assert_eq!(billing.risk(), Risk::High);

    let search = flags.get("search_typo_tolerance").unwrap();
    assert!(search.default());
    assert_eq!(search.soak_period_hours(), DEFAULT_SOAK_PERIOD_HOURS);
    assert_eq!(search.risk(), Risk::Low);
    assert_eq!(flags.get("nope"), None);
}

#[test]
fn valid_edge_cases() {
    check("{}", &[]);
    check(
        "a:\n  default: true\n  soak_period_hours: 0\n  description: x\n  risk: medium\n",
        &[],
    );
    check(
        "a: {default: false, soak_period_hours: 8760, description: x, risk: low}\n",
        &[],
    );
    // An anchor and an alias may share a value.
    check(
        "a: {default: false, description: &shared Shared text, risk: low}\n\
         b: {default: false, description: *shared, risk: low}\n",
        &[],
    );
    // CRLF line endings and a byte-order mark are some editors' habits.
    check(
        "\u{feff}a:\r\n  default: true\r\n  description: x\r\n  risk: low\r\n",
        &[],
    );
    let key64 = format!("a{}", "b".repeat(63));
    check(
        &format!("{key64}: {{default: true, description: x, risk: low}}\n"),
        &[],
    );
}

#[test]
fn a_folded_description_is_its_one_line() {
    let yaml = "a:\n  default: true\n  description: >\n    long\n    text\n  risk: low\n";
    let flags = FlagSet::parse("f.yaml", yaml.as_bytes()).unwrap();
    assert_eq!(flags.get("a").unwrap().description(), "long text");
}

#[test]
fn a_description_is_one_line_of_text() {
    check(
        "a:\n  default: true\n  description: |\n    two\n    lines\n  risk: low\n",
        &[
            "f.yaml:4:5: flag 'a': field 'description' must be one line of text; it contains '\\n' at position 4",
        ],
    );
    check(
        "a: {default: true, description: \"tab\\there\", risk: low}\n",
        &[
            "f.yaml:1:33: flag 'a': field 'description' must be one line of text; it contains '\\t' at position 4",
        ],
    );
    check(
        "a: {default: true, description: \"bell\\a\", risk: low}\n",
        &[
            "f.yaml:1:33: flag 'a': field 'description' must be one line of text; it contains '\\u{7}' at position 5",
        ],
    );
}

#[test]
fn unknown_field_names_the_allowed_ones() {
    check(
        "billing_v2:\n  defualt: false\n  default: false\n  description: x\n  risk: low\n",
        &["f.yaml:2:3: flag 'billing_v2': unknown field 'defualt' \
           (expected one of: default, soak_period_hours, description, risk)"],
    );
    check(
        "a:\n  default: false\n  description: x\n  risk: low\n  owner: team-x\n  1: y\n",
        &[
            "f.yaml:5:3: flag 'a': unknown field 'owner' (expected one of: default, soak_period_hours, description, risk)",
            "f.yaml:6:3: flag 'a': a field name must be a string, found the integer 1 (expected one of: default, soak_period_hours, description, risk)",
        ],
    );
}

#[test]
fn duplicate_flags_and_fields() {
    check(
        "a: {default: true, description: x, risk: low}\n\
         b: {default: true, description: x, risk: low}\n\
         a: {default: false, description: y, risk: low}\n",
        &["f.yaml:3:1: flag 'a': duplicate flag (first declared at line 1)"],
    );
    check(
        "a:\n  default: true\n  description: x\n  risk: low\n  default: false\n",
        &["f.yaml:5:3: flag 'a': duplicate field 'default' (first at line 2)"],
    );
}

#[test]
fn wrong_types() {
    check(
        "a:\n  default: yes\n  description: x\n  risk: low\n",
        &[
            "f.yaml:2:12: flag 'a': field 'default' must be a boolean (true or false), found the string 'yes'",
        ],
    );
    check(
        "a:\n  default: \"true\"\n  description: x\n  risk: low\n",
        &[
            "f.yaml:2:12: flag 'a': field 'default' must be a boolean (true or false), found the string 'true'",
        ],
    );
    check(
        "a:\n  default: 1\n  description: x\n  risk: low\n",
        &[
            "f.yaml:2:12: flag 'a': field 'default' must be a boolean (true or false), found the integer 1",
        ],
    );
    check(
        "a:\n  default:\n  description: x\n  risk: low\n",
        &["f.yaml:2:10: flag 'a': field 'default' must be a boolean (true or false), found null"],
    );
    check(
        "a:\n  default: false\n  description: [x]\n  risk: low\n",
        &[
            "f.yaml:3:16: flag 'a': field 'description' must be a non-empty string, found a sequence",
        ],
    );
    check(
        "a:\n  default: false\n  description: 42\n  risk: {level: low}\n",
        &[
            "f.yaml:3:16: flag 'a': field 'description' must be a non-empty string, found the integer 42",
            "f.yaml:4:9: flag 'a': field 'risk' must be one of low, medium, high, found a mapping",
        ],
    );
}

#[test]
fn missing_fields_point_at_the_flag() {
    check(
        "a:\n  soak_period_hours: 4\n",
        &[
            "f.yaml:1:1: flag 'a': missing field 'default'",
            "f.yaml:1:1: flag 'a': missing field 'description'",
            "f.yaml:1:1: flag 'a': missing field 'risk'",
        ],
    );
    check(
        "ok: {default: true, description: x, risk: low}\nbare:\n",
        &[
            "f.yaml:2:5: flag 'bare': the declaration must be a mapping with default, description and risk, found null",
        ],
    );
    check(
        "a: true\n",
        &[
            "f.yaml:1:4: flag 'a': the declaration must be a mapping with default, description and risk, found the boolean true",
        ],
    );
}

#[test]
fn empty_description() {
    check(
        "a:\n  default: true\n  description: \"\"\n  risk: low\n",
        &["f.yaml:3:16: flag 'a': field 'description' is empty"],
    );
    check(
        "a:\n  default: true\n  description: \"  \\t \"\n  risk: low\n",
        &["f.yaml:3:16: flag 'a': field 'description' is empty"],
    );
}

#[test]
fn risk_outside_the_three_values() {
    check(
        "a:\n  default: true\n  description: x\n  risk: extreme\n",
        &[
            "f.yaml:4:9: flag 'a': field 'risk' must be one of low, medium, high, found the string 'extreme'",
        ],
    );
    check(
        "a:\n  default: true\n  description: x\n  risk: High\n",
        &[
            "f.yaml:4:9: flag 'a': field 'risk' must be one of low, medium, high, found the string 'High'",
        ],
    );
}

#[test]
fn soak_period_must_be_a_whole_number_of_hours() {
    #[track_caller]
    fn soak(value: &str, found: &str) {
        check(
            &format!(
                "a:\n  default: true\n  soak_period_hours: {value}\n  description: x\n  risk: low\n"
            ),
            &[&format!(
                "f.yaml:3:22: flag 'a': field 'soak_period_hours' must be a whole number \
                 of hours from 0 to 8760, found {found}"
            )],
        );
    }
    soak("-1", "the integer -1");
    soak("1.5", "the number 1.5");
    soak("8761", "the integer 8761");
    soak("\"24\"", "the string '24'");
    soak("4294967296", "the integer 4294967296");
    soak("24.0", "the number 24.0");
    soak(".inf", "the number inf");
    soak("1_000", "the string '1_000'");
    // A bare `soak_period_hours:` is null, located where the value would start.
    check(
        "a:\n  default: true\n  soak_period_hours:\n  description: x\n  risk: low\n",
        &[
            "f.yaml:3:20: flag 'a': field 'soak_period_hours' must be a whole number of hours from 0 to 8760, found null",
        ],
    );
}

#[test]
fn invalid_and_reserved_keys() {
    check(
        "Billing-V2: {default: true, description: x, risk: low}\n",
        &[
            "f.yaml:1:1: flag 'Billing-V2': invalid key: it must start with a lower-case letter (a-z)",
        ],
    );
    check(
        "billing-v2: {default: true, description: x, risk: low}\n",
        &[
            "f.yaml:1:1: flag 'billing-v2': invalid key: it contains '-' at position 8; only a-z, 0-9 and _ are allowed",
        ],
    );
    let key65 = format!("a{}", "b".repeat(64));
    check(
        &format!("{key65}: {{default: true, description: x, risk: low}}\n"),
        &[&format!(
            "f.yaml:1:1: flag 'a{}'…: invalid key: it is 65 characters long; the limit is 64",
            "b".repeat(63)
        )],
    );
    check(
        "123: {default: true, description: x, risk: low}\n",
        &["f.yaml:1:1: a flag key must be a string, found the integer 123"],
    );
    check(
        "console_feature_flags_db: {default: true, description: x, risk: low}\n",
        &[
            "f.yaml:1:1: flag 'console_feature_flags_db': the key is reserved: \
           its variable FLAG_CONSOLE_FEATURE_FLAGS_DB is the master switch of the DB layer",
        ],
    );
}

#[test]
fn a_document_that_is_not_a_mapping() {
    check(
        "- a\n- b\n",
        &["f.yaml:1:1: the file must be a mapping of flag keys to declarations, found a sequence"],
    );
    check(
        "just text\n",
        &[
            "f.yaml:1:1: the file must be a mapping of flag keys to declarations, found the string 'just text'",
        ],
    );
    check(
        "",
        &["f.yaml:1:1: the file is empty: declare at least one flag, or write {} to declare none"],
    );
    check(
        "# only a comment\n",
        &["f.yaml:1:1: the file is empty: declare at least one flag, or write {} to declare none"],
    );
}

#[test]
fn a_non_finite_soak_does_not_hide_the_other_errors() {
    check(
        "a:\n  default: yes\n  soak_period_hours: .nan\n  description: x\n  risk: none\n",
        &[
            "f.yaml:2:12: flag 'a': field 'default' must be a boolean (true or false), found the string 'yes'",
            "f.yaml:3:22: flag 'a': field 'soak_period_hours' must be a whole number of hours from 0 to 8760, found the number NaN",
            "f.yaml:5:9: flag 'a': field 'risk' must be one of low, medium, high, found the string 'none'",
        ],
    );
}

#[test]
fn a_very_long_key_is_reported_as_a_key() {
    let key = format!("a{}", "b".repeat(1999));
    check(
        &format!("{key}: {{default: true, description: x, risk: low}}\n"),
        &[&format!(
            "f.yaml:1:1: flag 'a{}'…: invalid key: it is 2000 characters long; the limit is 64",
            "b".repeat(63)
        )],
    );
}

#[test]
fn yaml_syntax_errors_are_located() {
    check(
        "a:\n  default: true\n b: [\n",
        &["f.yaml:3:2: YAML syntax: while parsing a block mapping, did not find expected key"],
    );
    check(
        "a: \"unterminated\n",
        &["f.yaml:1:4: YAML syntax: unclosed quote"],
    );
    check(
        "base: &b {default: true, description: x, risk: low}\na:\n  <<: *b\n",
        &[
            "f.yaml:3:3: YAML syntax: merge keys (<<) are not allowed in a flags file; write out each flag's fields",
        ],
    );
    check(
        "a: {default: true, description: !secret x, risk: low}\n",
        &["f.yaml:1:41: YAML syntax: unsupported tag `!secret`"],
    );
    check(
        "a: {default: true, description: x, risk: low}\n---\nb: 1\n",
        &[
            "f.yaml:3:1: YAML syntax: the file holds more than one YAML document (a second '---'); a flags file is one mapping",
        ],
    );
}

#[test]
fn every_error_in_a_file_is_reported_at_once() {
    let yaml = "\
billing_v2:
  defualt: false
  description: \"\"
  risk: extreme
search:
  default: yes
  soak_period_hours: -2
  description: ok
  risk: low
Bad_Key: {default: true, description: x, risk: low}
search: {default: true, description: x, risk: low}
fine: {default: true, description: x, risk: low}
";
    check(
        yaml,
        &[
            "f.yaml:1:1: flag 'billing_v2': missing field 'default'",
            "f.yaml:2:3: flag 'billing_v2': unknown field 'defualt' (expected one of: default, soak_period_hours, description, risk)",
            "f.yaml:3:16: flag 'billing_v2': field 'description' is empty",
            "f.yaml:4:9: flag 'billing_v2': field 'risk' must be one of low, medium, high, found the string 'extreme'",
            "f.yaml:6:12: flag 'search': field 'default' must be a boolean (true or false), found the string 'yes'",
            "f.yaml:7:22: flag 'search': field 'soak_period_hours' must be a whole number of hours from 0 to 8760, found the integer -2",
            "f.yaml:10:1: flag 'Bad_Key': invalid key: it must start with a lower-case letter (a-z)",
            "f.yaml:11:1: flag 'search': duplicate flag (first declared at line 5)",
        ],
    );
}

/// Parses on a thread with half the stack of a test thread or a tokio worker, so
/// that a stack overflow in the parser shows here rather than on a server's worker.
/// (A debug build spends about 50 KiB of stack per nesting level.)
fn parse_on_small_stack(text: String) -> Result<FlagSet, vexil_core::DeclErrors> {
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || FlagSet::parse("f.yaml", text.as_bytes()))
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deep_flow_nesting_is_refused_cleanly() {
    // 10,000 levels of nesting: refused by the depth limit, not by a stack overflow.
    let deep = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(
        parse_on_small_stack(deep)
            .unwrap_err()
            .lines()
            .collect::<Vec<_>>(),
        ["f.yaml:1:20: YAML syntax: the document nests deeper than 16 levels"]
    );
}

#[test]
fn deep_block_nesting_is_refused_cleanly() {
    let mut block = String::from("a:\n");
    for depth in 1..10_000 {
        block.push_str(&"  ".repeat(depth.min(200)));
        block.push_str("k:\n");
    }
    assert_eq!(
        parse_on_small_stack(block)
            .unwrap_err()
            .lines()
            .collect::<Vec<_>>(),
        ["f.yaml:17:33: YAML syntax: the document nests deeper than 16 levels"]
    );
}

#[test]
fn a_10_mb_file_is_refused_before_it_is_parsed() {
    let big = "#".repeat(10 * 1024 * 1024);
    assert_eq!(
        FlagSet::parse("f.yaml", big.as_bytes())
            .unwrap_err()
            .to_string(),
        format!("f.yaml:1:1: the file is larger than the limit of {MAX_FILE_BYTES} bytes")
    );
}

#[test]
fn invalid_utf8_is_located_at_the_first_bad_byte() {
    assert_eq!(
        FlagSet::parse("f.yaml", b"a:\n  default: tr\xffue\n")
            .unwrap_err()
            .to_string(),
        "f.yaml:2:14: the file is not valid UTF-8"
    );
}

#[test]
fn an_alias_bomb_hits_the_parser_budget() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        bomb.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    let errors = FlagSet::parse("f.yaml", bomb.as_bytes()).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "f.yaml:6:15: YAML syntax: the document exceeds the parser's safety limits \
         (too many nodes, events or alias expansions); a flags file needs nothing of the kind"
    );
}
