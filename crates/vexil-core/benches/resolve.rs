//! `resolve` for one flag, the per-flag cost under every snapshot rebuild and every
//! console row (target: ≤ 20 ns median). Baseline in the same run: one lookup in a
//! `std` `HashMap<String, bool>`, the cheapest cache a process could keep.
//!
//! `cargo bench -p vexil-core --bench resolve`

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vexil_core::{EnvSnapshot, FlagSet, MasterSwitch, resolve, resolve_key};

/// A process environment as an application host has it: a few dozen unrelated
/// variables and twenty `FLAG_*` overrides, one of them for the flag resolved.
fn environment() -> EnvSnapshot {
    let mut pairs: Vec<(String, String)> = (0..40)
        .map(|i| (format!("APP_SETTING_{i}"), "x".to_owned()))
        .collect();
    pairs.extend((0..20).map(|i| (format!("FLAG_OTHER_FEATURE_{i}"), "1".to_owned())));
    pairs.push(("FLAG_SEARCH_TYPO_TOLERANCE".to_owned(), "on".to_owned()));
    pairs.push(("FLAG_CONSOLE_FEATURE_FLAGS_DB".to_owned(), "1".to_owned()));
    EnvSnapshot::capture(pairs)
}

fn bench(c: &mut Criterion) {
    let flags = FlagSet::parse(
        "feature_flags.yaml",
        include_bytes!("../../../examples/feature_flags.yaml"),
    )
    .expect("the example flags file is valid");
    let env = environment();
    let master = env.master_switch();
    let decl = flags
        .get("search_typo_tolerance")
        .expect("declared in the example");
    let dark_mode = flags.get("dark_mode").expect("declared in the example");

    let mut group = c.benchmark_group("resolve");
    group.bench_function("baseline_hashmap_get", |b| {
        let cache: HashMap<String, bool> = flags
            .iter()
            .map(|d| (d.key().to_string(), d.default()))
            .collect();
        b.iter(|| black_box(cache.get(black_box("search_typo_tolerance")).copied()));
    });
    group.bench_function("db_row_wins_dormant_var", |b| {
        b.iter(|| {
            black_box(resolve(
                black_box(decl),
                black_box(Some(false)),
                &env,
                black_box(master),
            ))
        });
    });
    group.bench_function("env_var_wins", |b| {
        b.iter(|| {
            black_box(resolve(
                black_box(decl),
                black_box(None),
                &env,
                black_box(master),
            ))
        });
    });
    group.bench_function("yaml_default", |b| {
        b.iter(|| {
            black_box(resolve(
                black_box(dark_mode),
                black_box(None),
                &env,
                black_box(MasterSwitch::Off),
            ))
        });
    });
    group.bench_function("by_key_declared", |b| {
        b.iter(|| {
            black_box(resolve_key(
                &flags,
                black_box("search_typo_tolerance"),
                Some(true),
                &env,
                master,
            ))
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
