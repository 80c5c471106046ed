//! Speed on registry-sized and larger data, for comparison with R (scripts/bench-stats runs R on
//! the same CSVs in the same run and prints the ratios):
//! - Kaplan–Meier by group + log-rank on 1,000,000 subjects,
//! - Cox (Efron) with 5 covariates on 100,000 subjects,
//! - Fine–Gray with 3 covariates on 20,000 subjects (and on the 2,000 / 4,000 first rows, the sizes
//!   at which cmprsk::crr finishes in reasonable time).
//!
//! With `STATS_BENCH_DATA=DIR` the data come from DIR/{km,cox,fg}.csv (written by the script);
//! otherwise they are generated here with a fixed seed.
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use registry_stats::cox::{cox_ph, CoxConfig, Covariate};
use registry_stats::finegray::{fine_gray, FineGrayConfig};
use registry_stats::km::{kaplan_meier, KmConfig};
use registry_stats::logrank::log_rank;

/// Columns of a numeric CSV.
struct Columns {
    names: Vec<String>,
    values: Vec<Vec<f64>>,
}

impl Columns {
    fn get(&self, name: &str) -> &[f64] {
        let i = self.names.iter().position(|n| n == name).expect("bench column");
        &self.values[i]
    }
}

fn read_csv(path: &Path) -> Columns {
    let mut reader = csv::Reader::from_path(path).expect("bench csv");
    let names: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    let mut values = vec![Vec::new(); names.len()];
    for record in reader.records() {
        let record = record.expect("record");
        for (i, cell) in record.iter().enumerate() {
            values[i].push(cell.trim_matches('"').parse::<f64>().expect("number"));
        }
    }
    Columns { names, values }
}

/// xorshift64* uniform in (0, 1), for the stand-alone data.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn exp(&mut self, rate: f64) -> f64 {
        -self.uniform().ln() / rate
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

fn generated(kind: &str) -> Columns {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (n, p) = match kind {
        "km" => (1_000_000, 0),
        "cox" => (100_000, 5),
        _ => (20_000, 3),
    };
    let x: Vec<Vec<f64>> = (0..p).map(|_| (0..n).map(|_| rng.normal()).collect()).collect();
    let mut time = Vec::with_capacity(n);
    let mut event = Vec::with_capacity(n);
    let mut grp = Vec::with_capacity(n);
    for i in 0..n {
        let lin: f64 = x.iter().enumerate().map(|(j, col)| 0.1 * (j as f64 + 1.0) * col[i]).sum();
        let t1 = rng.exp(0.0008 * lin.exp());
        let t2 = rng.exp(0.0005);
        let c = 3000.0 * rng.uniform();
        let t = t1.min(t2).min(c);
        time.push(t.ceil());
        event.push(if t == c { 0.0 } else if t == t1 { 1.0 } else if kind == "fg" { 2.0 } else { 1.0 });
        grp.push(if rng.uniform() < 0.5 { 1.0 } else { 2.0 });
    }
    let mut names = vec!["time".to_string(), "status".to_string(), "grp".to_string()];
    let mut values = vec![time, event, grp];
    for (j, col) in x.into_iter().enumerate() {
        names.push(format!("x{}", j + 1));
        values.push(col);
    }
    Columns { names, values }
}

fn data(kind: &str) -> Columns {
    match std::env::var_os("STATS_BENCH_DATA") {
        Some(dir) => read_csv(&Path::new(&dir).join(format!("{kind}.csv"))),
        None => generated(kind),
    }
}

fn covariates(cols: &Columns, names: &[&str], rows: usize) -> Vec<Covariate> {
    names
        .iter()
        .map(|n| Covariate { name: (*n).to_string(), values: cols.get(n)[..rows].to_vec() })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("stats");
    group.sample_size(10);

    let km = data("km");
    let time = km.get("time");
    let event: Vec<bool> = km.get("status").iter().map(|v| *v == 1.0).collect();
    let grp: Vec<usize> = km.get("grp").iter().map(|v| if *v == 1.0 { 0 } else { 1 }).collect();
    group.bench_function("km_logrank_1m", |b| {
        b.iter(|| {
            for k in 0..2 {
                let rows: Vec<usize> = (0..time.len()).filter(|&i| grp[i] == k).collect();
                let t: Vec<f64> = rows.iter().map(|&i| time[i]).collect();
                let e: Vec<bool> = rows.iter().map(|&i| event[i]).collect();
                black_box(kaplan_meier(&t, &e, &KmConfig::default()).expect("km"));
            }
            black_box(log_rank(time, &event, &grp, 2).expect("logrank"))
        })
    });

    let cox = data("cox");
    let n = cox.get("time").len();
    let cox_event: Vec<bool> = cox.get("status").iter().map(|v| *v == 1.0).collect();
    let cox_covs = covariates(&cox, &["x1", "x2", "x3", "x4", "x5"], n);
    group.bench_function("cox_100k_5cov", |b| {
        b.iter(|| black_box(cox_ph(cox.get("time"), &cox_event, &cox_covs, &CoxConfig::default()).expect("cox")))
    });

    let fg = data("fg");
    for rows in [2_000usize, 4_000, fg.get("time").len()] {
        let t = &fg.get("time")[..rows];
        let status: Vec<u32> = fg.get("status")[..rows].iter().map(|v| *v as u32).collect();
        let covs = covariates(&fg, &["x1", "x2", "x3"], rows);
        let name = format!("finegray_{}k_3cov", rows / 1000);
        group.bench_function(name, |b| {
            b.iter(|| black_box(fine_gray(t, &status, 1, &covs, &FineGrayConfig::default()).expect("crr")))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
