//! PNG charts with `plotters` (text in DejaVu Sans, bundled by the `dejavu` crate, so no system
//! font is needed): the training curves (loss at every step; train and test accuracy per
//! epoch) and the confusion matrix with the test accuracy. Non-finite values are never drawn.

use crate::error::{CliError, CliResult};
use crate::train::Epoch;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

const FONT: &str = "sans-serif";

/// Registers the bundled font once.
fn font_ready() -> Result<(), String> {
    static READY: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    READY
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the bundled font does not load".to_string())
        })
        .clone()
}

/// Plotters' errors about `path`, typed as the CLI's.
fn drawing<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> CliError + '_ {
    move |e| CliError::invalid(path, format!("cannot draw the chart: {e:?}"))
}

/// The curves of a training run titled `title`: the loss of every step, and the train and test
/// accuracy of every epoch.
pub fn training_png(path: &Path, title: &str, step_losses: &[f32], epochs: &[Epoch]) -> CliResult<()> {
    font_ready().map_err(|m| CliError::invalid(path, m))?;
    let err = drawing(path);
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let root = root.titled(title, (FONT, 22)).map_err(&err)?;
    let (left, right) = root.split_horizontally(560);

    let losses: Vec<(f32, f32)> =
        step_losses.iter().enumerate().filter(|(_, l)| l.is_finite()).map(|(i, &l)| ((i + 1) as f32, l)).collect();
    let top = losses.iter().map(|&(_, l)| l).fold(0.0f32, f32::max).max(1e-3) * 1.05;
    let mut chart = ChartBuilder::on(&left)
        .caption("training loss at every step", (FONT, 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(1f32..(step_losses.len().max(2) as f32), 0f32..top)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 12))
        .draw()
        .map_err(&err)?;
    chart.draw_series(LineSeries::new(losses, &BLUE)).map_err(&err)?;

    let mut chart = ChartBuilder::on(&right)
        .caption("accuracy per epoch", (FONT, 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5f32..(epochs.len() as f32 + 0.5), 0f32..100f32)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy (%)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_labels(epochs.len().clamp(2, 12))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FONT, 12))
        .draw()
        .map_err(&err)?;
    for (name, color, value) in [("train", BLUE, 0usize), ("test", RED, 1)] {
        let points: Vec<(f32, f32)> = epochs
            .iter()
            .enumerate()
            .map(|(i, e)| ((i + 1) as f32, 100.0 * if value == 0 { e.train_accuracy } else { e.test_accuracy } as f32))
            .filter(|(_, a)| a.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)).point_size(3))
            .map_err(&err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)
}

/// The confusion matrix (`[true][predicted]` counts) as a heat map with its counts, titled
/// `title` and the test `accuracy`.
pub fn confusion_png(path: &Path, title: &str, confusion: &[Vec<usize>], accuracy: f64) -> CliResult<()> {
    font_ready().map_err(|m| CliError::invalid(path, m))?;
    let err = drawing(path);
    let n = confusion.len().max(1);
    let root = BitMapBackend::new(path, (640, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let caption = format!("{title}: test accuracy {:.2}%", 100.0 * accuracy);
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, (FONT, 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(44)
        .build_cartesian_2d(-0.5f32..n as f32 - 0.5, n as f32 - 0.5..-0.5f32)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted class")
        .y_desc("true class")
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 12))
        .draw()
        .map_err(&err)?;
    let peak = confusion.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    for (t, row) in confusion.iter().enumerate() {
        for (p, &count) in row.iter().enumerate() {
            let shade = count as f64 / peak;
            let fill = if t == p { RGBColor(31, 119, 180).mix(0.15 + 0.85 * shade) } else { RGBColor(214, 39, 40).mix(0.9 * shade.sqrt()) };
            // Class c's cell is centred on c, where its axis label is.
            let cell = [(p as f32 - 0.5, t as f32 - 0.5), (p as f32 + 0.5, t as f32 + 0.5)];
            chart.draw_series([Rectangle::new(cell, fill.filled())]).map_err(&err)?;
            if count > 0 {
                let ink = if shade > 0.5 { WHITE } else { BLACK };
                let label = Text::new(
                    count.to_string(),
                    (p as f32, t as f32),
                    (FONT, 12).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center)),
                );
                chart.draw_series([label]).map_err(&err)?;
            }
        }
    }
    root.present().map_err(&err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Non-finite losses and accuracies are skipped, not drawn outside the axes, and both
    /// charts decode as PNGs of their stated sizes.
    #[test]
    fn charts_skip_non_finite_values_and_decode() {
        let dir = tempfile::tempdir().unwrap();
        let curves = dir.path().join("curves.png");
        let epochs = [
            Epoch { train_loss: 1.0, train_accuracy: 0.5, test_accuracy: 0.6 },
            Epoch { train_loss: f64::NAN, train_accuracy: f64::NAN, test_accuracy: 0.7 },
        ];
        training_png(&curves, "m on d", &[2.0, f32::NAN, f32::INFINITY, 1.0, 0.5], &epochs).unwrap();
        let img = image::open(&curves).unwrap();
        assert_eq!((img.width(), img.height()), (1000, 420));
        let confusion = dir.path().join("confusion.png");
        confusion_png(&confusion, "m on d", &[vec![3, 1], vec![0, 4]], 0.875).unwrap();
        let img = image::open(&confusion).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (640, 640));
        // The diagonal cell of class 1 (the largest count) is drawn in the darkest blue.
        assert!(img.pixels().any(|p| p.0 == [31, 119, 180]));
    }
}
