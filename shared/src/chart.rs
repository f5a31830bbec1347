//! Draws metric charts with plotters, on any backend: the hub renders them to SVG and PNG (alert
//! webhooks, `/charts`), the web app to a `<canvas>`. Each line is the bucket averages, with the
//! minimum to maximum of rollup buckets as a band (so peaks show) and gaps left open.
//!
//! Times are Unix milliseconds; the caller formats them (the hub in UTC, the browser in the
//! viewer's local time), so this crate needs no time library.

use plotters::{coord::Shift, prelude::*};

use crate::metric::{Point, format_value, segments};

/// A colour, as plotters takes it.
pub type Colour = RGBColor;

/// Colours of a chart's frame, for light and dark pages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Theme {
    pub background: Colour,
    pub grid: Colour,
    pub axis: Colour,
    pub text: Colour,
}

impl Theme {
    pub const LIGHT: Theme = Theme {
        background: RGBColor(0xff, 0xff, 0xff),
        grid: RGBColor(0xee, 0xee, 0xee),
        axis: RGBColor(0x88, 0x88, 0x88),
        text: RGBColor(0x33, 0x33, 0x33),
    };
    pub const DARK: Theme = Theme {
        background: RGBColor(0x16, 0x1b, 0x22),
        grid: RGBColor(0x2a, 0x31, 0x3c),
        axis: RGBColor(0x6e, 0x76, 0x81),
        text: RGBColor(0xc9, 0xd1, 0xd9),
    };
}

/// The colours of lines, in the order a chart gives them out.
pub const PALETTE: [Colour; 4] =
    [RGBColor(0x1f, 0x6f, 0xeb), RGBColor(0xe3, 0x6c, 0x09), RGBColor(0x2d, 0xa4, 0x4e), RGBColor(0xa3, 0x71, 0xf7)];

/// One series of a chart.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub name: &'a str,
    pub colour: Colour,
    /// Sorted by time.
    pub points: &'a [Point],
    /// The width of a point's bucket: neighbours more than two steps apart leave a gap.
    pub step_seconds: i64,
}

/// What to draw.
pub struct Chart<'a> {
    /// Empty for none.
    pub title: &'a str,
    pub from_ms: i64,
    pub to_ms: i64,
    /// `%`, `bytes`, `bytes/s` or empty (see `Metric::unit`).
    pub unit: &'a str,
    pub lines: &'a [Line<'a>],
    pub theme: Theme,
    /// A font family the backend knows ("sans-serif" on a canvas; the hub registers one).
    pub font: &'a str,
    /// Text height in backend pixels (scale it with the device pixel ratio).
    pub text_px: u32,
    /// The label of a time on the x axis, given the span of the chart (both in milliseconds).
    pub time_label: &'a dyn Fn(i64, i64) -> String,
    /// A sparkline: no title, axes, labels or grid.
    pub bare: bool,
}

/// Where the plot landed in backend pixels, so that a pointer can be mapped back to a time and
/// a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub left: i32,
    pub right: i32,
    pub top: i32,
    pub bottom: i32,
    pub from_ms: i64,
    pub to_ms: i64,
    pub low: f64,
    pub high: f64,
}

impl Frame {
    /// The time under a backend x coordinate, or None outside the plot.
    pub fn time_at(&self, x: i32) -> Option<i64> {
        if x < self.left || x > self.right || self.right <= self.left {
            return None;
        }
        let share = f64::from(x - self.left) / f64::from(self.right - self.left);
        Some(self.from_ms + (share * (self.to_ms - self.from_ms) as f64).round() as i64)
    }

    /// The backend x coordinate of a time.
    pub fn x_of(&self, at_ms: i64) -> i32 {
        let span = (self.to_ms - self.from_ms).max(1) as f64;
        self.left + (((at_ms - self.from_ms) as f64 / span) * f64::from(self.right - self.left)).round() as i32
    }

    /// The backend y coordinate of a value.
    pub fn y_of(&self, value: f64) -> i32 {
        let span = if self.high > self.low { self.high - self.low } else { 1.0 };
        self.bottom - (((value - self.low) / span) * f64::from(self.bottom - self.top)).round() as i32
    }
}

