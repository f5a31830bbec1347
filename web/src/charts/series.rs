//! A chart's data: history from a query merged with samples from a subscription.

use shared::metric::Point;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
    pub step_seconds: i64,
}

impl Series {
    pub fn new(name: impl Into<String>, step_seconds: i64) -> Self {
        Self { name: name.into(), points: Vec::new(), step_seconds }
    }
}

/// The most points a live series keeps (an hour of 1-second samples).
pub const LIVE_CAP: usize = 3600;

/// History and the live samples buffered while it loaded, as one series sorted by time: the
/// history up to its last point, then the samples after it.
pub fn merge(history: &[Point], live: &[Point]) -> Vec<Point> {
    let last = history.last().map_or(i64::MIN, |p| p.at_ms);
    let mut out: Vec<Point> = history.to_vec();
    out.extend(live.iter().filter(|p| p.at_ms > last).copied());
    crate::collect::sort(&mut out, &|a, b| a.at_ms.cmp(&b.at_ms));
    out.dedup_by_key(|p| p.at_ms);
    out
}

/// Adds a live sample: in order, never twice, the oldest dropped past `LIVE_CAP` or before
/// `from_ms`.
pub fn push(points: &mut Vec<Point>, sample: Point, from_ms: i64) {
    match points.last() {
        Some(last) if last.at_ms >= sample.at_ms => {
            if let Err(i) = points.binary_search_by_key(&sample.at_ms, |p| p.at_ms) {
                points.insert(i, sample);
            }
        }
        _ => points.push(sample),
    }
    let stale = points.iter().take_while(|p| p.at_ms < from_ms).count().max(points.len().saturating_sub(LIVE_CAP));
    points.drain(..stale);
}

/// The point nearest a time, if any lies within `within_ms`.
pub fn nearest(points: &[Point], at_ms: i64, within_ms: i64) -> Option<Point> {
    let i = points.partition_point(|p| p.at_ms < at_ms);
    let candidates = [i.checked_sub(1), Some(i)];
    candidates
        .into_iter()
        .flatten()
        .filter_map(|i| points.get(i))
        .min_by_key(|p| (p.at_ms - at_ms).abs())
        .filter(|p| (p.at_ms - at_ms).abs() <= within_ms)
        .copied()
}

/// The series as CSV: one row a point, with the bucket's extremes where it has them.
pub fn csv(series: &[Series], iso: impl Fn(i64) -> String) -> String {
    let mut out = String::from("series,time,value,min,max\n");
    for s in series {
        let mut name = s.name.replace(['"', ',', '\n', '\r'], " ");
        // A spreadsheet runs a cell that starts like a formula: never let a name do so.
        if name.starts_with(['=', '+', '-', '@', '\t']) {
            name.insert(0, '\'');
        }
        for p in &s.points {
            let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
            out.push_str(&format!("{name},{},{},{},{}\n", iso(p.at_ms), p.value, opt(p.min), opt(p.max)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(points: &[Point]) -> Vec<i64> {
        points.iter().map(|p| p.at_ms).collect()
    }

    #[test]
    fn live_samples_continue_the_history() {
        let history = [Point::sample(0, 1.0), Point::sample(10_000, 2.0), Point::sample(20_000, 3.0)];
        // Samples buffered while the query ran: some the history already holds.
        let live = [Point::sample(19_000, 9.0), Point::sample(20_000, 9.0), Point::sample(21_000, 4.0)];
        let merged = merge(&history, &live);
        assert_eq!(at(&merged), [0, 10_000, 20_000, 21_000]);
        assert_eq!(merged[2].value, 3.0, "the history wins where both have a point");
        assert_eq!(at(&merge(&[], &live)), [19_000, 20_000, 21_000]);
        assert!(merge(&[], &[]).is_empty());
    }

    #[test]
    fn pushing_keeps_order_and_a_window() {
        let mut points = vec![Point::sample(1_000, 1.0), Point::sample(3_000, 1.0)];
        push(&mut points, Point::sample(2_000, 1.0), 0);
        push(&mut points, Point::sample(3_000, 1.0), 0);
        push(&mut points, Point::sample(4_000, 1.0), 2_000);
        assert_eq!(at(&points), [2_000, 3_000, 4_000]);
        let mut many: Vec<Point> = Vec::new();
        for i in 0..(LIVE_CAP as i64 + 10) {
            push(&mut many, Point::sample(i, 0.0), 0);
        }
        assert_eq!(many.len(), LIVE_CAP);
        assert_eq!(many[0].at_ms, 10);
    }

    #[test]
    fn the_pointer_finds_the_nearest_point() {
        let points = [Point::sample(0, 1.0), Point::sample(10_000, 2.0)];
        assert_eq!(nearest(&points, 4_000, 5_000).map(|p| p.value), Some(1.0));
        assert_eq!(nearest(&points, 6_000, 5_000).map(|p| p.value), Some(2.0));
        assert_eq!(nearest(&points, 30_000, 5_000), None);
        assert_eq!(nearest(&[], 0, 5_000), None);
    }

    #[test]
    fn csv_has_a_row_a_point() {
        let s = Series {
            name: "cpu, all".into(),
            points: vec![Point::sample(0, 1.5), Point { at_ms: 60_000, value: 2.0, min: Some(1.0), max: Some(3.0) }],
            step_seconds: 60,
        };
        let text = csv(&[s], |ms| format!("T{ms}"));
        assert_eq!(text, "series,time,value,min,max\ncpu  all,T0,1.5,,\ncpu  all,T60000,2,1,3\n");
        let formula = Series { name: "=HYPERLINK(1)".into(), points: vec![Point::sample(0, 1.0)], step_seconds: 1 };
        assert!(csv(&[formula], |_| "T".into()).contains("\n'=HYPERLINK(1),T,1,,\n"));
    }
}
