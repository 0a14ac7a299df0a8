//! A filtered page of the audit log at 1 and 10 million rows (target, as in BENCHMARKS.md: ≤ 20 ms),
//! on SQLite and PostgreSQL: `vexil audit --flag X --limit 50` (`Db::audit_page`) and
//! the runbook's SELECT, verbatim. Baseline in the same run: the newest 50 rows with
//! no filter, the cheapest page there is.
//!
//! `cargo bench -p vexil-store --bench audit_page` (needs the local PostgreSQL; the
//! rows come from `vexil_testkit::seed`, as `cargo xtask audit-rows` makes them).

use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sqlx::Connection;
use vexil_store::{AuditFilter, Backend, NewAudit};
use vexil_testkit::{TestDb, seed};

/// The log sizes measured: seeded up to the first, then on to the second.
const SIZES: [u64; 2] = [1_000_000, 10_000_000];

const RUNBOOK_SELECT: &str = "SELECT created_at, admin_id, payload
FROM console_audit_log
WHERE action = 'console.flag.flip'
ORDER BY created_at DESC
LIMIT 50;";

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("audit_page");
    group.sample_size(30);
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let test_db = runtime.block_on(TestDb::new(backend));
        // A flag with only three rows, written before all the others: finding its page
        // must not mean reading the log from the newest end.
        runtime.block_on(async {
            let mut tx = test_db.db.begin_write().await.unwrap();
            for _ in 0..3 {
                let audit = NewAudit {
                    created_at: chrono::DateTime::UNIX_EPOCH,
                    admin_id: None,
                    action: "console.flag.flip",
                    target_type: "feature_flag",
                    target_id: "rare_flag".to_owned(),
                    payload: serde_json::json!({"flag": "rare_flag"}),
                };
                tx.append_audit(&audit).await.unwrap();
            }
            tx.commit().await.unwrap();
        });
        let mut seeded_rows = 0;
        for rows in SIZES {
            let name = format!(
                "{}/{}M",
                format!("{backend:?}").to_lowercase(),
                rows / 1_000_000
            );
            let seeded = Instant::now();
            let count = runtime
                .block_on(seed::audit_rows(test_db.url(), rows - seeded_rows))
                .unwrap();
            seeded_rows = rows;
            eprintln!(
                "{name}: {count} audit rows after {:.1?} of seeding",
                seeded.elapsed()
            );
            measure(&mut group, &runtime, &test_db, backend, &name);
        }
    }
    group.finish();
}

fn measure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &tokio::runtime::Runtime,
    test_db: &TestDb,
    backend: Backend,
    name: &str,
) {
    group.bench_function(BenchmarkId::new("baseline_newest_50", name), |b| {
        let filter = AuditFilter {
            limit: 50,
            ..AuditFilter::default()
        };
        b.iter(|| runtime.block_on(test_db.db.audit_page(&filter)).unwrap());
    });
    group.bench_function(BenchmarkId::new("flag_filter_50", name), |b| {
        let filter = AuditFilter {
            flag: Some("seed_flag_42".to_owned()),
            limit: 50,
            ..AuditFilter::default()
        };
        b.iter(|| {
            let rows = runtime.block_on(test_db.db.audit_page(&filter)).unwrap();
            assert_eq!(rows.len(), 50);
        });
    });
    group.bench_function(BenchmarkId::new("rare_flag_filter", name), |b| {
        let filter = AuditFilter {
            flag: Some("rare_flag".to_owned()),
            limit: 50,
            ..AuditFilter::default()
        };
        b.iter(|| {
            let rows = runtime.block_on(test_db.db.audit_page(&filter)).unwrap();
            assert_eq!(rows.len(), 3);
        });
    });
    let url = test_db.url_string();
    match backend {
        Backend::Sqlite => {
            let mut conn = runtime
                .block_on(sqlx::SqliteConnection::connect(&url))
                .unwrap();
            group.bench_function(BenchmarkId::new("runbook_select", name), |b| {
                b.iter(|| {
                    runtime
                        .block_on(sqlx::raw_sql(RUNBOOK_SELECT).fetch_all(&mut conn))
                        .unwrap()
                });
            });
        }
        Backend::Postgres => {
            let mut conn = runtime.block_on(sqlx::PgConnection::connect(&url)).unwrap();
            group.bench_function(BenchmarkId::new("runbook_select", name), |b| {
                b.iter(|| {
                    runtime
                        .block_on(sqlx::raw_sql(RUNBOOK_SELECT).fetch_all(&mut conn))
                        .unwrap()
                });
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
