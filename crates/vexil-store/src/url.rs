//! `DatabaseUrl`: which database vexil talks to, parsed once, never printed with its
//! password.

use std::fmt;
use std::path::PathBuf;

/// A parsed `DATABASE_URL`: `sqlite://path` or `postgres://…` (docs/schema.md).
///
/// `Display` and `Debug` show the URL with any password replaced by `***`, so the
/// value can go into an error message or a log line as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

/// The two databases vexil runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a text is not a database URL vexil can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("DATABASE_URL is empty")]
    Empty,
    #[error(
        "DATABASE_URL {url} has an unsupported scheme {scheme:?}: use sqlite://PATH or postgres://USER@HOST/DB"
    )]
    Scheme { url: String, scheme: String },
    #[error("DATABASE_URL {url} names no SQLite file: use sqlite://PATH, e.g. sqlite://vexil.db")]
    NoPath { url: String },
}

impl DatabaseUrl {
    /// The embedded default: a SQLite file in the working directory.
    pub const DEFAULT: &str = "sqlite://vexil.db";

    pub fn parse(text: &str) -> Result<DatabaseUrl, UrlError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(UrlError::Empty);
        }
        let Some((scheme, rest)) = text.split_once("://").or_else(|| text.split_once(':')) else {
            return Err(UrlError::Scheme {
                url: redact(text),
                scheme: String::new(),
            });
        };
        let backend = match scheme {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            other => {
                return Err(UrlError::Scheme {
                    url: redact(text),
                    scheme: other.to_owned(),
                });
            }
        };
        if backend == Backend::Sqlite && sqlite_path(rest).as_os_str().is_empty() {
            return Err(UrlError::NoPath { url: redact(text) });
        }
        Ok(DatabaseUrl {
            raw: text.to_owned(),
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with its password, for the driver only.
    pub(crate) fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL carries a password (between `user:` and `@`, or `password=`).
    pub fn has_password(&self) -> bool {
        redact(&self.raw) != self.raw
    }

    /// The SQLite file this URL names (`None` for PostgreSQL).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        let rest = self
            .raw
            .split_once("://")
            .or_else(|| self.raw.split_once(':'))?
            .1;
        (self.backend == Backend::Sqlite).then(|| sqlite_path(rest))
    }
}

/// `sqlite://vexil.db?mode=rwc` → `vexil.db`; `sqlite:///var/lib/vexil.db` → the
/// absolute path.
fn sqlite_path(rest: &str) -> PathBuf {
    PathBuf::from(rest.split('?').next().unwrap_or_default())
}

/// The URL with its password replaced by `***`: the one between `user:` and the last
/// `@` (a password may itself hold `/` or `?`), and a `password=` query parameter.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.rsplit_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => rest.to_owned(),
    };
    let query = query.map(|query| {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        format!("?{}", params.join("&"))
    });
    format!("{scheme}://{rest}{}", query.unwrap_or_default())
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.raw))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", redact(&self.raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url =
            DatabaseUrl::parse("postgres://vexil:s3cr%40t@db.internal:5432/vexil?sslmode=require")
                .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://vexil:***@db.internal:5432/vexil?sslmode=require"
        );
        assert_eq!(
            format!("{url:?}"),
            "DatabaseUrl(postgres://vexil:***@db.internal:5432/vexil?sslmode=require)"
        );
        assert_eq!(url.backend(), Backend::Postgres);
        let url = DatabaseUrl::parse("postgres://postgres@127.0.0.1/test").unwrap();
        assert_eq!(url.to_string(), "postgres://postgres@127.0.0.1/test");
        let url =
            DatabaseUrl::parse("postgres://u:pa/ss?w@db/vexil?password=again&sslmode=require")
                .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://u:***@db/vexil?password=***&sslmode=require"
        );
    }

    #[test]
    fn sqlite_urls_name_a_file() {
        let url = DatabaseUrl::parse("sqlite://vexil.db").unwrap();
        assert_eq!(url.sqlite_file(), Some(PathBuf::from("vexil.db")));
        let url = DatabaseUrl::parse("sqlite:///var/lib/vexil/vexil.db?mode=rwc").unwrap();
        assert_eq!(
            url.sqlite_file(),
            Some(PathBuf::from("/var/lib/vexil/vexil.db"))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://").unwrap_err().to_string(),
            "DATABASE_URL sqlite:// names no SQLite file: use sqlite://PATH, e.g. sqlite://vexil.db"
        );
    }

    #[test]
    fn other_schemes_are_refused_without_their_password() {
        assert_eq!(
            DatabaseUrl::parse("mysql://root:hunter2@localhost/db")
                .unwrap_err()
                .to_string(),
            "DATABASE_URL mysql://root:***@localhost/db has an unsupported scheme \"mysql\": \
             use sqlite://PATH or postgres://USER@HOST/DB"
        );
        assert_eq!(DatabaseUrl::parse("  ").unwrap_err(), UrlError::Empty);
    }
}
