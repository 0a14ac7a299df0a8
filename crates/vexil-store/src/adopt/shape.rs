//! The shape check of an adoption: what vexil needs of the runbook's two tables,
//! column by column, and the words of every refusal. Each backend says which
//! declared types it accepts for a kind of column and which rows break a rule
//! (`adopt/sqlite.rs`, `adopt/postgres.rs`); this file holds what is common.
//!
//! The columns are exactly the contract's (docs/schema.md): a missing one is refused,
//! and so is an extra one, even nullable: vexil's tables are rebuilt to a fresh
//! database's shape, so an extra column's data would be lost without a word.

/// The two tables an adoption keeps.
pub(crate) const FLAGS: &str = "console_feature_flags";
pub(crate) const AUDIT_LOG: &str = "console_audit_log";
pub(crate) const RUNBOOK_TABLES: [&str; 2] = [FLAGS, AUDIT_LOG];

/// The envs a flag row may name: vexil's, the runbook's two. A row of another env
/// is refused rather than kept: vexil could neither show it in an env's page nor
/// flip or promote it, and an env spelled otherwise (`production`) is a mistake to
/// mend before the cut-over.
pub(crate) fn env_names() -> Vec<String> {
    vexil_core::Envs::runbook()
        .iter()
        .map(|env| env.as_str().to_owned())
        .collect()
}

/// What a column must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    /// An integer id.
    Integer,
    /// `value`: an integer, 0 or 1, so that the runbook's `SET value=1` works.
    Value,
    Timestamp,
    Json,
    /// `updated_by`: an account's name, or the old console's admin number.
    TextOrInteger,
}

/// The contract's columns of `table`, in order.
pub(crate) fn expected_columns(table: &str) -> &'static [(&'static str, Kind)] {
    const FLAG_COLUMNS: [(&str, Kind); 5] = [
        ("flag_key", Kind::Text),
        ("env", Kind::Text),
        ("value", Kind::Value),
        ("updated_at", Kind::Timestamp),
        ("updated_by", Kind::TextOrInteger),
    ];
    const AUDIT_COLUMNS: [(&str, Kind); 7] = [
        ("id", Kind::Integer),
        ("created_at", Kind::Timestamp),
        ("admin_id", Kind::Integer),
        ("action", Kind::Text),
        ("target_type", Kind::Text),
        ("target_id", Kind::Text),
        ("payload", Kind::Json),
    ];
    if table == FLAGS {
        &FLAG_COLUMNS
    } else {
        &AUDIT_COLUMNS
    }
}

/// The columns that name a row of `table` in a refusal: a row whose naming columns
/// are not there cannot be named, so its table's values are checked once they are.
pub(crate) fn naming_columns(table: &str) -> &'static [&'static str] {
    if table == FLAGS {
        &["flag_key", "env"]
    } else {
        &["id"]
    }
}

/// A column as the database declares it.
#[derive(Debug, Clone)]
pub(crate) struct FoundColumn {
    pub(crate) name: String,
    /// The declared type as the catalog spells it (empty on SQLite when none).
    pub(crate) declared: String,
}

/// One of the runbook's tables as found, and its columns once read.
#[derive(Debug, Clone)]
pub(crate) struct FoundTable {
    pub(crate) name: &'static str,
    pub(crate) columns: Vec<FoundColumn>,
}

impl FoundTable {
    /// The declared type of `column`.
    pub(crate) fn declared(&self, column: &str) -> &str {
        self.columns
            .iter()
            .find(|c| c.name == column)
            .map_or("", |c| c.declared.as_str())
    }
}

/// How a backend judges declared types.
pub(crate) trait Types {
    /// Whether a column declared `declared` can hold `kind`.
    fn accepts(kind: Kind, declared: &str) -> bool;
    /// What vexil needs for `kind`, in the backend's words.
    fn expected(kind: Kind) -> &'static str;
}

/// The refusals about `table`'s columns, and the names of the columns whose values
/// may be checked (present, with a type that fits).
pub(crate) fn judge_columns<T: Types>(table: &FoundTable) -> (Vec<String>, Vec<&'static str>) {
    let mut problems = Vec::new();
    let mut passed = Vec::new();
    let name = table.name;
    for &(column, kind) in expected_columns(name) {
        match table
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(column))
        {
            None => problems.push(format!(
                "{name}.{column} is missing: vexil needs it ({})",
                T::expected(kind)
            )),
            Some(found) if !T::accepts(kind, &found.declared) => problems.push(format!(
                "{name}.{column} is {}, vexil needs {}",
                shown_type(&found.declared),
                T::expected(kind)
            )),
            Some(_) => passed.push(column),
        }
    }
    for found in &table.columns {
        if !expected_columns(name)
            .iter()
            .any(|(column, _)| found.name.eq_ignore_ascii_case(column))
        {
            problems.push(format!(
                "{name}.{0} is not one of vexil's columns: adopting would drop it; keep what it holds elsewhere and drop it first (ALTER TABLE {name} DROP COLUMN {0})",
                found.name
            ));
        }
    }
    (problems, passed)
}

