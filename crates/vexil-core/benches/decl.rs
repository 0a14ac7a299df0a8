//! Parsing and validating a flags file of 1,000 and 10,000 flags (target: ≤ 10 ms
//! median for 1,000, linear growth). Baseline in the same run: serde-saphyr reading
//! the same text into `IgnoredAny`, the bare YAML parse that `FlagSet::parse` builds on.
//!
//! `cargo bench -p vexil-core --bench decl`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vexil_core::FlagSet;

/// A flags file of `n` flags shaped like real ones: one-line descriptions, every
/// risk, a soak on every third flag.
fn flags_file(n: usize) -> String {
    let mut yaml = String::with_capacity(n * 130);
    for i in 0..n {
        let risk = ["low", "medium", "high"][i % 3];
        yaml.push_str(&format!(
            "feature_{i:05}:\n  default: {}\n  description: \"Gate for feature number {i}, rolled out by team {}\"\n  risk: {risk}\n",
            i % 2 == 0,
            i % 17,
        ));
        if i % 3 == 0 {
            yaml.push_str("  soak_period_hours: 48\n");
        }
    }
    yaml
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decl");
    group.sample_size(20);
    for n in [1_000, 10_000] {
        let yaml = flags_file(n);
        assert_eq!(
            FlagSet::parse("f.yaml", yaml.as_bytes()).map(|f| f.len()),
            Ok(n)
        );
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("baseline_yaml_ignored_any", n),
            &yaml,
            |b, yaml| {
                b.iter(|| {
                    serde_saphyr::from_str::<serde::de::IgnoredAny>(black_box(yaml)).unwrap()
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("parse_and_validate", n),
            &yaml,
            |b, yaml| {
                b.iter(|| FlagSet::parse("f.yaml", black_box(yaml.as_bytes())).unwrap());
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