pub type DrawResult<T, DB> = Result<T, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Draws the chart on the whole area.
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart<'_>) -> DrawResult<Frame, DB> {
    let theme = chart.theme;
    root.fill(&theme.background)?;
    let (low, high) = y_range(chart.unit, chart.lines);
    let text = chart.text_px.max(8);
    let (from, to) = (chart.from_ms, chart.to_ms.max(chart.from_ms + 1));
    let mut builder = ChartBuilder::on(root);
    if chart.bare {
        builder.margin(2);
    } else {
        builder.margin(text / 2 + 2).x_label_area_size(text * 2).y_label_area_size(text * 5);
        if !chart.title.is_empty() {
            builder.caption(chart.title, (chart.font, text + 4).into_font().color(&theme.text));
        }
    }
    let (width, height) = root.dim_in_pixel();
    let ticks = time_ticks(from, to, (width / (text * 9).max(1)).max(2) as usize);
    let mut ctx = builder.build_cartesian_2d((from..to).with_key_points(ticks), low..high)?;
    if !chart.bare {
        let span = to - from;
        let unit = chart.unit;
        ctx.configure_mesh()
            .bold_line_style(theme.grid)
            .light_line_style(theme.grid.mix(0.4))
            .axis_style(theme.axis)
            .y_labels((height / (text * 4).max(1)).max(2) as usize)
            .x_label_formatter(&|t: &i64| (chart.time_label)(*t, span))
            .y_label_formatter(&|v: &f64| format_value(unit, *v))
            .label_style((chart.font, text).into_font().color(&theme.text))
            .draw()?;
    }
    for line in chart.lines {
        let colour = line.colour;
        for segment in segments(line.points, line.step_seconds) {
            if segment.iter().any(|p| p.min.is_some() || p.max.is_some()) {
                let upper = segment.iter().map(|p| (p.at_ms, p.max.unwrap_or(p.value)));
                let lower = segment.iter().rev().map(|p| (p.at_ms, p.min.unwrap_or(p.value)));
                let band: Vec<(i64, f64)> = upper.chain(lower).collect();
                ctx.draw_series(std::iter::once(Polygon::new(band, colour.mix(0.25).filled())))?;
            }
            if let [only] = segment {
                ctx.draw_series(std::iter::once(Circle::new((only.at_ms, only.value), 2, colour.filled())))?;
            } else {
                let stroke = (text / 6).max(2);
                ctx.draw_series(LineSeries::new(
                    segment.iter().map(|p| (p.at_ms, p.value)),
                    colour.stroke_width(stroke),
                ))?;
            }
        }
    }
    let (x, y) = ctx.plotting_area().get_pixel_range();
    Ok(Frame { left: x.start, right: x.end, top: y.start, bottom: y.end, from_ms: from, to_ms: to, low, high })
}

/// Round times for the x axis: the finest of the usual steps (1 s … 7 days) that puts at most
/// `most` labels on the range.
pub fn time_ticks(from_ms: i64, to_ms: i64, most: usize) -> Vec<i64> {
    const SECOND: i64 = 1000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    const STEPS: [i64; 21] = [
        SECOND,
        2 * SECOND,
        5 * SECOND,
        10 * SECOND,
        15 * SECOND,
        30 * SECOND,
        MINUTE,
        2 * MINUTE,
        5 * MINUTE,
        10 * MINUTE,
        15 * MINUTE,
        30 * MINUTE,
        HOUR,
        2 * HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        2 * DAY,
        7 * DAY,
        30 * DAY,
    ];
    let span = (to_ms - from_ms).max(1);
    let most = most.max(1) as i64;
    let step = STEPS.into_iter().find(|s| span / s <= most).unwrap_or(span);
    let first = from_ms.div_euclid(step) * step + if from_ms.rem_euclid(step) == 0 { 0 } else { step };
    (0..).map(|i| first + i * step).take_while(|t| *t <= to_ms).take(most as usize + 1).collect()
}

