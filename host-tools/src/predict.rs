//! `mote predict`: classifies PNG or PGM images (converted to the model's grayscale size) and
//! prints the class and the probabilities.

use crate::error::{CliError, CliResult};
use crate::model::{build, load_model_bytes, CliPlan};
use mote_core::{Executor, Mode};
use std::path::Path;

/// A grayscale image with values in [0, 1].
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

/// Reads a PNG (any color type, converted to gray) or a PGM (P2 or P5).
pub fn read_image(path: &Path) -> CliResult<Gray> {
    let bytes = std::fs::read(path).map_err(CliError::io(path))?;
    let err = |m: String| CliError::invalid(path, m);
    if bytes.starts_with(b"\x89PNG") {
        decode_png(&bytes).map_err(err)
    } else if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
        decode_pgm(&bytes).map_err(err)
    } else {
        Err(err("not a PNG or PGM image".into()))
    }
}

fn decode_png(bytes: &[u8]) -> Result<Gray, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| format!("bad PNG: {e}"))?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("PNG too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| format!("bad PNG: {e}"))?;
    let channels = info.color_type.samples();
    let (width, height) = (info.width as usize, info.height as usize);
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|px| {
            let color = if channels >= 3 { &px[..3] } else { &px[..1] };
            color.iter().map(|&v| v as f32).sum::<f32>() / (255.0 * color.len() as f32)
        })
        .collect();
    Ok(Gray { width, height, pixels })
}

fn decode_pgm(bytes: &[u8]) -> Result<Gray, String> {
    // Header: magic, width, height, maxval, separated by whitespace (comments start with #).
    let mut fields = Vec::new();
    let mut i = 2;
    while fields.len() < 3 && i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1
                }
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1
                }
                let text = std::str::from_utf8(&bytes[start..i]).map_err(|_| "bad PGM header")?;
                fields.push(text.parse::<usize>().map_err(|_| "bad PGM header")?);
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            _ => return Err("bad PGM header".into()),
        }
        i += 1;
    }
    let [width, height, maxval] = fields[..] else { return Err("PGM header needs width, height and maxval".into()) };
    if maxval == 0 || maxval > 255 || width == 0 || height == 0 {
        return Err(format!("unsupported PGM: {width}×{height}, maxval {maxval} (8-bit only)"));
    }
    let n = width.checked_mul(height).ok_or("PGM too large")?;
    let body = bytes.get(i + 1..).unwrap_or(&[]);
    let values: Vec<usize> = if bytes.starts_with(b"P5") {
        body.iter().take(n).map(|&b| b as usize).collect()
    } else {
        std::str::from_utf8(body).map_err(|_| "bad P2 body")?.split_ascii_whitespace().take(n).map(|t| t.parse().unwrap_or(0)).collect()
    };
    if values.len() != n {
        return Err(format!("PGM body has {} pixels, expected {n}", values.len()));
    }
    Ok(Gray { width, height, pixels: values.iter().map(|&v| v as f32 / maxval as f32).collect() })
}

/// Bilinear resize to `w × h`.
pub fn resize(img: &Gray, w: usize, h: usize) -> Vec<f32> {
    if img.width == w && img.height == h {
        return img.pixels.clone();
    }
    let at = |x: usize, y: usize| img.pixels[y.min(img.height - 1) * img.width + x.min(img.width - 1)];
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let fx = ((x as f32 + 0.5) * img.width as f32 / w as f32 - 0.5).max(0.0);
            let fy = ((y as f32 + 0.5) * img.height as f32 / h as f32 - 0.5).max(0.0);
            let (x0, y0) = (fx as usize, fy as usize);
            let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
            let top = at(x0, y0) * (1.0 - tx) + at(x0 + 1, y0) * tx;
            let bottom = at(x0, y0 + 1) * (1.0 - tx) + at(x0 + 1, y0 + 1) * tx;
            out.push(top * (1.0 - ty) + bottom * ty);
        }
    }
    out
}

/// `mote predict MODEL IMAGE...`.
pub fn run(model_path: &Path, images: &[std::path::PathBuf]) -> CliResult<()> {
    let bytes = std::fs::read(model_path).map_err(CliError::io(model_path))?;
    let (spec, params) = load_model_bytes(model_path, &bytes)?;
    let (g, built) = build(model_path, &spec, 1)?;
    let x = g.shape(built.x)?;
    let (h, w) = (x.dim(x.rank() - 2), x.last());
    let plan = CliPlan::inference(&g, &[built.output], Mode::Eval)?;
    let mut arena = vec![0.0; plan.arena_len()];
    let mut ex = Executor::read_only(&g, &plan, &params, &mut arena)?;
    for path in images {
        let img = read_image(path)?;
        let mut pixels = resize(&img, w, h);
        // MNIST digits are light on dark: invert dark-on-light images.
        let mean = pixels.iter().sum::<f32>() / pixels.len() as f32;
        if mean > 0.5 {
            pixels.iter_mut().for_each(|p| *p = 1.0 - *p);
        }
        ex.set_input(built.x, &pixels).map_err(CliError::core(path))?;
        ex.run()?;
        let logits = ex.value(built.output)?;
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let exp: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        let probs: Vec<String> = exp.iter().enumerate().map(|(c, e)| format!("{c}:{:.3}", e / sum)).collect();
        println!("{}: class {} (probabilities {})", path.display(), mote_core::argmax_f32(logits), probs.join(" "));
    }
    Ok(())
}
