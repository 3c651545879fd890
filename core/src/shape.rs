//! Tensor shapes: rank ≤ 4, NCHW for images, as PyTorch and ONNX lay them out.

use crate::{Error, Result};
use core::fmt;

/// The largest rank a tensor may have.
pub const MAX_RANK: usize = 4;

/// A tensor shape of rank 1 to 4 with non-zero dimensions.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: u8,
}

impl Shape {
    /// A shape from its dimensions; an empty list, rank > 4, a zero dimension, or more
    /// elements than fit in `u32` (no device holds them) is an error.
    pub fn new(dims: &[usize]) -> Result<Shape> {
        let fits = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_some_and(|n| n <= u32::MAX as usize);
        if dims.is_empty() || dims.len() > MAX_RANK || dims.contains(&0) || !fits {
            return Err(Error::InvalidDims { rank: dims.len(), has_zero: dims.contains(&0) });
        }
        let mut d = [1; MAX_RANK];
        d[..dims.len()].copy_from_slice(dims);
        Ok(Shape { dims: d, rank: dims.len() as u8 })
    }
    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.rank as usize
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }
    /// Dimension `i` (0-based); `1` past the rank.
    pub fn dim(&self, i: usize) -> usize {
        self.dims.get(i).copied().unwrap_or(1)
    }
    /// The last dimension.
    pub fn last(&self) -> usize {
        self.dims[self.rank as usize - 1]
    }
    /// Elements per leading index: `numel / dim(0)`.
    pub fn per_sample(&self) -> usize {
        self.numel() / self.dims[0]
    }
    /// Dimensions right-aligned to rank 4 (padded with leading ones), for broadcasting.
    pub fn right_aligned(&self) -> [usize; MAX_RANK] {
        let mut out = [1; MAX_RANK];
        out[MAX_RANK - self.rank()..].copy_from_slice(self.dims());
        out
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Shape {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", self.dims())
    }
}

/// A shape is its dimensions (as u32, so host and device encode them alike); decoding checks
/// them as [`Shape::new`] does.
impl serde::Serialize for Shape {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let dims: heapless::Vec<u32, MAX_RANK> = self.dims().iter().map(|&d| d as u32).collect();
        dims.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let dims = heapless::Vec::<u32, MAX_RANK>::deserialize(d)?;
        let mut usize_dims = [0usize; MAX_RANK];
        for (u, &v) in usize_dims.iter_mut().zip(&dims) {
            *u = usize::try_from(v).map_err(|_| serde::de::Error::custom("a dimension too large for usize"))?;
        }
        Shape::new(&usize_dims[..dims.len()]).map_err(|_| serde::de::Error::custom("not a shape"))
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked_and_printed() {
        let s = Shape::new(&[2, 3, 4]).unwrap();
        assert_eq!(s.numel(), 24);
        assert_eq!(s.right_aligned(), [1, 2, 3, 4]);
        assert_eq!(format!("{s}"), "[2, 3, 4]");
        assert!(Shape::new(&[]).is_err());
        assert!(Shape::new(&[1, 2, 3, 4, 5]).is_err());
        assert!(Shape::new(&[3, 0]).is_err());
        assert!(Shape::new(&[1 << 16, 1 << 16, 2]).is_err(), "more elements than u32 holds");
    }
}
