//! Renders a metric's history with plotters, to SVG or PNG: the average as a line, the minimum
//! to maximum of each bucket as a band (so peaks show), and gaps left open. Text uses DejaVu Sans
//! built into the binary, so a PNG looks the same on a host without fonts.

use std::sync::Once;

use chrono::{DateTime, Duration, Utc};
use plotters::{coord::Shift, prelude::*, style::FontStyle};
use shared::Metric;

use super::history::{Point, Series};

/// The picture format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartFormat {
    Svg,
    Png,
}

impl ChartFormat {
    pub fn from_extension(ext: &str) -> Option<Self> {
        [Self::Svg, Self::Png].into_iter().find(|f| f.extension() == ext)
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Svg => "svg",
            Self::Png => "png",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Svg => "image/svg+xml",
            Self::Png => "image/png",
        }
    }
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct ChartSpec {
    pub title: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
}

/// Picture sizes accepted, in pixels.
pub const WIDTHS: std::ops::RangeInclusive<u32> = 200..=4000;
pub const HEIGHTS: std::ops::RangeInclusive<u32> = 100..=3000;

const FONT: &str = "sans-serif";
const LINE: RGBColor = RGBColor(0x1f, 0x6f, 0xeb);
const BAND: RGBColor = RGBColor(0xb6, 0xd0, 0xf7);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err() {
            tracing::error!("the built-in chart font could not be loaded");
        }
    });
}

/// The chart as SVG text or PNG bytes.
pub fn render(series: &Series, spec: &ChartSpec, format: ChartFormat) -> Result<Vec<u8>, String> {
    register_font();
    let size = (spec.width, spec.height);
    match format {
        ChartFormat::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                draw(&root, series, spec).map_err(|e| e.to_string())?;
                root.present().map_err(|e| e.to_string())?;
            }
            Ok(svg.into_bytes())
        }
        ChartFormat::Png => {
            let mut rgb = vec![0u8; spec.width as usize * spec.height as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                draw(&root, series, spec).map_err(|e| e.to_string())?;
                root.present().map_err(|e| e.to_string())?;
            }
            encode_png(&rgb, spec.width, spec.height).map_err(|e| e.to_string())
        }
    }
}

/// The path of a chart: `/charts/host/cpu.percent.png` or `/charts/server/7/memory.used_bytes.svg`.
pub fn path(target: super::Target, metric: &str, format: ChartFormat) -> String {
    let ext = format.extension();
    match target {
        super::Target::Host => format!("/charts/host/{metric}.{ext}"),
        super::Target::Server(id) => format!("/charts/server/{id}/{metric}.{ext}"),
    }
}

/// The text a signed chart link signs: the path, the range, the size and the expiry.
pub fn link_text(path: &str, spec: &ChartSpec, expires: i64) -> String {
    format!(
        "{path}|{}|{}|{}|{}|{expires}",
        spec.from.timestamp_millis(),
        spec.to.timestamp_millis(),
        spec.width,
        spec.height
    )
}

/// A link to a chart that works without a token until `expires` (Unix seconds): for alert
/// webhooks, whose targets fetch the image themselves.
pub fn signed_link(keys: &crate::auth::TokenKeys, base: &str, path: &str, spec: &ChartSpec, expires: i64) -> String {
    let sig = keys.sign_link(&link_text(path, spec, expires));
    format!(
        "{}{path}?from={}&to={}&width={}&height={}&exp={expires}&sig={sig}",
        base.trim_end_matches('/'),
        spec.from.timestamp_millis(),
        spec.to.timestamp_millis(),
        spec.width,
        spec.height,
    )
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(rgb)?;
    }
    Ok(out)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, series: &Series, spec: &ChartSpec) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let metric = series.metric;
    let (low, high) = y_range(metric, &series.points);
    let small = (spec.height / 30).clamp(10, 16);
    let mut chart = ChartBuilder::on(root)
        .caption(&spec.title, (FONT, small + 4))
        .margin(8)
        .x_label_area_size(small * 2)
        .y_label_area_size(small * 5)
        .build_cartesian_2d(spec.from..spec.to, low..high)?;
    let span = spec.to - spec.from;
    let time_format = if span <= Duration::minutes(15) {
        "%H:%M:%S"
    } else if span <= Duration::days(2) {
        "%H:%M"
    } else {
        "%m-%d"
    };
    chart
        .configure_mesh()
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .x_labels((spec.width / 120).max(2) as usize)
        .y_labels((spec.height / 50).max(2) as usize)
        .x_label_formatter(&|t: &DateTime<Utc>| t.format(time_format).to_string())
        .y_label_formatter(&|v: &f64| label(metric, *v))
        .label_style((FONT, small))
        .draw()?;
    let step = series.step_seconds;
    for segment in segments(&series.points, step) {
        if segment.iter().any(|p| p.min.is_some()) {
            let upper = segment.iter().map(|p| (at(p), p.max.unwrap_or(p.value)));
            let lower = segment.iter().rev().map(|p| (at(p), p.min.unwrap_or(p.value)));
            chart.draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), BAND.filled())))?;
        }
        if let [only] = segment {
            chart.draw_series(std::iter::once(Circle::new((at(only), only.value), 2, LINE.filled())))?;
        } else {
            chart.draw_series(LineSeries::new(segment.iter().map(|p| (at(p), p.value)), LINE.stroke_width(2)))?;
        }
    }
    Ok(())
}

fn at(p: &Point) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(p.at_ms).unwrap_or_default()
}

/// Runs of points without a gap between neighbours.
fn segments(points: &[Point], step_seconds: i64) -> Vec<&[Point]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || shared::metric::is_gap(points[i - 1].at_ms, points[i].at_ms, step_seconds) {
            if i > start {
                out.push(&points[start..i]);
            }
            start = i;
        }
    }
    out
}

/// Percentages from 0 to 100 (or more for a server's CPU), others from 0 to a little above the
/// highest value.
fn y_range(metric: Metric, points: &[Point]) -> (f64, f64) {
    let top = points.iter().map(|p| p.max.unwrap_or(p.value)).fold(0.0_f64, f64::max);
    let floor = points.iter().map(|p| p.min.unwrap_or(p.value)).fold(0.0_f64, f64::min);
    match metric.unit() {
        "%" => (floor.min(0.0), top.max(100.0)),
        _ => (floor, if top > 0.0 { top * 1.1 } else { 1.0 }),
    }
}

fn label(metric: Metric, v: f64) -> String {
    match metric.unit() {
        "%" => format!("{v:.0}%"),
        "bytes" => bytes(v),
        "bytes/s" => format!("{}/s", bytes(v)),
        _ => format!("{v:.2}"),
    }
}

fn bytes(v: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = v;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(at_ms: i64, value: f64) -> Point {
        Point { at_ms, value, min: None, max: None }
    }

    #[test]
    fn gaps_split_the_line() {
        let points = [p(0, 1.0), p(2_000, 1.0), p(60_000, 1.0), p(62_000, 1.0), p(64_000, 1.0)];
        let runs: Vec<usize> = segments(&points, 2).iter().map(|s| s.len()).collect();
        assert_eq!(runs, [2, 3]);
        assert!(segments(&[], 2).is_empty());
    }

    #[test]
    fn labels_read_like_units() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(3.5 * 1024.0 * 1024.0 * 1024.0), "3.5 GiB");
        assert_eq!(label(Metric::CpuPercent, 42.0), "42%");
        assert_eq!(label(Metric::NetRxBytesPerS, 2048.0), "2.0 KiB/s");
    }
}
