//! `vexil_core::import` cell by cell: how a config file is read (dotenv and
//! `heroku config --json`, each variable with its line, every other value skipped,
//! every error located and never quoting the text), and how the plan judges each
//! variable against the flags file, the env's rows and its live processes.

use std::collections::BTreeMap;

use vexil_core::import::{Config, ConfigError, Evidence, Format, Plan, Step, Variable, plan, read};
use vexil_core::{Envs, FlagSet, VarState};

/// Each `FLAG_*` variable of `text` as (name, value, line), and the count ignored.
#[track_caller]
fn check(text: &str, format: Format, expected: &[(&str, Option<&str>, u64)], ignored: usize) {
    let config = read(text, format).unwrap_or_else(|e| panic!("{e} in {text:?}"));
    let found: Vec<(&str, Option<&str>, u64)> = config
        .variables
        .iter()
        .map(|v| (v.name.as_str(), v.raw.as_deref(), v.line))
        .collect();
    assert_eq!(
        (found.as_slice(), config.ignored),
        (expected, ignored),
        "in {text:?}"
    );
}

#[track_caller]
fn error(text: &str, format: Format) -> String {
    read(text, format).unwrap_err().to_string()
}

#[test]
fn the_format_is_json_when_it_starts_with_a_brace() {
    assert_eq!(Format::detect("\u{feff}\n  {\"A\": \"1\"}"), Format::Json);
    assert_eq!(Format::detect("# {\nA=1\n"), Format::Dotenv);
    assert_eq!(Format::detect(""), Format::Dotenv);
}

#[test]
fn dotenv_lines() {
    use Format::Dotenv;
    let text = "\
# a comment
export FLAG_A=1

FLAG_B = on   # a comment after the value
FLAG_C=\"off\" # quoted
FLAG_D='yes'
FLAG_E=with spaces inside
SECRET=x#not-a-comment
\texport\tFLAG_F=0\r
FLAG_G=
";
    check(
        text,
        Dotenv,
        &[
            ("FLAG_A", Some("1"), 2),
            ("FLAG_B", Some("on"), 4),
            ("FLAG_C", Some("off"), 5),
            ("FLAG_D", Some("yes"), 6),
            ("FLAG_E", Some("with spaces inside"), 7),
            ("FLAG_F", Some("0"), 9),
            ("FLAG_G", Some(""), 10),
        ],
        1,
    );
    // Quoted values over several lines keep the line count, and what is inside them
    // is value, not variables; shell-style segments join.
    let text = "KEY=\"-----BEGIN-----\nFLAG_INSIDE=1\n-----END-----\"\nQ='it'\\''s'\nR=\"a \\\"b\\\" c\"\nFLAG_AFTER=on\n";
    check(text, Dotenv, &[("FLAG_AFTER", Some("on"), 6)], 3);
    check("\u{feff}FLAG_A=1\n", Dotenv, &[("FLAG_A", Some("1"), 1)], 0);
    check("flag_a=1\nFLAG_A=1", Dotenv, &[("FLAG_A", Some("1"), 2)], 1);
}

#[test]
fn dotenv_errors_name_the_line_and_never_its_text() {
    use Format::Dotenv;
    assert_eq!(
        error("FLAG_A=1\nsecret-value\n", Dotenv),
        "line 2: not NAME=VALUE (the line is not shown: it may hold a secret)"
    );
    assert_eq!(
        error("1ABC=secret\n", Dotenv),
        "line 1: not NAME=VALUE (the line is not shown: it may hold a secret)"
    );
    assert_eq!(
        error("A=1\nKEY='secret\nmore\n", Dotenv),
        "line 2: a quoted value is never closed"
    );
    assert_eq!(
        error("KEY=\"a\nb\" secret\n", Dotenv),
        "line 2: text after a quoted value (the line is not shown: it may hold a secret)"
    );
    assert_eq!(
        error("=== raxx-console-prod Config Vars\nKEY: secret\n", Dotenv),
        "line 1: this is `heroku config`'s table; give its --json (or --shell) output"
    );
}

