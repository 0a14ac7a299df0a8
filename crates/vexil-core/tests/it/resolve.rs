//! Resolution, every cell of master switch × DB row × flag variable written out.

use vexil_core::{EnvSnapshot, FlagSet, MasterSwitch, Resolution, Source, resolve, resolve_key};

const MASTER: &str = "FLAG_CONSOLE_FEATURE_FLAGS_DB";
const MASTER_ON: Option<&str> = Some("1");
const MASTER_OFF: Option<&str> = Some("0");
const MASTER_UNSET: Option<&str> = None;
const MASTER_INVALID: Option<&str> = Some("enabled");

const ROW_ON: Option<bool> = Some(true);
const ROW_OFF: Option<bool> = Some(false);
const NO_ROW: Option<bool> = None;

const VAR_ON: Option<&str> = Some("on");
const VAR_OFF: Option<&str> = Some("off");
const VAR_INVALID: Option<&str> = Some("maybe");
const VAR_UNSET: Option<&str> = None;

/// A flag whose YAML default is on, so that "off" in a result always came from a
/// row or a variable.
fn flags() -> FlagSet {
    FlagSet::parse(
        "f.yaml",
        b"my_feature: {default: true, description: x, risk: low}",
    )
    .unwrap()
}

/// Resolves `my_feature` with the given master switch, row and variable, and compares
/// (value, source, dormant marker set, invalid marker set).
#[track_caller]
fn check(
    master: Option<&str>,
    row: Option<bool>,
    var: Option<&str>,
    expected: (bool, Source, bool, bool),
) {
    let mut pairs = vec![("PATH".to_owned(), "/bin".to_owned())];
    if let Some(value) = master {
        pairs.push((MASTER.to_owned(), value.to_owned()));
    }
    if let Some(value) = var {
        pairs.push(("FLAG_MY_FEATURE".to_owned(), value.to_owned()));
    }
    let env = EnvSnapshot::capture(pairs);
    let flags = flags();
    let decl = flags.get("my_feature").unwrap();
    let resolved = resolve(decl, row, &env, env.master_switch());
    let actual = (
        resolved.value,
        resolved.source,
        resolved.dormant_env_var.is_some(),
        resolved.invalid_env_var.is_some(),
    );
    assert_eq!(
        actual, expected,
        "master {master:?}, row {row:?}, variable {var:?}"
    );
    // A marker, when set, names the flag's own variable.
    for var in [resolved.dormant_env_var, resolved.invalid_env_var]
        .into_iter()
        .flatten()
    {
        assert_eq!(var.name(), "FLAG_MY_FEATURE");
    }
}

