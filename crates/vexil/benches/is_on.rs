//! `Flags::is_on` with 1,000 declared flags (target, as in BENCHMARKS.md: ≤ 20 ns median, no
//! allocation) and the typed handle `Flag::is_on` (≤ 5 ns). Baseline in the same run:
//! one lookup in a bare `std` `HashMap<String, bool>`, which has no snapshot to load
//! and could never change.
//!
//! `cargo bench -p vexil --bench is_on`

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vexil::Flags;
use vexil_core::{EnvSnapshot, FlagDecl, FlagKey, FlagSet, Risk};
use vexil_store::Backend;
use vexil_testkit::TestDb;

const FLAGS: usize = 1000;

fn key(i: usize) -> String {
    format!("feature_number_{i:04}")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let decls = (0..FLAGS).map(|i| {
        FlagDecl::new(
            FlagKey::parse(&key(i)).unwrap(),
            i % 2 == 0,
            24,
            format!("Feature {i}"),
            Risk::Low,
        )
        .unwrap()
    });
    let flag_set = FlagSet::from_decls(decls).unwrap();
    let test_db = runtime.block_on(TestDb::new(Backend::Sqlite));
    let flags = runtime.block_on(async {
        Flags::builder()
            .env("prod")
            .flag_set(flag_set)
            .env_vars(EnvSnapshot::capture([(
                "FLAG_CONSOLE_FEATURE_FLAGS_DB",
                "1",
            )]))
            .database_url(test_db.url_string())
            .start()
            .await
            .unwrap()
    });
    let asked = key(617);
    let typed = flags.flag(&asked);
    let baseline: HashMap<String, bool> = (0..FLAGS).map(|i| (key(i), i % 2 == 0)).collect();

    let mut group = c.benchmark_group("is_on");
    group.bench_function("baseline_std_hashmap_get", |b| {
        b.iter(|| *baseline.get(black_box(asked.as_str())).unwrap());
    });
    group.bench_function("flags_is_on", |b| {
        b.iter(|| flags.is_on(black_box(asked.as_str())));
    });
    group.bench_function("typed_flag_is_on", |b| {
        b.iter(|| black_box(&typed).is_on());
    });
    group.finish();
    drop(flags);
    drop(test_db);
}

criterion_group!(benches, bench);
criterion_main!(benches);
