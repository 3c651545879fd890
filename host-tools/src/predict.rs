//! `mote predict`: classifies PNG or PGM images, converted to the model's grayscale input size
//! (alpha composited over white, shrunk by area averaging, dark-on-light inverted), and prints
//! the class and the probabilities. Images over a stated size are refused before decoding;
//! blank images are said to be blank.

use crate::error::{CliError, CliResult};
use crate::model::{build, load_model_bytes, CliPlan};
use crate::say::Say;
use image::{ImageError, ImageFormat, ImageReader, Limits};
use mote_core::{Executor, Mode};
use serde_json::json;
use std::path::Path;

/// The largest width or height read (a 20000×20000 "PNG bomb" is refused from its header):
/// at most 256 MB of decoded 16-bit RGBA.
pub const MAX_SIDE: u32 = 4096;

/// Pixels of an image this close to uniform (max − min, in [0, 1]) are called blank.
const BLANK_RANGE: f32 = 0.05;

/// A grayscale image with values in [0, 1], light digit on dark (as MNIST).
pub struct Gray {
    /// Row-major, the model's height × width.
    pub pixels: Vec<f32>,
    /// Whether the image is uniform: the model's answer for it means nothing.
    pub blank: bool,
}

/// Reads `path` (PNG of any color type, or PGM) as a `width`×`height` model input.
pub fn read_image(path: &Path, width: u32, height: u32) -> CliResult<Gray> {
    let bytes = std::fs::read(path).map_err(CliError::io(path))?;
    decode_image(&bytes, width, height).map_err(|m| CliError::invalid(path, m))
}

/// [`read_image`] of bytes already read: what is wrong with them, if they are not an image.
pub fn decode_image(bytes: &[u8], width: u32, height: u32) -> Result<Gray, String> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Pnm)) {
        return Err("not a PNG or PGM image".into());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        ImageError::Limits(_) => format!("larger than {MAX_SIDE}×{MAX_SIDE} pixels (refused before decoding)"),
        e => format!("cannot decode: {e}"),
    })?;
    // Over white: a browser canvas export draws its digit in the alpha channel alone.
    let gray_alpha = image.to_luma_alpha8();
    drop(image);
    let gray = image::GrayImage::from_fn(gray_alpha.width(), gray_alpha.height(), |x, y| {
        let [luma, alpha] = gray_alpha.get_pixel(x, y).0;
        let (l, a) = (luma as u32, alpha as u32);
        image::Luma([((a * l + (255 - a) * 255 + 127) / 255) as u8])
    });
    // Area averaging: every source pixel counts, so thin strokes survive a large shrink.
    let small = image::imageops::thumbnail(&gray, width, height);
    let mut pixels: Vec<f32> = small.pixels().map(|p| p.0[0] as f32 / 255.0).collect();
    let (lo, hi) = pixels.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    // MNIST digits are light on dark: invert dark-on-light images.
    if pixels.iter().sum::<f32>() / pixels.len().max(1) as f32 > 0.5 {
        pixels.iter_mut().for_each(|p| *p = 1.0 - *p);
    }
    Ok(Gray { pixels, blank: hi - lo < BLANK_RANGE })
}

/// `mote predict MODEL IMAGE...`.
pub fn run(model_path: &Path, images: &[std::path::PathBuf], json: bool) -> CliResult<()> {
    let say = Say::new(json);
    let bytes = std::fs::read(model_path).map_err(CliError::io(model_path))?;
    let (spec, params) = load_model_bytes(model_path, &bytes)?;
    let (g, built) = build(model_path, &spec, 1)?;
    let x = g.shape(built.x)?;
    if x.per_sample() != x.dim(x.rank() - 2) * x.last() {
        let message = format!("takes input {:?}: predict reads one gray channel of [height, width]", spec.input);
        return Err(CliError::invalid(model_path, message));
    }
    let (h, w) = (x.dim(x.rank() - 2), x.last());
    let plan = CliPlan::inference(&g, &[built.output], Mode::Eval)?;
    let mut arena = vec![0.0; plan.arena_len()];
    let mut ex = Executor::read_only(&g, &plan, &params, &mut arena)?;
    let mut results = Vec::new();
    for path in images {
        let img = read_image(path, w as u32, h as u32)?;
        ex.set_input(built.x, &img.pixels).map_err(CliError::core(path))?;
        ex.run()?;
        let logits = ex.value(built.output)?;
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let exp: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        let probs: Vec<f32> = exp.iter().map(|e| e / sum).collect();
        let class = mote_core::argmax_f32(logits);
        let shown: Vec<String> = probs.iter().enumerate().map(|(c, p)| format!("{c}:{p:.3}")).collect();
        say.line(format!("{}: class {class} (probabilities {})", path.display(), shown.join(" ")));
        if img.blank {
            eprintln!("mote: warning: {} is blank (uniform after conversion): its class means nothing", path.display());
        }
        results.push(json!({"image": path, "class": class, "probabilities": probs, "blank": img.blank}));
    }
    if json {
        println!("{}", json!({ "predictions": results }));
    }
    Ok(())
}