fn shown_type(declared: &str) -> String {
    if declared.is_empty() {
        "declared without a type".to_owned()
    } else {
        declared.to_owned()
    }
}

/// A rule over a table's values: the rows where `condition` holds break it.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// The column it judges, checked only once the column passed; `None` for a rule
    /// over the row's key (the key's columns pass before any rule runs).
    pub(crate) column: Option<&'static str>,
    /// What the refusal names: `console_feature_flags.value`.
    pub(crate) label: String,
    /// SQL over the table's row, true for a row that breaks the rule.
    pub(crate) condition: String,
    /// The refusal, after the label: `is not 0 or 1`.
    pub(crate) problem: String,
    /// A column whose value is shown beside each row named.
    pub(crate) show: Option<&'static str>,
}

impl Rule {
    pub(crate) fn on(
        table: &str,
        column: &'static str,
        condition: impl Into<String>,
        problem: impl Into<String>,
    ) -> Rule {
        Rule {
            column: Some(column),
            label: format!("{table}.{column}"),
            condition: condition.into(),
            problem: problem.into(),
            show: None,
        }
    }

    /// A rule over the row's key: two rows holding one.
    pub(crate) fn on_key(table: &str, condition: String) -> Rule {
        let key = naming_columns(table).join(", ");
        Rule {
            column: None,
            label: format!("{table} ({key})"),
            condition,
            problem: "is held by more than one row".to_owned(),
            show: None,
        }
    }

    /// Whether the rule can run: its column passed.
    pub(crate) fn applies(&self, passed: &[&str]) -> bool {
        self.column.is_none_or(|column| passed.contains(&column))
    }

    /// Shows `column`'s value beside each row named.
    pub(crate) fn showing(mut self, column: &'static str) -> Rule {
        self.show = Some(column);
        self
    }
}

/// How many rows the refusal names at most.
pub(crate) const EXAMPLES: i64 = 3;

/// The refusal for `count` rows breaking `rule`, naming the first ones.
pub(crate) fn offending(rule: &Rule, count: i64, examples: &[String]) -> String {
    let rows = if count == 1 { "row" } else { "rows" };
    let more = if count > examples.len() as i64 {
        ", …"
    } else {
        ""
    };
    format!(
        "{} {} in {count} {rows}: {}{more}",
        rule.label,
        rule.problem,
        examples.join("; ")
    )
}

/// The refusal for a relation of vexil's name that is already there.
pub(crate) fn taken(kind: &str, name: &str) -> String {
    format!(
        "{kind} {name} is already there and is not one of the runbook's two tables: vexil creates its own {name}; rename or drop yours first"
    )
}

/// The refusal for an object outside the two tables that depends on one of them.
pub(crate) fn dependent(what: &str, table: &str) -> String {
    format!("{what} uses {table}: drop it before adopting, and create it again after")
}

/// The tables and views vexil's migrations create (`CREATE TABLE name`, `CREATE VIEW
/// name`), read from their SQL, so that a migration added later is covered.
pub(crate) fn created_names(sql: &str) -> Vec<String> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let mut names = Vec::new();
    for (i, pair) in words.windows(2).enumerate() {
        if !(pair[0].eq_ignore_ascii_case("CREATE")
            && (pair[1].eq_ignore_ascii_case("TABLE") || pair[1].eq_ignore_ascii_case("VIEW")))
        {
            continue;
        }
        let mut rest = words[i + 2..].iter();
        let mut name = rest.next();
        if name.is_some_and(|n| n.eq_ignore_ascii_case("IF")) {
            name = rest.nth(2);
        }
        if let Some(name) = name {
            let name = name.split('(').next().unwrap_or_default().trim_matches('"');
            if !name.is_empty() {
                names.push(name.to_ascii_lowercase());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_a_migration_creates_are_read_from_its_sql() {
        let sql = "-- a comment\nCREATE TABLE users (\n id INTEGER);\ncreate table if not exists \"x\"(a);\nCREATE VIEW v AS SELECT 1;\nCREATE INDEX i ON users (id);";
        assert_eq!(created_names(sql), ["users", "x", "v"]);
    }

    #[test]
    fn a_refusal_names_the_first_rows_and_says_there_are_more() {
        let rule = Rule::on(FLAGS, "value", "value NOT IN (0, 1)", "is not 0 or 1");
        assert_eq!(
            offending(&rule, 1, &["flag_key 'a', env 'prod' (value 2)".to_owned()]),
            "console_feature_flags.value is not 0 or 1 in 1 row: flag_key 'a', env 'prod' (value 2)"
        );
        assert_eq!(
            offending(&rule, 5, &["a".to_owned(), "b".to_owned()]),
            "console_feature_flags.value is not 0 or 1 in 5 rows: a; b, …"
        );
    }
}
