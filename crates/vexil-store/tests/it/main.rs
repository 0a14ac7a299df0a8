//! vexil-store's contract suite: every test runs against a fresh SQLite file and a
//! fresh PostgreSQL database (`both!`), so the two backends keep one behaviour.

mod audit;
mod flags;
mod migrate;
mod sql;

/// `both!(name)` turns `async fn name(backend: Backend)` into two tests,
/// `name::sqlite` and `name::postgres`.
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
pub(crate) use both;
