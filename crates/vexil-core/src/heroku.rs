//! The runbook's Heroku command lines, exactly as an operator must type them: every
//! `heroku config:set`/`config:unset` silenced with `>/dev/null 2>&1`, since they echo
//! the app's whole config, secrets included. vexil prints them; it never runs them.
//! An application name comes from processes' reports, so it is checked against what
//! Heroku allows before it is put in a shell line.

/// The runbook's silenced command removing `variable` from Heroku app `app`
/// (`config:unset` echoes the app's whole config, secrets included). `None` when the
/// app's name is not one Heroku allows (lower-case letters, digits and dashes, a letter
/// first): a reported name is never put in a shell line unchecked.
pub fn heroku_unset(variable: &str, app: &str) -> Option<String> {
    heroku_app(app).then(|| format!("heroku config:unset {variable} --app {app} >/dev/null 2>&1"))
}

/// The runbook's silenced `config:set` of `variable` to `value` on `app`, with the
/// same check as [`heroku_unset`].
pub fn heroku_set(variable: &str, value: &str, app: &str) -> Option<String> {
    let value_ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric());
    (heroku_app(app) && value_ok)
        .then(|| format!("heroku config:set {variable}={value} --app {app} >/dev/null 2>&1"))
}

fn heroku_app(app: &str) -> bool {
    (3..=30).contains(&app.len())
        && app.starts_with(|c: char| c.is_ascii_lowercase())
        && app
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
