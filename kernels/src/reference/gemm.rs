//! General matrix multiply, row-major: `c (+)= op(a) · op(b)`.

/// Which operands of [`gemm_f32`] are stored transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transpose {
    /// `a` is stored `[k, m]` instead of `[m, k]`.
    pub a: bool,
    /// `b` is stored `[n, k]` instead of `[k, n]`.
    pub b: bool,
}

/// `c[m, n] = op(a)[m, k] · op(b)[k, n]`, or `+=` when `accumulate`.
///
/// Slices must hold at least `m*k`, `k*n` and `m*n` values.
pub fn gemm_f32(t: Transpose, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    let c = &mut c[..m * n];
    if !accumulate {
        c.fill(0.0);
    }
    let a_at = |i: usize, p: usize| if t.a { a[p * m + i] } else { a[i * k + p] };
    if t.b {
        // b is [n, k]: each output is a dot product of two contiguous rows.
        for i in 0..m {
            for j in 0..n {
                let row = &b[j * k..j * k + k];
                let mut acc = 0.0;
                for (p, &bv) in row.iter().enumerate() {
                    acc += a_at(i, p) * bv;
                }
                c[i * n + j] += acc;
            }
        }
    } else {
        // b is [k, n]: broadcast one a value over a contiguous row of b.
        for i in 0..m {
            let out = &mut c[i * n..i * n + n];
            for p in 0..k {
                let av = a_at(i, p);
                let row = &b[p * n..p * n + n];
                for (o, &bv) in out.iter_mut().zip(row) {
                    *o += av * bv;
                }
            }
        }
    }
}

/// Row `o` of a linear layer's weight gradient `dW = dyᵀ · x` (`dy [rows, out]`,
/// `x [rows, in]`) into `row [in]`: the sums [`gemm_f32`] makes for that row of the whole
/// `dW`, in the same order.
pub fn linear_weight_grad_row_f32(rows: usize, out: usize, o: usize, dy: &[f32], x: &[f32], row: &mut [f32]) {
    let inf = row.len();
    row.fill(0.0);
    for p in 0..rows {
        let g = dy[p * out + o];
        row.iter_mut().zip(&x[p * inf..p * inf + inf]).for_each(|(r, &xv)| *r += g * xv);
    }
}

/// `out[j] += Σ_i rows[i, j]`: the bias gradient of a linear layer.
pub fn sum_rows_f32(rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    for r in x[..rows * cols].chunks_exact(cols) {
        for (o, &v) in out[..cols].iter_mut().zip(r) {
            *o += v;
        }
    }
}

/// `y[r, j] += bias[j]` for every row.
pub fn add_row_bias_f32(rows: usize, cols: usize, bias: &[f32], y: &mut [f32]) {
    for r in y[..rows * cols].chunks_exact_mut(cols) {
        for (o, &b) in r.iter_mut().zip(&bias[..cols]) {
            *o += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand computation: [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]].
    #[test]
    fn gemm_all_transposes_match_hand_result() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let at = [1.0, 3.0, 2.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let bt = [5.0, 7.0, 6.0, 8.0];
        let want = [19.0, 22.0, 43.0, 50.0];
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut c = [100.0; 4];
            let aa = if ta { &at } else { &a };
            let bb = if tb { &bt } else { &b };
            gemm_f32(Transpose { a: ta, b: tb }, 2, 2, 2, aa, bb, &mut c, false);
            assert_eq!(c, want, "ta={ta} tb={tb}");
            gemm_f32(Transpose { a: ta, b: tb }, 2, 2, 2, aa, bb, &mut c, true);
            assert_eq!(c, [38.0, 44.0, 86.0, 100.0]);
        }
    }
}
