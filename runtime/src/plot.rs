//! Line charts of an experiment's curves (a sweep's runs overlaid, with a legend), written both as
//! SVG and as PNG through plotters. Text is drawn with a DejaVu Sans subset embedded in the binary
//! (`assets/`), so rendering needs no system fonts and looks the same on every machine; points a
//! chart cannot show (non-finite values, and non-positive ones on a log axis) are left out, and the
//! curve is broken there rather than drawn across the gap.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Width of the written charts, in pixels (PNG) or user units (SVG).
pub const WIDTH: u32 = 960;
/// Height of the written charts, in pixels (PNG) or user units (SVG).
pub const HEIGHT: u32 = 600;

/// One curve: its legend label and its (x, y) points in drawing order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry; an empty label leaves the curve out of the legend.
    pub label: String,
    /// The points, joined in this order.
    pub points: Vec<(f64, f64)>,
}

/// A chart of one or more curves on shared axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The caption above the plot.
    pub title: String,
    /// The horizontal axis's description.
    pub x_label: String,
    /// The vertical axis's description.
    pub y_label: String,
    /// Whether the vertical axis is logarithmic (base 10).
    pub log_y: bool,
    /// The curves, drawn in order with a fixed colour cycle.
    pub series: Vec<Series>,
}

/// Why a chart could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotError {
    /// The output file that failed.
    pub path: PathBuf,
    /// What went wrong, without the path (which `Display` prepends).
    pub message: String,
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for PlotError {}

/// Writes `chart` as an SVG file and as a PNG file of [`WIDTH`] x [`HEIGHT`].
pub fn write(chart: &Chart, svg: &Path, png: &Path) -> Result<(), PlotError> {
    let fail = |path: &Path, e: String| PlotError { path: path.to_path_buf(), message: e };
    register_font().map_err(|e| fail(svg, e))?;
    let layout = Layout::of(chart);
    {
        let root = SVGBackend::new(svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart, &layout).map_err(|e| fail(svg, e))?;
    }
    let root = BitMapBackend::new(png, (WIDTH, HEIGHT)).into_drawing_area();
    draw(&root, chart, &layout).map_err(|e| fail(png, e))
}

/// The embedded font; plotters' `ab_glyph` text backend draws only fonts registered with it.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Registers [`FONT`] once per process under the generic "sans-serif" family, which is also the
/// name the SVG output asks the viewer for.
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the embedded font could not be loaded".to_string())
        })
        .clone()
}

/// The Tableau 10 palette: distinct in hue and readable on white, so a sweep's curves separate.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// What to draw, decided once for both outputs: each series split into runs of drawable points,
/// and the axis ranges.
struct Layout {
    runs: Vec<Vec<Vec<(f64, f64)>>>,
    x: Range<f64>,
    y: Range<f64>,
}

impl Layout {
    fn of(chart: &Chart) -> Layout {
        let drawable = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!chart.log_y || y > 0.0);
        let runs: Vec<Vec<Vec<(f64, f64)>>> = chart
            .series
            .iter()
            .map(|s| s.points.split(|p| !drawable(p)).filter(|run| !run.is_empty()).map(<[_]>::to_vec).collect())
            .collect();
        let points = || runs.iter().flatten().flatten();
        let bounds = |values: &mut dyn Iterator<Item = f64>| {
            values.fold(None, |b: Option<(f64, f64)>, v| Some(b.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v)))))
        };
        let x = match bounds(&mut points().map(|p| p.0)) {
            None => 0.0..1.0,
            Some((lo, hi)) if lo == hi => {
                let pad = (lo.abs() * 0.05).max(0.5);
                lo - pad..hi + pad
            }
            Some((lo, hi)) => lo..hi,
        };
        let y = match (bounds(&mut points().map(|p| p.1)), chart.log_y) {
            (None, false) => 0.0..1.0,
            (None, true) => 1.0..10.0,
            // Log axis: margins are factors, so every point keeps a visible distance from the frame.
            (Some((lo, hi)), true) => {
                let margin = if lo == hi { 2.0 } else { (hi / lo).powf(0.05) };
                lo / margin..hi * margin
            }
            (Some((lo, hi)), false) => {
                let pad = if lo != hi {
                    (hi - lo) * 0.05
                } else if lo == 0.0 {
                    1.0
                } else {
                    lo.abs() * 0.1
                };
                lo - pad..hi + pad
            }
        };
        Layout { runs, x, y }
    }
}

/// Draws the whole chart on one backend; the two axis kinds are different plotters types.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart, layout: &Layout) -> Result<(), String> {
    if chart.log_y {
        draw_on(root, chart, layout, layout.y.clone().log_scale())
    } else {
        draw_on(root, chart, layout, layout.y.clone())
    }
}

fn draw_on<DB, Y>(root: &DrawingArea<DB, Shift>, chart: &Chart, layout: &Layout, y: Y) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(layout.x.clone(), y)
        .map_err(err)?;
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 14))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;

    for (i, (series, runs)) in chart.series.iter().zip(&layout.runs).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let style = color.stroke_width(2);
        // Lines carry the legend entry, drawn even when empty so every series is listed.
        let mut lines = runs.iter().filter(|r| r.len() > 1).peekable();
        let first: Vec<(f64, f64)> = lines.peek().map_or_else(Vec::new, |r| r.to_vec());
        let labelled = ctx.draw_series(LineSeries::new(first, style)).map_err(err)?;
        if !series.label.is_empty() {
            labelled
                .label(&series.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        }
        for run in lines.skip(1) {
            ctx.draw_series(LineSeries::new(run.iter().copied(), style)).map_err(err)?;
        }
        // A lone point between gaps (or a one-point series) has no line, so mark it.
        let lone = runs.iter().filter(|r| r.len() == 1).map(|r| Circle::new(r[0], 3, color.filled()));
        ctx.draw_series(lone).map_err(err)?;
    }

    if chart.series.iter().any(|s| !s.label.is_empty()) {
        ctx.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// A tick label short enough for the axis: plain decimals in the everyday range, scientific
/// notation for the very large and very small (learning rates, losses near zero).
fn tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    } else {
        // Enough decimals for neighbouring ticks to differ, then trailing zeros trimmed.
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
