//! Image-classification data from a directory of IDX files (`train-*` and `t10k-*`, raw or
//! gzip), as MNIST and Fashion-MNIST ship them. Pixels are scaled to [0, 1].

use crate::idx::{read_idx, IdxError};
use std::path::{Path, PathBuf};

/// Images and labels of one split.
#[derive(Clone, Debug)]
pub struct Split {
    /// `len · rows · cols` pixels in [0, 1].
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
    /// The files they came from, for messages.
    pub images_path: PathBuf,
    pub labels_path: PathBuf,
}

impl Split {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether the split has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Pixels of sample `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.rows * self.cols;
        &self.images[i * n..(i + 1) * n]
    }
}

/// The file of `stem` in `dir`, raw or `.gz`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf, IdxError> {
    let raw = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    if raw.exists() {
        Ok(raw)
    } else if gz.exists() {
        Ok(gz)
    } else {
        Err(IdxError { path: raw, message: "not found (nor with .gz): run `cargo xtask data` or point --data at IDX files".into() })
    }
}

/// Reads split `prefix` (`train` or `t10k`) from `dir`.
pub fn load_split(dir: &Path, prefix: &str) -> Result<Split, IdxError> {
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&images_path, 3)?;
    let labels = read_idx(&labels_path, 1)?;
    if images.dims[0] != labels.dims[0] {
        return Err(IdxError {
            path: labels_path,
            message: format!("has {} labels but {} has {} images", labels.dims[0], images_path.display(), images.dims[0]),
        });
    }
    Ok(Split {
        images: images.data.iter().map(|&p| p as f32 / 255.0).collect(),
        labels: labels.data,
        rows: images.dims[1],
        cols: images.dims[2],
        images_path,
        labels_path,
    })
}
