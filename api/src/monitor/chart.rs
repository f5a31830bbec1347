//! Renders a metric's history to SVG or PNG with the drawing the web app uses too
//! (`shared::chart`): the average as a line, the minimum to maximum of each bucket as a band,
//! and gaps left open. Text uses DejaVu Sans
//! built into the binary, so a PNG looks the same on a host without fonts.

use std::sync::Once;

use chrono::{DateTime, Duration, Utc};
use plotters::{coord::Shift, prelude::*, style::FontStyle};
use shared::chart::{self, Chart, Line};

use super::history::Series;

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
                draw(&root, series, spec)?;
                root.present().map_err(|e| e.to_string())?;
            }
            Ok(svg.into_bytes())
        }
        ChartFormat::Png => {
            let mut rgb = vec![0u8; spec.width as usize * spec.height as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                draw(&root, series, spec)?;
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

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, series: &Series, spec: &ChartSpec) -> Result<(), String> {
    let span = spec.to - spec.from;
    let time_format = if span <= Duration::minutes(15) {
        "%H:%M:%S"
    } else if span <= Duration::days(2) {
        "%H:%M"
    } else {
        "%m-%d"
    };
    let label =
        |t: i64, _span: i64| DateTime::from_timestamp_millis(t).unwrap_or_default().format(time_format).to_string();
    let lines = [Line {
        name: series.metric.as_str(),
        colour: chart::PALETTE[0],
        points: &series.points,
        step_seconds: series.step_seconds,
    }];
    let chart = Chart {
        title: &spec.title,
        from_ms: spec.from.timestamp_millis(),
        to_ms: spec.to.timestamp_millis(),
        unit: series.metric.unit(),
        lines: &lines,
        theme: chart::Theme::LIGHT,
        font: FONT,
        text_px: (spec.height / 30).clamp(10, 16),
        time_label: &label,
        bare: false,
    };
    chart::draw(root, &chart).map(|_| ()).map_err(|e| e.to_string())
}
