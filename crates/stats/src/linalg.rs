//! Small dense symmetric linear algebra, written after survival's `cholesky2` / `chsolve2` /
//! `chinv2` so that rank deficiency is handled as `coxph` does: a pivot below `toler` times the
//! largest diagonal marks the column redundant, its row and column of the inverse become 0.

/// Square matrix stored by rows.
pub(crate) type Matrix = Vec<Vec<f64>>;

pub(crate) fn zeros(n: usize) -> Matrix {
    vec![vec![0.0; n]; n]
}

/// In-place LDL' factorisation of the symmetric matrix whose upper triangle is given (the lower
/// triangle is overwritten). Returns the rank, negated when the matrix is not non-negative
/// definite. Redundant columns get a zero diagonal.
pub(crate) fn cholesky2(m: &mut Matrix, toler: f64) -> i64 {
    let n = m.len();
    let mut nonneg = 1i64;
    let mut eps = 0.0f64;
    for i in 0..n {
        if m[i][i] > eps {
            eps = m[i][i];
        }
        for j in (i + 1)..n {
            m[j][i] = m[i][j];
        }
    }
    eps = if eps == 0.0 { toler } else { eps * toler };
    let mut rank = 0i64;
    for i in 0..n {
        let pivot = m[i][i];
        if !pivot.is_finite() || pivot < eps {
            m[i][i] = 0.0;
            if pivot < -8.0 * eps {
                nonneg = -1;
            }
        } else {
            rank += 1;
            for j in (i + 1)..n {
                let temp = m[j][i] / pivot;
                m[j][i] = temp;
                m[j][j] -= temp * temp * pivot;
                for k in (j + 1)..n {
                    m[k][j] -= temp * m[k][i];
                }
            }
        }
    }
    rank * nonneg
}

/// Solves `A x = y` in place given the factorisation from [`cholesky2`]; redundant columns get 0.
pub(crate) fn chsolve2(m: &Matrix, y: &mut [f64]) {
    let n = m.len();
    for i in 0..n {
        let mut temp = y[i];
        for j in 0..i {
            temp -= y[j] * m[i][j];
        }
        y[i] = temp;
    }
    for i in (0..n).rev() {
        if m[i][i] == 0.0 {
            y[i] = 0.0;
        } else {
            let mut temp = y[i] / m[i][i];
            for j in (i + 1)..n {
                temp -= y[j] * m[j][i];
            }
            y[i] = temp;
        }
    }
}

/// Turns the factorisation from [`cholesky2`] into the (generalised) inverse, returned full.
pub(crate) fn chinv2(m: &mut Matrix) -> Matrix {
    let n = m.len();
    for i in 0..n {
        if m[i][i] > 0.0 {
            m[i][i] = 1.0 / m[i][i];
            for j in (i + 1)..n {
                m[j][i] = -m[j][i];
                for k in 0..i {
                    let add = m[j][i] * m[i][k];
                    m[j][k] += add;
                }
            }
        }
    }
    for i in 0..n {
        if m[i][i] == 0.0 {
            for j in 0..i {
                m[j][i] = 0.0;
            }
            for j in i..n {
                m[i][j] = 0.0;
            }
        } else {
            for j in (i + 1)..n {
                let temp = m[j][i] * m[j][j];
                m[i][j] = temp;
                for k in i..j {
                    let add = temp * m[j][k];
                    m[i][k] += add;
                }
            }
        }
    }
    let mut out = zeros(n);
    for i in 0..n {
        for j in i..n {
            out[i][j] = m[i][j];
            out[j][i] = m[i][j];
        }
    }
    out
}

/// `b' A⁻ b` through the generalised inverse (R's `coxph.wtest`), with the rank used.
pub(crate) fn quadratic_form_ginv(a: &Matrix, b: &[f64], toler: f64) -> (f64, i64) {
    let mut f = a.clone();
    let rank = cholesky2(&mut f, toler);
    let mut x = b.to_vec();
    chsolve2(&f, &mut x);
    (b.iter().zip(&x).map(|(u, v)| u * v).sum(), rank)
}

/// Solves `A x = b` by Gaussian elimination with partial pivoting (R's `solve`, LAPACK dgesv).
/// `None` when A is exactly singular.
pub(crate) fn solve(a: &Matrix, b: &[f64]) -> Option<Vec<f64>> {
    let n = a.len();
    let mut m = a.clone();
    let mut x = b.to_vec();
    for col in 0..n {
        let pivot_row = (col..n).max_by(|&r, &s| m[r][col].abs().total_cmp(&m[s][col].abs()))?;
        if m[pivot_row][col] == 0.0 || !m[pivot_row][col].is_finite() {
            return None;
        }
        m.swap(col, pivot_row);
        x.swap(col, pivot_row);
        for r in (col + 1)..n {
            let factor = m[r][col] / m[col][col];
            if factor != 0.0 {
                for c in col..n {
                    m[r][c] -= factor * m[col][c];
                }
                x[r] -= factor * x[col];
            }
        }
    }
    for r in (0..n).rev() {
        let mut acc = x[r];
        for c in (r + 1)..n {
            acc -= m[r][c] * x[c];
        }
        x[r] = acc / m[r][r];
    }
    Some(x)
}

/// Inverse by solving against the identity columns; `None` when singular.
pub(crate) fn inverse(a: &Matrix) -> Option<Matrix> {
    let n = a.len();
    let mut out = zeros(n);
    for j in 0..n {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        let col = solve(a, &e)?;
        for i in 0..n {
            out[i][j] = col[i];
        }
    }
    Some(out)
}
