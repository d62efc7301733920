//! Charts written as SVG and PNG: both files appear, the SVG carries every text, the PNG has the
//! promised size, and awkward data (gaps, log axes with non-positive values, a single point, flat
//! or empty series) still produces a chart.

use optic_runtime::plot::{write, Chart, Series, HEIGHT, WIDTH};
use std::path::{Path, PathBuf};

mod common;

use common::scratch;

fn series(label: &str, points: impl IntoIterator<Item = (f64, f64)>) -> Series {
    Series { label: label.into(), points: points.into_iter().collect() }
}

/// Three loss curves of a learning-rate sweep, as `optic run` would plot them.
fn sweep(log_y: bool) -> Chart {
    let curve = |lr: f64| (0..200).map(move |s| (s as f64, 2.0 * (-lr * s as f64).exp() + 0.01));
    Chart {
        title: "Loss by learning rate".into(),
        x_label: "step".into(),
        y_label: "training loss".into(),
        log_y,
        series: vec![series("η = 0.01", curve(0.01)), series("η = 0.03", curve(0.03)), series("η = 0.1", curve(0.1))],
    }
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

fn write_both(dir: &Path, name: &str, chart: &Chart) -> (String, PathBuf) {
    let (svg, png) = (dir.join(format!("{name}.svg")), dir.join(format!("{name}.png")));
    write(chart, &svg, &png).unwrap();
    assert_eq!(png_size(&png), (WIDTH, HEIGHT));
    (std::fs::read_to_string(&svg).unwrap(), png)
}

#[test]
fn a_sweep_chart_has_every_label_in_both_files() {
    let dir = scratch("sweep");
    for (name, log_y) in [("linear", false), ("log", true)] {
        let (svg, png) = write_both(&dir, name, &sweep(log_y));
        assert!(svg.starts_with("<svg"), "{name}");
        for text in ["Loss by learning rate", "step", "training loss", "η = 0.01", "η = 0.03", "η = 0.1"] {
            assert!(svg.contains(text), "{name}: the SVG lacks {text:?}");
        }
        // A PNG of text and three curves compresses to more than a blank page would.
        assert!(std::fs::metadata(&png).unwrap().len() > 10_000, "{name}");
    }
}

#[test]
fn unplottable_points_are_skipped_not_fatal() {
    let dir = scratch("awkward");
    let chart = Chart {
        title: "Diverged runs".into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        log_y: true,
        series: vec![
            series("nan in the middle", [(0.0, 1.0), (1.0, 0.5), (2.0, f64::NAN), (3.0, 0.2), (4.0, 0.1)]),
            series("non-positive", [(0.0, 0.0), (1.0, -1.0), (2.0, 0.3), (3.0, f64::INFINITY)]),
            series("nothing drawable", [(0.0, f64::NAN)]),
            series("", [(f64::NAN, 1.0), (2.0, 0.4), (3.0, 0.35)]),
        ],
    };
    let (svg, _) = write_both(&dir, "awkward", &chart);
    for text in ["nan in the middle", "non-positive", "nothing drawable"] {
        assert!(svg.contains(text), "the SVG lacks {text:?}");
    }
}

#[test]
fn degenerate_ranges_still_draw() {
    let dir = scratch("degenerate");
    let one_point = |log_y, y| Chart {
        title: "one point".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        log_y,
        series: vec![series("only", [(5.0, y)])],
    };
    write_both(&dir, "single-linear", &one_point(false, 3.0));
    write_both(&dir, "single-zero", &one_point(false, 0.0));
    write_both(&dir, "single-log", &one_point(true, 1e-4));
    let flat = Chart { series: vec![series("flat", (0..10).map(|i| (i as f64, 2.5)))], ..one_point(false, 0.0) };
    write_both(&dir, "flat", &flat);
    let empty = Chart { series: vec![], ..one_point(true, 0.0) };
    write_both(&dir, "empty", &empty);
}

#[test]
fn an_unwritable_path_is_an_error_naming_it() {
    let dir = scratch("unwritable");
    let svg = dir.join("missing-dir/chart.svg");
    let e = write(&sweep(false), &svg, &dir.join("chart.png")).unwrap_err();
    assert_eq!(e.path, svg);
    assert!(e.to_string().starts_with(&svg.display().to_string()));
}