#[test]
fn heroku_json() {
    use Format::Json;
    let text = r#"{
  "DATABASE_URL": "postgres://u:secret@db/x",
  "FLAG_A": "1",
  "NESTED": {"FLAG_NOT": "1", "x": [1, {"y": "}"}]},
  "FLAG_B": true, "FLAG_C": 0,
  "\u0046LAG_D": "on\n",
  "FLAG_E": null,
  "FLAG_F": {"on": 1}
}"#;
    check(
        text,
        Json,
        &[
            ("FLAG_A", Some("1"), 3),
            ("FLAG_B", Some("true"), 5),
            ("FLAG_C", Some("0"), 5),
            ("FLAG_D", Some("on\n"), 6),
            ("FLAG_E", None, 7),
            ("FLAG_F", None, 8),
        ],
        2,
    );
    check("{}", Json, &[], 0);
}

#[test]
fn json_errors_say_where_and_never_what() {
    use Format::Json;
    assert_eq!(
        error("{\n  \"A\": \"secret\"\n  \"B\": \"1\"\n}", Json),
        "line 3, column 3: not valid JSON: expected `,` or `}`"
    );
    assert_eq!(
        error("[\"FLAG_A=1\"]", Json),
        "line 1: the JSON is not an object of names to values (heroku config --json prints one)"
    );
    let e = read("{\"A\": \"secret", Json).unwrap_err();
    assert!(matches!(e, ConfigError::Json { line: 1, .. }), "{e:?}");
    assert!(!e.to_string().contains("secret"), "{e}");
}

const FLAGS: &str = "\
dark_mode:
  default: false
  description: the new look
  risk: low
search_v3:
  default: true
  description: the new index
  risk: high
";

fn config(vars: &[(&str, &str, u64)]) -> Config {
    Config {
        variables: vars
            .iter()
            .map(|&(name, raw, line)| Variable {
                name: name.to_owned(),
                raw: Some(raw.to_owned()),
                line,
            })
            .collect(),
        ignored: 0,
    }
}

/// The plan for `vars` in prod, with these rows and live processes.
fn judge(
    vars: &[(&str, &str, u64)],
    rows: &[(&str, bool)],
    processes: &[&[(&str, VarState)]],
    overwrite: bool,
) -> Plan {
    let flags = FlagSet::parse("feature_flags.yaml", FLAGS.as_bytes()).unwrap();
    let env = Envs::runbook().parse("prod").unwrap();
    let rows: BTreeMap<String, bool> = rows.iter().map(|&(k, v)| (k.to_owned(), v)).collect();
    let processes: Vec<(String, BTreeMap<String, VarState>)> = processes
        .iter()
        .enumerate()
        .map(|(i, vars)| {
            let vars = vars.iter().map(|&(k, s)| (k.to_owned(), s)).collect();
            (format!("web pid {}", i + 1), vars)
        })
        .collect();
    plan(
        &config(vars),
        &Evidence {
            flags: &flags,
            env: &env,
            rows: &rows,
            processes: &processes,
            overwrite,
        },
    )
}

/// Each item as (variable, step, from for a write).
fn steps(plan: &Plan) -> Vec<(&str, &str, Option<bool>)> {
    plan.items
        .iter()
        .map(|item| match &item.step {
            Step::Write { from, .. } => (item.variable.as_str(), "write", Some(*from)),
            Step::Keep => (item.variable.as_str(), "keep", None),
        })
        .collect()
}

fn refused(plan: &Plan) -> Vec<(u64, &str)> {
    plan.refused
        .iter()
        .map(|r| (r.line, r.why.as_str()))
        .collect()
}

#[test]
fn lines_that_cannot_be_imported_are_refused() {
    let plan = judge(
        &[
            ("FLAG_DARK_MODE", "maybe", 1),
            ("FLAG_NOT_DECLARED", "1", 2),
            ("FLAG_dark_mode", "1", 3),
            ("FLAG_SEARCH_V3", "1", 4),
            ("FLAG_SEARCH_V3", "1", 5),
            ("FLAG_SEARCH_V3", "0", 6),
        ],
        &[],
        &[],
        false,
    );
    let undeclared = "no flag in the flags file has this variable (a flag's is FLAG_ and its key \
                      upper-cased): declare the flag first, or leave the line out";
    assert_eq!(
        refused(&plan),
        [
            (
                1,
                "its value is none of 1, true, on, yes, 0, false, off, no (not shown)"
            ),
            (2, undeclared),
            (3, undeclared),
            (6, "set again, to another value than on line 4"),
        ]
    );
    // The repeat with the same value is one variable.
    assert_eq!(steps(&plan), [("FLAG_SEARCH_V3", "write", Some(true))]);
    assert!(!plan.refused.is_empty());
}