/// Percentages from 0 to 100 (or more for a server's CPU), others from 0 to a little above the
/// highest value.
pub fn y_range(unit: &str, lines: &[Line<'_>]) -> (f64, f64) {
    let points = || lines.iter().flat_map(|l| l.points.iter());
    let top = points().map(|p| p.max.unwrap_or(p.value)).fold(0.0_f64, f64::max);
    let floor = points().map(|p| p.min.unwrap_or(p.value)).fold(0.0_f64, f64::min);
    match unit {
        "%" => (floor.min(0.0), top.max(100.0)),
        _ => (floor, if top > 0.0 { top * 1.1 } else { 1.0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(t: i64, _span: i64) -> String {
        format!("t{}", t / 1000)
    }

    fn svg(lines: &[Line<'_>]) -> (String, Frame) {
        // Text needs a font: the hub registers this one; a canvas uses the browser's.
        let _ =
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, dejavu::sans::regular());
        let mut out = String::new();
        let frame = {
            let root = SVGBackend::with_string(&mut out, (600, 300)).into_drawing_area();
            let chart = Chart {
                title: "CPU",
                from_ms: 0,
                to_ms: 120_000,
                unit: "%",
                lines,
                theme: Theme::LIGHT,
                font: "sans-serif",
                text_px: 12,
                time_label: &label,
                bare: false,
            };
            let frame = draw(&root, &chart).unwrap();
            root.present().unwrap();
            frame
        };
        (out, frame)
    }

    #[test]
    fn each_run_of_points_is_a_polyline_and_bands_show_rollups() {
        let raw = [
            Point::sample(0, 10.0),
            Point::sample(2_000, 20.0),
            Point::sample(60_000, 30.0),
            Point::sample(62_000, 40.0),
        ];
        let rolled = [
            Point { at_ms: 0, value: 50.0, min: Some(40.0), max: Some(70.0) },
            Point { at_ms: 60_000, value: 55.0, min: Some(45.0), max: Some(75.0) },
        ];
        let lines = [
            Line { name: "raw", colour: PALETTE[0], points: &raw, step_seconds: 2 },
            Line { name: "rolled", colour: PALETTE[1], points: &rolled, step_seconds: 60 },
        ];
        let (svg, frame) = svg(&lines);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let stroke = |c: Colour| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        let polylines: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("polyline")).collect();
        let of = |c| polylines.iter().filter(|n| n.attribute("stroke") == Some(stroke(c).as_str())).count();
        // The raw line breaks at its gap; the rolled one is one run (two steps of 60 s apart).
        assert_eq!(of(PALETTE[0]), 2, "{svg}");
        assert_eq!(of(PALETTE[1]), 1);
        let bands = doc.descendants().filter(|n| n.has_tag_name("polygon")).count();
        assert_eq!(bands, 1, "only the rollup has a band");
        let labels: Vec<&str> =
            doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(str::trim).collect();
        assert!(labels.iter().any(|l| l.starts_with('t')), "time labels come from the caller: {labels:?}");
        assert!(labels.contains(&"100%") && labels.contains(&"CPU"), "{labels:?}");
        assert!(frame.left < frame.right && frame.top < frame.bottom);
        assert_eq!(frame.time_at(frame.left), Some(0));
        assert_eq!(frame.time_at(frame.right), Some(120_000));
        assert_eq!(frame.time_at(frame.left - 1), None);
        assert_eq!(frame.x_of(60_000), (frame.left + frame.right) / 2);
        assert_eq!(frame.y_of(0.0), frame.bottom);
    }

    #[test]
    fn a_lone_point_is_a_dot_and_nothing_is_an_empty_frame() {
        let one = [Point::sample(30_000, 5.0)];
        let (dot, _) = svg(&[Line { name: "one", colour: PALETTE[2], points: &one, step_seconds: 2 }]);
        let doc = roxmltree::Document::parse(&dot).unwrap();
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("circle")).count(), 1);
        let (empty, _) = svg(&[]);
        assert!(roxmltree::Document::parse(&empty).is_ok());
    }

    #[test]
    fn time_ticks_fall_on_round_times() {
        let hour = 3_600_000;
        let ticks = time_ticks(10 * hour + 7 * 60_000, 11 * hour + 7 * 60_000, 5);
        assert_eq!(ticks.len(), 4, "{ticks:?}");
        assert!(ticks.iter().all(|t| t % (15 * 60_000) == 0), "quarter hours: {ticks:?}");
        let ticks = time_ticks(0, 30 * 86_400_000, 6);
        assert!(ticks.len() <= 6 && ticks.windows(2).all(|w| w[1] - w[0] == 7 * 86_400_000), "{ticks:?}");
        assert_eq!(time_ticks(5, 5, 3), vec![] as Vec<i64>);
        assert_eq!(time_ticks(0, 10_000, 100).len(), 11, "one a second at most");
    }

    #[test]
    fn bytes_scale_above_the_top_value() {
        let points = [Point::sample(0, 1000.0)];
        let line = [Line { name: "m", colour: PALETTE[0], points: &points, step_seconds: 1 }];
        assert_eq!(y_range("bytes", &line), (0.0, 1100.0));
        assert_eq!(y_range("%", &line), (0.0, 1000.0));
        assert_eq!(y_range("bytes", &[]), (0.0, 1.0));
    }
}
