//! Time in the browser: the clock, RFC 3339 text from the hub, and labels in the viewer's
//! local time.

/// Unix milliseconds now, by this browser's clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Unix milliseconds of an RFC 3339 time from the hub (None when it does not parse).
pub fn parse_ms(text: &str) -> Option<i64> {
    let ms = js_sys::Date::parse(text);
    ms.is_finite().then_some(ms as i64)
}

/// A time in local time: `14:03:07` within a quarter hour's span, `14:03` within two days,
/// `11-28 14:03` beyond.
pub fn label(at_ms: i64, span_ms: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms as f64));
    let (h, m, s) = (d.get_hours(), d.get_minutes(), d.get_seconds());
    if span_ms <= 15 * 60_000 {
        format!("{h:02}:{m:02}:{s:02}")
    } else if span_ms <= 2 * 86_400_000 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{:02}-{:02} {h:02}:{m:02}", d.get_month() + 1, d.get_date())
    }
}

/// A date and time in local time, to the second.
pub fn moment(at_ms: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms as f64));
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    )
}

/// An RFC 3339 time from the hub as a local moment, or the text itself when it does not parse.
pub fn show(text: &str) -> String {
    parse_ms(text).map(moment).unwrap_or_else(|| text.to_owned())
}

/// RFC 3339 (UTC) of Unix milliseconds, for the API's time ranges.
pub fn rfc3339(at_ms: f64) -> String {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms)).to_iso_string().into()
}
