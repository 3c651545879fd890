//! What a command is given, checked against everything it must agree with before the long work
//! starts: data against the model (image size, labels against its outputs), output paths,
//! memory. Each problem names the file or flag and what was expected.

use crate::dataset::Split;
use crate::error::{CliError, CliResult};
use std::path::Path;

/// Every image of `split` has the size of the model's input (`input`, one sample), and every
/// label is one of the model's `classes` outputs.
pub fn data_fits_model(model: &Path, input: &[u32], classes: usize, split: &Split) -> CliResult<()> {
    let per: usize = input.iter().map(|&d| d as usize).product();
    if split.rows * split.cols != per {
        let message = format!(
            "holds {}×{} images ({} values each) but {} takes input {input:?} ({per} values)",
            split.rows,
            split.cols,
            split.rows * split.cols,
            model.display()
        );
        return Err(CliError::invalid(&split.images_path, message));
    }
    let Some((sample, &label)) = split.labels.iter().enumerate().find(|(_, &l)| l as usize >= classes) else {
        return Ok(());
    };
    let data_classes = split.labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let message = format!(
        "sample {sample} has label {label}: {} has {classes} outputs (labels 0 to {}), the data has {data_classes} classes",
        model.display(),
        classes.saturating_sub(1)
    );
    Err(CliError::invalid(&split.labels_path, message))
}

/// `path` (given as `flag`) can be written: not a folder, in a folder that exists and takes
/// new files, and none of `inputs` (writing it must not destroy what the command reads).
pub fn writable_output(path: &Path, flag: &str, inputs: &[&Path]) -> CliResult<()> {
    let bad = |m: String| CliError::Usage(format!("{flag} {}: {m}", path.display()));
    if path.is_dir() {
        return Err(bad("is a folder, expected a file name".into()));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(bad(format!("the folder {} does not exist", parent.display())));
    }
    if let Ok(target) = path.canonicalize() {
        if inputs.iter().any(|i| i.canonicalize().is_ok_and(|i| i == target)) {
            return Err(bad("is also an input of this command: it would be overwritten".into()));
        }
    }
    let probe = parent.join(format!(".mote-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| bad(format!("the folder {} cannot be written: {e}", parent.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The buffers a run needs (`values` f32 values) fit under `cap_bytes`.
pub fn memory_fits(values: usize, cap_bytes: usize, what: &str) -> CliResult<()> {
    let bytes = values.saturating_mul(4);
    if bytes > cap_bytes {
        let mb = |b: usize| b.div_ceil(1 << 20);
        return Err(CliError::Usage(format!(
            "{what} need {} MB, over the {} MB allowed (--max-memory-mb): make the model or the batch smaller, or raise the limit",
            mb(bytes),
            mb(cap_bytes)
        )));
    }
    Ok(())
}

/// The index of the first non-finite value of `params`, if any.
pub fn first_non_finite(params: &[f32]) -> Option<usize> {
    params.iter().position(|v| !v.is_finite())
}
