//! PNG charts without a plotting dependency: training curves (loss, accuracy per epoch) and a
//! confusion-matrix heat map, labelled with a small built-in 3×5 pixel font.

use crate::error::{CliError, CliResult};
use crate::train::Epoch;
use std::path::Path;

/// An RGB canvas.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<[u8; 3]>,
}

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [220, 220, 220];
const BLUE: [u8; 3] = [31, 119, 180];
const ORANGE: [u8; 3] = [255, 127, 14];

/// 3×5 glyphs, one row of 3 bits per byte (bit 2 is the left pixel).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '%' => [5, 1, 2, 4, 5],
        ':' => [0, 2, 0, 2, 0],
        'a' => [2, 5, 7, 5, 5],
        'c' => [7, 4, 4, 4, 7],
        'd' => [6, 5, 5, 5, 6],
        'e' => [7, 4, 6, 4, 7],
        'h' => [5, 5, 7, 5, 5],
        'i' => [7, 2, 2, 2, 7],
        'l' => [4, 4, 4, 4, 7],
        'n' => [7, 5, 5, 5, 5],
        'o' => [7, 5, 5, 5, 7],
        'p' => [7, 5, 7, 4, 4],
        'r' => [6, 5, 6, 5, 5],
        's' => [7, 4, 7, 1, 7],
        't' => [7, 2, 2, 2, 2],
        'u' => [5, 5, 5, 5, 7],
        'y' => [5, 5, 7, 2, 2],
        _ => [0; 5],
    }
}

impl Canvas {
    fn new(w: usize, h: usize) -> Canvas {
        Canvas { w, h, px: vec![WHITE; w * h] }
    }
    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            self.px[y as usize * self.w + x as usize] = c;
        }
    }
    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        for y in y0..y1 {
            for x in x0..x1 {
                self.set(x, y, c);
            }
        }
    }
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: [u8; 3]) {
        let n = ((x1 - x0).abs().max((y1 - y0).abs()) as usize).max(1);
        for i in 0..=n {
            let t = i as f64 / n as f64;
            let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
            self.rect(x as i64, y as i64, x as i64 + 2, y as i64 + 2, c);
        }
    }
    /// Text at scale 2 (each glyph pixel is 2×2), top-left at (x, y).
    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) != 0 {
                        let (px, py) = (x + 8 * k as i64 + 2 * col, y + 2 * row as i64);
                        self.rect(px, py, px + 2, py + 2, c);
                    }
                }
            }
        }
    }
    fn save(&self, path: &Path) -> CliResult<()> {
        let file = std::fs::File::create(path).map_err(CliError::io(path))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), self.w as u32, self.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let png = |e: png::EncodingError| CliError::invalid(path, format!("cannot write the PNG: {e}"));
        let mut writer = enc.write_header().map_err(png)?;
        let data: Vec<u8> = self.px.iter().flatten().copied().collect();
        writer.write_image_data(&data).map_err(png)
    }
}

/// One panel: `series` of values per epoch drawn in `[lo, hi]` inside the box at `x0..x0+w`.
fn panel(c: &mut Canvas, x0: i64, title: &str, series: &[(&[f64], [u8; 3])], lo: f64, hi: f64) {
    let (y0, w, h) = (40i64, 380i64, 300i64);
    c.text(x0, 12, title, BLACK);
    for k in 0..=4 {
        let y = y0 + h * k / 4;
        c.rect(x0, y, x0 + w, y + 1, GRID);
        let v = hi - (hi - lo) * k as f64 / 4.0;
        c.text(x0 - 52, y - 4, &format!("{v:.2}"), BLACK);
    }
    c.rect(x0, y0, x0 + 1, y0 + h, BLACK);
    c.rect(x0, y0 + h, x0 + w, y0 + h + 1, BLACK);
    let n = series.first().map_or(0, |s| s.0.len());
    for k in 0..n {
        let x = x0 + if n > 1 { w * k as i64 / (n as i64 - 1) } else { 0 };
        c.text(x - 4, y0 + h + 8, &format!("{}", k + 1), BLACK);
    }
    c.text(x0 + w / 2 - 20, y0 + h + 24, "epoch", BLACK);
    let to_xy = |k: usize, v: f64| {
        let x = x0 as f64 + if n > 1 { w as f64 * k as f64 / (n as f64 - 1.0) } else { 0.0 };
        let y = y0 as f64 + h as f64 * (hi - v) / (hi - lo).max(1e-9);
        (x, y)
    };
    for (values, color) in series {
        for k in 1..values.len() {
            c.line(to_xy(k - 1, values[k - 1]), to_xy(k, values[k]), *color);
        }
        for (k, &v) in values.iter().enumerate() {
            let (x, y) = to_xy(k, v);
            c.rect(x as i64 - 3, y as i64 - 3, x as i64 + 4, y as i64 + 4, *color);
        }
    }
}

/// Training loss (left) and train / test accuracy (right) per epoch.
pub fn training_png(path: &Path, epochs: &[Epoch]) -> CliResult<()> {
    let mut c = Canvas::new(960, 400);
    let loss: Vec<f64> = epochs.iter().map(|e| e.train_loss).collect();
    let train: Vec<f64> = epochs.iter().map(|e| e.train_accuracy).collect();
    let test: Vec<f64> = epochs.iter().map(|e| e.test_accuracy).collect();
    let max_loss = loss.iter().fold(0.0f64, |m, &v| m.max(v));
    panel(&mut c, 70, "train loss", &[(&loss, BLUE)], 0.0, max_loss.max(1e-6));
    let lo = train.iter().chain(&test).fold(1.0f64, |m, &v| m.min(v));
    let lo = (lo * 20.0).floor() / 20.0;
    panel(&mut c, 550, "accuracy: train  test", &[(&train, BLUE), (&test, ORANGE)], lo.min(0.95), 1.0);
    c.rect(550 + 124, 12, 550 + 132, 22, BLUE);
    c.rect(550 + 172, 12, 550 + 180, 22, ORANGE);
    c.save(path)
}

/// Heat map of `confusion[true][predicted]` with the counts written in the cells.
pub fn confusion_png(path: &Path, confusion: &[Vec<usize>]) -> CliResult<()> {
    let n = confusion.len();
    let cell = 44i64;
    let (x0, y0) = (60i64, 50i64);
    let size = (x0 + cell * n as i64 + 20) as usize;
    let mut c = Canvas::new(size, size + 30);
    c.text(x0, 12, "predicted", BLACK);
    c.text(4, y0 - 20, "true", BLACK);
    for (t, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        c.text(x0 - 20, y0 + cell * t as i64 + 18, &t.to_string(), BLACK);
        c.text(x0 + cell * t as i64 + 18, y0 - 14, &t.to_string(), BLACK);
        for (p, &count) in row.iter().enumerate() {
            let shade = (255.0 * (1.0 - (count as f64 / total).sqrt())) as u8;
            let (x, y) = (x0 + cell * p as i64, y0 + cell * t as i64);
            c.rect(x, y, x + cell - 1, y + cell - 1, [shade, shade, 255]);
            let ink = if shade < 128 { WHITE } else { BLACK };
            let label = count.to_string();
            c.text(x + cell / 2 - 4 * label.len() as i64, y + cell / 2 - 5, &label, ink);
        }
    }
    c.save(path)
}