#[test]
#[rustfmt::skip]
fn resolution_table() {
    use Source::{Db, Env, Yaml};
    //    master        row      variable      (value, source, dormant, invalid)
    // Master switch on.
    check(MASTER_ON,      ROW_ON,  VAR_ON,       (true, Db, true, false));
    check(MASTER_ON,      ROW_ON,  VAR_OFF,      (true, Db, true, false));
    check(MASTER_ON,      ROW_ON,  VAR_INVALID,  (true, Db, true, true));
    check(MASTER_ON,      ROW_ON,  VAR_UNSET,    (true, Db, false, false));
    check(MASTER_ON,      ROW_OFF, VAR_ON,       (false, Db, true, false));
    check(MASTER_ON,      ROW_OFF, VAR_OFF,      (false, Db, true, false));
    check(MASTER_ON,      ROW_OFF, VAR_INVALID,  (false, Db, true, true));
    check(MASTER_ON,      ROW_OFF, VAR_UNSET,    (false, Db, false, false));
    check(MASTER_ON,      NO_ROW,  VAR_ON,       (true, Env, false, false));
    check(MASTER_ON,      NO_ROW,  VAR_OFF,      (false, Env, false, false));
    check(MASTER_ON,      NO_ROW,  VAR_INVALID,  (true, Yaml, false, true));
    check(MASTER_ON,      NO_ROW,  VAR_UNSET,    (true, Yaml, false, false));
    // Master switch off.
    check(MASTER_OFF,     ROW_ON,  VAR_ON,       (true, Env, false, false));
    check(MASTER_OFF,     ROW_ON,  VAR_OFF,      (false, Env, false, false));
    check(MASTER_OFF,     ROW_ON,  VAR_INVALID,  (true, Yaml, false, true));
    check(MASTER_OFF,     ROW_ON,  VAR_UNSET,    (true, Yaml, false, false));
    check(MASTER_OFF,     ROW_OFF, VAR_ON,       (true, Env, false, false));
    check(MASTER_OFF,     ROW_OFF, VAR_OFF,      (false, Env, false, false));
    check(MASTER_OFF,     ROW_OFF, VAR_INVALID,  (true, Yaml, false, true));
    check(MASTER_OFF,     ROW_OFF, VAR_UNSET,    (true, Yaml, false, false));
    check(MASTER_OFF,     NO_ROW,  VAR_ON,       (true, Env, false, false));
    check(MASTER_OFF,     NO_ROW,  VAR_OFF,      (false, Env, false, false));
    check(MASTER_OFF,     NO_ROW,  VAR_INVALID,  (true, Yaml, false, true));
    check(MASTER_OFF,     NO_ROW,  VAR_UNSET,    (true, Yaml, false, false));
    // Master switch unset.
    check(MASTER_UNSET,   ROW_ON,  VAR_ON,       (true, Env, false, false));
    check(MASTER_UNSET,   ROW_ON,  VAR_OFF,      (false, Env, false, false));
    check(MASTER_UNSET,   ROW_ON,  VAR_INVALID,  (true, Yaml, false, true));
    check(MASTER_UNSET,   ROW_ON,  VAR_UNSET,    (true, Yaml, false, false));
    check(MASTER_UNSET,   ROW_OFF, VAR_ON,       (true, Env, false, false));
    check(MASTER_UNSET,   ROW_OFF, VAR_OFF,      (false, Env, false, false));
    check(
        MASTER_UNSET,
        ROW_OFF,
        VAR_INVALID,
        (true, Yaml, false, true),
    );
    check(MASTER_UNSET,   ROW_OFF, VAR_UNSET,    (true, Yaml, false, false));
    check(MASTER_UNSET,   NO_ROW,  VAR_ON,       (true, Env, false, false));
    check(MASTER_UNSET,   NO_ROW,  VAR_OFF,      (false, Env, false, false));
    check(MASTER_UNSET,   NO_ROW,  VAR_INVALID,  (true, Yaml, false, true));
    check(MASTER_UNSET,   NO_ROW,  VAR_UNSET,    (true, Yaml, false, false));
    // Master switch invalid.
    check(MASTER_INVALID, ROW_ON,  VAR_ON,       (true, Env, false, false));
    check(MASTER_INVALID, ROW_ON,  VAR_OFF,      (false, Env, false, false));
    check(
        MASTER_INVALID,
        ROW_ON,
        VAR_INVALID,
        (true, Yaml, false, true),
    );
    check(
        MASTER_INVALID,
        ROW_ON,
        VAR_UNSET,
        (true, Yaml, false, false),
    );
    check(MASTER_INVALID, ROW_OFF, VAR_ON,       (true, Env, false, false));
    check(MASTER_INVALID, ROW_OFF, VAR_OFF,      (false, Env, false, false));
    check(
        MASTER_INVALID,
        ROW_OFF,
        VAR_INVALID,
        (true, Yaml, false, true),
    );
    check(
        MASTER_INVALID,
        ROW_OFF,
        VAR_UNSET,
        (true, Yaml, false, false),
    );
    check(MASTER_INVALID, NO_ROW,  VAR_ON,       (true, Env, false, false));
    check(MASTER_INVALID, NO_ROW,  VAR_OFF,      (false, Env, false, false));
    check(
        MASTER_INVALID,
        NO_ROW,
        VAR_INVALID,
        (true, Yaml, false, true),
    );
    check(
        MASTER_INVALID,
        NO_ROW,
        VAR_UNSET,
        (true, Yaml, false, false),
    );
}

#[test]
fn the_yaml_default_decides_when_nothing_else_does() {
    let flags = FlagSet::parse(
        "f.yaml",
        b"off_by_default: {default: false, description: x, risk: low}",
    )
    .unwrap();
    let env = EnvSnapshot::capture([(MASTER, "1"), ("FLAG_OFF_BY_DEFAULT", "nonsense")]);
    let resolved = resolve(
        flags.get("off_by_default").unwrap(),
        None,
        &env,
        MasterSwitch::On,
    );
    assert_eq!((resolved.value, resolved.source), (false, Source::Yaml));
    assert_eq!(
        resolved.invalid_env_var.map(vexil_core::EnvVar::raw),
        Some("nonsense")
    );
}

#[test]
fn an_undeclared_key_resolves_to_off_with_a_reason() {
    let flags = flags();
    let env = EnvSnapshot::capture([(MASTER, "1"), ("FLAG_GHOST", "1")]);
    let resolution = resolve_key(&flags, "ghost", Some(true), &env, MasterSwitch::On);
    assert!(!resolution.is_on());
    let Resolution::Undeclared(undeclared) = resolution else {
        panic!("expected undeclared, got {resolution:?}");
    };
    assert_eq!(undeclared.key(), "ghost");
    assert_eq!(
        undeclared.to_string(),
        "flag 'ghost' is not declared in the flags file; it resolves to off"
    );
    // Any text at all is answered, never a panic.
    for key in ["", "Ghost", "a\nb", &"x".repeat(10_000)] {
        assert!(!resolve_key(&flags, key, Some(true), &env, MasterSwitch::On).is_on());
    }
    let declared = resolve_key(&flags, "my_feature", Some(false), &env, MasterSwitch::On);
    assert!(matches!(declared, Resolution::Declared(r) if !r.value && r.source == Source::Db));
}

#[test]
fn source_names_are_the_spec_s() {
    let names: Vec<&str> = [Source::Db, Source::Env, Source::Yaml]
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(names, ["db", "env", "yaml"]);
    assert_eq!(serde_json::to_string(&Source::Db).unwrap(), "\"db\"");
}
