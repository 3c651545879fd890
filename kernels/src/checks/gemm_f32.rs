//! Checks of the linear layers' f32 matrix products against the reference, bit for bit: every
//! transposition, accumulating or not, sizes whose outputs split into every mix of the
//! kernels' widths (8 and 16 at once, 4 with a predicated tail, single values), and the weight
//! gradient's rows.

use super::{ensure, fill_values, Mismatch};
use crate::reference::{gemm_f32, linear_weight_grad_row_f32, Transpose};

/// Values an operand buffer holds.
const MAX: usize = 4096;

/// A matrix product with the dispatch's signature.
pub type GemmKernel<'k> = &'k dyn Fn(Transpose, usize, usize, usize, &[f32], &[f32], &mut [f32], bool);

/// A weight gradient row with the dispatch's signature.
pub type WeightGradKernel<'k> = &'k dyn Fn(usize, usize, usize, &[f32], &[f32], &mut [f32]);

/// `(m, n, k)`: mnist-cnn's linear layer forward and its input gradient's shape, then odd sizes
/// (8 + 8 + 3 outputs, 16 + 5 columns, one of each, one output, one input).
const SIZES: [(usize, usize, usize); 9] =
    [(1, 10, 400), (1, 400, 10), (3, 7, 5), (2, 19, 33), (1, 1, 1), (2, 16, 3), (1, 21, 17), (2, 4, 1), (5, 1, 9)];

fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// `kernel` against the reference's `gemm_f32`. Returns the outputs compared.
pub fn gemm(kernel: GemmKernel) -> Result<usize, Mismatch> {
    let (mut a, mut b, mut want, mut got) = ([0f32; MAX], [0f32; MAX], [0f32; 1024], [0f32; 1024]);
    let mut compared = 0;
    for (n_case, &(m, n, k)) in SIZES.iter().enumerate() {
        let (a, b) = (&mut a[..m * k], &mut b[..n * k]);
        fill_values(a, n_case as u32 + 3);
        fill_values(b, n_case as u32 + 30);
        for (i, t) in [(false, true), (false, false), (true, true), (true, false)].into_iter().enumerate() {
            let t = Transpose { a: t.0, b: t.1 };
            for accumulate in [false, true] {
                let (want, got) = (&mut want[..m * n], &mut got[..m * n]);
                fill_values(want, 77);
                fill_values(got, 77);
                gemm_f32(t, m, n, k, a, b, want, accumulate);
                kernel(t, m, n, k, a, b, got, accumulate);
                ensure(bits_equal(got, want), "f32 gemm", 8 * n_case + 2 * i + accumulate as usize)?;
                compared += m * n;
            }
        }
    }
    Ok(compared)
}

/// `kernel` against the reference's `linear_weight_grad_row_f32` for every row of three
/// layers. Returns the values compared.
pub fn weight_grad(kernel: WeightGradKernel) -> Result<usize, Mismatch> {
    let (mut dy, mut x, mut want, mut got) = ([0f32; 64], [0f32; MAX], [0f32; 512], [0f32; 512]);
    let mut compared = 0;
    for (n_case, &(rows, out, inf)) in [(1, 10, 400), (3, 5, 21), (2, 7, 16)].iter().enumerate() {
        let (dy, x) = (&mut dy[..rows * out], &mut x[..rows * inf]);
        fill_values(dy, n_case as u32 + 5);
        fill_values(x, n_case as u32 + 50);
        for o in 0..out {
            let (want, got) = (&mut want[..inf], &mut got[..inf]);
            fill_values(got, 9);
            linear_weight_grad_row_f32(rows, out, o, dy, x, want);
            kernel(rows, out, o, dy, x, got);
            ensure(bits_equal(got, want), "f32 weight gradient row", n_case)?;
            compared += inf;
        }
    }
    Ok(compared)
}