#[test]
fn the_master_switch_is_noted_not_imported() {
    for (raw, state) in [
        ("1", VarState::On),
        ("off", VarState::Off),
        ("maybe", VarState::Invalid),
    ] {
        let plan = judge(
            &[("FLAG_CONSOLE_FEATURE_FLAGS_DB", raw, 7)],
            &[],
            &[],
            false,
        );
        let master = plan.master.as_ref().unwrap();
        assert_eq!((master.line, master.state), (7, state));
        assert!(
            master.says.ends_with("not a flag, not imported"),
            "{}",
            master.says
        );
        assert!(plan.items.is_empty() && plan.refused.is_empty());
    }
}

#[test]
fn rows_stay_unless_overwritten() {
    let vars = [("FLAG_DARK_MODE", "on", 1), ("FLAG_SEARCH_V3", "on", 2)];
    let rows = [("dark_mode", true), ("search_v3", false)];
    let plan = judge(&vars, &rows, &[], false);
    assert_eq!(
        steps(&plan),
        [
            ("FLAG_DARK_MODE", "keep", None),
            ("FLAG_SEARCH_V3", "keep", None)
        ]
    );
    assert!(
        plan.items[1].why.contains("differs"),
        "{}",
        plan.items[1].why
    );
    assert_eq!(plan.max_risk(), None);
    let plan = judge(&vars, &rows, &[], true);
    assert_eq!(
        steps(&plan),
        [
            ("FLAG_DARK_MODE", "keep", None),
            ("FLAG_SEARCH_V3", "write", Some(false))
        ]
    );
    assert_eq!(plan.max_risk(), Some(vexil_core::Risk::High));
}

#[test]
fn without_a_row_the_value_in_force_is_what_live_processes_run() {
    let vars = [("FLAG_DARK_MODE", "on", 1), ("FLAG_SEARCH_V3", "on", 2)];
    // Nobody reports: the file is what runs.
    let plan = judge(&vars, &[], &[], false);
    assert_eq!(
        steps(&plan),
        [
            ("FLAG_DARK_MODE", "write", Some(true)),
            ("FLAG_SEARCH_V3", "write", Some(true))
        ]
    );
    // search_v3's default is on: a process without its variable runs on too.
    let agree: &[(&str, VarState)] = &[("dark_mode", VarState::On)];
    let plan = judge(&vars, &[], &[agree, agree], false);
    assert_eq!(
        steps(&plan),
        [
            ("FLAG_DARK_MODE", "write", Some(true)),
            ("FLAG_SEARCH_V3", "write", Some(true))
        ]
    );
    // One process runs dark_mode off: refused, unless --overwrite, then the states
    // are counted and `from` is the default, as a flip judges it.
    let off: &[(&str, VarState)] = &[("dark_mode", VarState::Off)];
    let plan = judge(&vars, &[], &[agree, off], false);
    assert_eq!(
        refused(&plan),
        [(
            1,
            "a row saying on would change what they run: 1 of 2 live process(es) of prod run off \
             (web pid 2); --overwrite writes it anyway, audited as the change it is"
        )]
    );
    let plan = judge(&vars, &[], &[agree, off], true);
    assert_eq!(
        plan.items[0].step,
        Step::Write {
            from: false,
            drift: Some(BTreeMap::from([(VarState::On, 1), (VarState::Off, 1)])),
        }
    );
    // Every process off: `from` is off, no drift.
    let plan = judge(&vars, &[], &[off, off], true);
    assert_eq!(
        plan.items[0].step,
        Step::Write {
            from: false,
            drift: None
        }
    );
}
