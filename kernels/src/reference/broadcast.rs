//! Elementwise binary ops with NumPy/PyTorch broadcasting over rank ≤ 4.
//!
//! Shapes are right-aligned and padded to rank 4; a broadcast dimension has stride 0.

/// The binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// Output dimensions and the element strides of both operands (0 where broadcast).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Broadcast {
    pub dims: [usize; 4],
    pub a_strides: [usize; 4],
    pub b_strides: [usize; 4],
}

impl Broadcast {
    /// Calls `f(out_index, a_index, b_index)` for every output element, in row-major order.
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        let [d0, d1, d2, d3] = self.dims;
        let (sa, sb) = (self.a_strides, self.b_strides);
        let mut o = 0;
        for i0 in 0..d0 {
            for i1 in 0..d1 {
                for i2 in 0..d2 {
                    let ia = i0 * sa[0] + i1 * sa[1] + i2 * sa[2];
                    let ib = i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
                    for i3 in 0..d3 {
                        f(o, ia + i3 * sa[3], ib + i3 * sb[3]);
                        o += 1;
                    }
                }
            }
        }
    }
}

/// `y = a ∘ b` with broadcasting.
pub fn binary_f32(op: BinaryOp, bc: &Broadcast, a: &[f32], b: &[f32], y: &mut [f32]) {
    bc.for_each(|o, ia, ib| {
        y[o] = match op {
            BinaryOp::Add => a[ia] + b[ib],
            BinaryOp::Sub => a[ia] - b[ib],
            BinaryOp::Mul => a[ia] * b[ib],
            BinaryOp::Div => a[ia] / b[ib],
        }
    });
}

/// Backward of [`binary_f32`]: accumulates into `da` / `db` (when given), summing over the
/// dimensions each operand was broadcast along. `a` and `b` are read only for `Mul` and `Div`.
pub fn binary_backward_f32(
    op: BinaryOp,
    bc: &Broadcast,
    a: &[f32],
    b: &[f32],
    dy: &[f32],
    mut da: Option<&mut [f32]>,
    mut db: Option<&mut [f32]>,
) {
    bc.for_each(|o, ia, ib| {
        let g = dy[o];
        let (ga, gb) = match op {
            BinaryOp::Add => (g, g),
            BinaryOp::Sub => (g, -g),
            BinaryOp::Mul => (g * b[ib], g * a[ia]),
            BinaryOp::Div => (g / b[ib], -g * a[ia] / (b[ib] * b[ib])),
        };
        if let Some(da) = da.as_deref_mut() {
            da[ia] += ga;
        }
        if let Some(db) = db.as_deref_mut() {
            db[ib] += gb;
        }
    });
}
