//! Group labels: the order in which groups are reported.
//!
//! Rule (shared with the R fixtures, which build factors with the same levels): if every label
//! parses as a number the levels sort numerically (as R's `factor()` of a numeric column),
//! otherwise they sort by bytes (R's `sort(method = "radix")`, the C locale).

/// Distinct labels in report order and, for each input row, the index of its level.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    pub levels: Vec<String>,
    pub index: Vec<usize>,
}

/// Sorts the distinct labels (numeric when all are numbers, else bytewise) and indexes the rows.
pub fn group_rows(labels: &[String]) -> Grouping {
    let mut levels: Vec<String> = labels.to_vec();
    levels.sort();
    levels.dedup();
    let numeric: Option<Vec<f64>> = levels.iter().map(|l| l.trim().parse::<f64>().ok()).collect();
    if let Some(values) = numeric {
        let mut pairs: Vec<(f64, String)> = values.into_iter().zip(levels).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        levels = pairs.into_iter().map(|(_, l)| l).collect();
    }
    let position: std::collections::HashMap<&str, usize> =
        levels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    let index = labels.iter().map(|l| position[l.as_str()]).collect();
    Grouping { levels, index }
}
