//! Numbers on the wire: undefined is `null` (never NaN or ±∞), whole numbers print without `.0`,
//! `-0` prints as `0`, everything else in serde_json's shortest round-trip form. One formatting
//! for every float of the report, so the same data give the same bytes.

use serde::{Serialize, Serializer};

/// A report number: `None`, NaN and ±∞ serialise as `null`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Num(pub(crate) Option<f64>);

impl Num {
    pub(crate) fn new(v: f64) -> Num {
        Num(v.is_finite().then_some(v))
    }

    pub(crate) fn opt(v: Option<f64>) -> Num {
        Num(v.filter(|x| x.is_finite()))
    }

    pub(crate) fn get(self) -> Option<f64> {
        self.0
    }
}

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_none(),
            Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => s.serialize_i64(x as i64),
            Some(x) => s.serialize_f64(x),
        }
    }
}

/// Fixed-decimal text for tables and plots (`—` when undefined).
pub(crate) fn fmt_fixed(v: Option<f64>, decimals: usize) -> String {
    match v.filter(|x| x.is_finite()) {
        None => "—".to_owned(),
        Some(x) => {
            let s = format!("{x:.decimals$}");
            // "-0.0" → "0.0"
            if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
                s[1..].to_owned()
            } else {
                s
            }
        }
    }
}

/// A p-value as journals print it: `< 0.001`, else three decimals.
pub(crate) fn fmt_p(p: Option<f64>) -> String {
    match p.filter(|x| x.is_finite()) {
        None => "—".to_owned(),
        Some(x) if x < 0.001 => "< 0.001".to_owned(),
        Some(x) => format!("{x:.3}"),
    }
}

/// Days as months (days / 30.4375, `domain.md` preamble), one decimal.
pub(crate) fn fmt_months(days: Option<f64>) -> String {
    fmt_fixed(days.map(|d| d / DAYS_PER_MONTH), 1)
}

/// `domain.md`: months = days / 30.4375 when shown.
pub(crate) const DAYS_PER_MONTH: f64 = 30.4375;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_numbers_are_null_and_whole_numbers_have_no_fraction() {
        let v = serde_json::to_string(&[Num::new(f64::NAN), Num::new(253.0), Num::new(-0.0), Num::new(0.5), Num(None)])
            .expect("serialise");
        assert_eq!(v, "[null,253,0,0.5,null]");
    }

    #[test]
    fn p_values_and_months_print_as_in_the_study() {
        assert_eq!(fmt_p(Some(0.0004)), "< 0.001");
        assert_eq!(fmt_p(Some(0.0061)), "0.006");
        assert_eq!(fmt_p(None), "—");
        assert_eq!(fmt_months(Some(350.0)), "11.5");
        assert_eq!(fmt_fixed(Some(-0.0001), 1), "0.0");
    }
}
