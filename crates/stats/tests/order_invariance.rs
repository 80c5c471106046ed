//! Properties R does not test for us: the answer must not depend on the order of the rows
//! (registries export in arbitrary order), and the KM curve must be a proper survival curve.
use proptest::prelude::*;
use registry_stats::cox::{cox_ph, CoxConfig, Covariate};
use registry_stats::km::{kaplan_meier, KmConfig};
use registry_stats::logrank::log_rank;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Rows of (integer time 0..20 so ties are common, event, group 0..3, covariate).
fn rows() -> impl Strategy<Value = Vec<(u8, bool, usize, i8)>> {
    prop::collection::vec((0u8..20, any::<bool>(), 0usize..3, -5i8..5), 8..60)
}

proptest! {
    #[test]
    fn km_and_logrank_do_not_depend_on_row_order(data in rows(), seed in any::<u64>()) {
        let mut shuffled = data.clone();
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let split = |d: &[(u8, bool, usize, i8)]| -> (Vec<f64>, Vec<bool>, Vec<usize>, Vec<f64>) {
            (d.iter().map(|r| f64::from(r.0)).collect(), d.iter().map(|r| r.1).collect(),
             d.iter().map(|r| r.2).collect(), d.iter().map(|r| f64::from(r.3)).collect())
        };
        let (t1, e1, g1, x1) = split(&data);
        let (t2, e2, g2, x2) = split(&shuffled);
        let a = kaplan_meier(&t1, &e1, &KmConfig::default()).expect("km");
        let b = kaplan_meier(&t2, &e2, &KmConfig::default()).expect("km");
        prop_assert_eq!(&a.times, &b.times);
        prop_assert!(a.survival.iter().zip(&b.survival).all(|(x, y)| close(*x, *y)));
        prop_assert!(a.survival.windows(2).all(|w| w[1] <= w[0]));
        prop_assert!(a.survival.iter().all(|s| (0.0..=1.0).contains(s)));
        prop_assert_eq!(a.median, b.median);

        let la = log_rank(&t1, &e1, &g1, 3).expect("logrank");
        let lb = log_rank(&t2, &e2, &g2, 3).expect("logrank");
        prop_assert!(close(la.chisq, lb.chisq));
        let oe: f64 = la.observed.iter().sum::<f64>() - la.expected.iter().sum::<f64>();
        prop_assert!(oe.abs() < 1e-9, "observed and expected totals agree");

        let ca = cox_ph(&t1, &e1, &[Covariate { name: "x".into(), values: x1 }], &CoxConfig::default()).expect("cox");
        let cb = cox_ph(&t2, &e2, &[Covariate { name: "x".into(), values: x2 }], &CoxConfig::default()).expect("cox");
        prop_assert!(close(ca.loglik[1], cb.loglik[1]));
    }
}
