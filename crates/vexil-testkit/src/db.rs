//! `TestDb`: a fresh database for one test, so tests run in parallel and never see
//! each other's rows.
//!
//! PostgreSQL is the real server this machine (and CI) runs at 127.0.0.1:5432 with
//! trust auth. When it is not there, a test fails with a message saying so: it is
//! never skipped.
//!
//! Also what tests read of a database from outside vexil: SQL through the database's
//! own command-line client (`TestDb::client`) and the whole audit log (`audit_log`).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use tempfile::TempDir;
use vexil_store::{AuditFilter, AuditRow, Backend, DatabaseUrl, Db};

/// Where the tests' PostgreSQL server is, as its superuser; each test creates its own
/// database there.
pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that lives as long as this value.
pub struct TestDb {
    pub db: Db,
    url: DatabaseUrl,
    /// Keeps the SQLite file's directory until the test ends.
    _dir: Option<TempDir>,
    /// The PostgreSQL database to drop when the test ends.
    pg_name: Option<String>,
    /// Login roles made for this test (`TestDb::role`), dropped after the database.
    roles: std::sync::Mutex<Vec<String>>,
}

impl TestDb {
    /// A fresh, migrated database of `backend`.
    pub async fn new(backend: Backend) -> TestDb {
        let test_db = TestDb::unmigrated(backend).await;
        test_db
            .db
            .migrate()
            .await
            .expect("migrating a fresh test database");
        test_db
    }

    /// A fresh database with no tables at all.
    pub async fn unmigrated(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("vexil-db-")
                    .tempdir()
                    .expect("a temporary directory");
                let url = DatabaseUrl::parse(&format!(
                    "sqlite://{}",
                    dir.path().join("vexil.db").display()
                ))
                .expect("a valid SQLite URL");
                let db = Db::connect(&url)
                    .await
                    .expect("opening a SQLite file in a temporary directory");
                TestDb {
                    db,
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                    roles: std::sync::Mutex::default(),
                }
            }
            Backend::Postgres => {
                let name = unique_name();
                let mut admin = admin_connection().await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
                let _ = admin.close().await;
                let url = DatabaseUrl::parse(&format!("postgres://postgres@127.0.0.1:5432/{name}"))
                    .expect("a valid PostgreSQL URL");
                let db = Db::connect(&url)
                    .await
                    .expect("connecting to the new test database");
                TestDb {
                    db,
                    url,
                    _dir: None,
                    pg_name: Some(name),
                    roles: std::sync::Mutex::default(),
                }
            }
        }
    }

    /// The URL, to give to a `vexil` process under test.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The URL with its password (the tests' databases have none), for `DATABASE_URL`.
    pub fn url_string(&self) -> String {
        self.url.to_string()
    }

    /// Runs `sql` on a connection of its own, outside vexil, as an operator with
    /// database access would; `Err` carries the database's message.
    pub async fn execute(&self, sql: &str) -> Result<u64, String> {
        let url = self.url_string();
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let result = match self.url.backend() {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(sql)
                    .execute(&mut conn)
                    .await
                    .map(|r| r.rows_affected())
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(sql)
                    .execute(&mut conn)
                    .await
                    .map(|r| r.rows_affected())
            }
        };
        result.map_err(|e| e.to_string())
    }

    /// Runs `sql` with the database's own command-line client (`sqlite3` or `psql`,
    /// unaligned, tuples only), as the runbook's operator types it, and returns its
    /// stdout; panics with its stderr if the client fails or cannot run.
    pub fn client(&self, sql: &str) -> String {
        let output = match self.url.backend() {
            Backend::Sqlite => {
                let file = self.url.sqlite_file().expect("a SQLite URL names a file");
                // The client waits for a lock as vexil does (`busy_timeout`), rather
                // than failing at once while a connection of the test's own `Db`
                // holds it for a moment.
                std::process::Command::new("sqlite3")
                    .args(["-cmd", ".timeout 5000"])
                    .arg(file)
                    .arg(sql)
                    .output()
            }
            Backend::Postgres => std::process::Command::new("psql")
                .args([
                    &self.url_string(),
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-A",
                    "-t",
                    "-c",
                    sql,
                ])
                .output(),
        }
        .unwrap_or_else(|e| {
            panic!("the database client is required by this test and could not run: {e}")
        });
        assert!(
            output.status.success(),
            "client failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// The PostgreSQL database's name.
    pub fn postgres_name(&self) -> &str {
        self.pg_name.as_deref().expect("a PostgreSQL test database")
    }

    /// A PostgreSQL login role of this test's own, with no rights at all: the test
    /// grants what it needs, in the SQL an operator would type. Roles belong to the
    /// whole server, so each is named after the test's database and dropped after it.
    pub async fn role(&self, suffix: &str) -> String {
        let role = format!("{}_{suffix}", self.postgres_name());
        let mut admin = admin_connection().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} LOGIN")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create role {role}: {e}"));
        let _ = admin.close().await;
        self.roles
            .lock()
            .expect("the role list is never poisoned")
            .push(role.clone());
        role
    }

    /// This PostgreSQL database as `role` (trust auth: no password).
    pub fn postgres_url_as(&self, role: &str) -> String {
        format!("postgres://{role}@127.0.0.1:5432/{}", self.postgres_name())
    }

    /// Runs `sql` on a connection of its own as `role`; `Err` carries the database's
    /// message.
    pub async fn execute_as(&self, role: &str, sql: &str) -> Result<u64, String> {
        let mut conn = sqlx::PgConnection::connect(&self.postgres_url_as(role))
            .await
            .map_err(|e| e.to_string())?;
        let result = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| e.to_string());
        let _ = conn.close().await;
        result
    }

    /// This PostgreSQL database reached through `addr` (a `Proxy`) instead of the
    /// server's own port.
    pub fn postgres_url_via(&self, addr: std::net::SocketAddr) -> String {
        format!("postgres://postgres@{addr}/{}", self.postgres_name())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async code (or inside a runtime that cannot block), so the
        // database is dropped from a thread of its own with a runtime of its own.
        let db = self.db.clone();
        let roles = std::mem::take(
            &mut *self
                .roles
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                db.close().await;
                let mut admin = admin_connection().await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
                for role in roles {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
                        .execute(&mut admin)
                        .await?;
                }
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("warning: could not drop a test database: {e}");
        }
    }
}

/// Every audit row of `db`, newest first, as the database holds them.
pub async fn audit_log(db: &Db) -> Vec<AuditRow> {
    let filter = AuditFilter {
        limit: 100_000,
        ..AuditFilter::default()
    };
    db.audit_page(&filter).await.expect("reading the audit log")
}

async fn admin_connection() -> sqlx::PgConnection {
    sqlx::PgConnection::connect(POSTGRES_ADMIN_URL).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required by this test and is not reachable at {POSTGRES_ADMIN_URL}: {e}\n\
             start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    })
}

/// `vexil_test_<pid>_<n>_<nanos>`: unique across the tests of one run and across runs.
fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("vexil_test_{}_{n}_{nanos}", std::process::id())
}

/// `both!(name)` turns `async fn name(backend: Backend)` into two tests, `name::sqlite`
/// and `name::postgres`, each on a multi-threaded runtime: the contract suites run
/// every test on both databases this way.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(vexil_store::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(vexil_store::Backend::Postgres).await;
            }
        }
    };
}
