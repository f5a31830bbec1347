//! The host's and each server's charts over a chosen range: live, 1 h, 6 h, 24 h, 7 d, 30 d
//! or a custom one.

use leptos::prelude::*;
use shared::Permission;

use crate::{
    charts::{
        Chart, HOST_CHARTS,
        feed::{Source, Span, feed},
    },
    components::status::{ErrorNote, Require},
    pages::servers::live_servers,
    time,
};

/// A range the user picks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeChoice {
    Live,
    Hours(i64),
    Custom(i64, i64),
}

impl RangeChoice {
    pub fn span(self) -> Span {
        let now = time::now_ms() as i64;
        match self {
            Self::Live => Span::Live(15 * 60_000),
            Self::Hours(h) => Span::Fixed(now - h * 3_600_000, now),
            Self::Custom(from, to) => Span::Fixed(from, to),
        }
    }
}

const CHOICES: [(&str, RangeChoice); 6] = [
    ("Live", RangeChoice::Live),
    ("1 h", RangeChoice::Hours(1)),
    ("6 h", RangeChoice::Hours(6)),
    ("24 h", RangeChoice::Hours(24)),
    ("7 d", RangeChoice::Hours(24 * 7)),
    ("30 d", RangeChoice::Hours(24 * 30)),
];

/// Buttons for the ranges, and a from/to form for a custom one.
#[component]
pub fn RangePicker(choice: RwSignal<RangeChoice>) -> impl IntoView {
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let custom_error = RwSignal::new(None::<String>);
    let apply = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let parse = |s: String| {
            let ms = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(&s)).get_time();
            ms.is_finite().then_some(ms as i64)
        };
        match (parse(from.get_untracked()), parse(to.get_untracked())) {
            (Some(f), Some(t)) if f < t => {
                custom_error.set(None);
                choice.set(RangeChoice::Custom(f, t));
            }
            _ => custom_error.set(Some("Pick a start before the end.".into())),
        }
    };
    view! {
        <div class="ranges" role="group" aria-label="Time range">
            {CHOICES.into_iter().map(|(label, c)| view! {
                <button type="button" class="small" aria-pressed=move || (choice.get() == c).to_string() on:click=move |_| choice.set(c)>{label}</button>
            }).collect_view()}
            <form class="custom-range" on:submit=apply>
                <label>"From " <input type="datetime-local" prop:value=move || from.get() on:input=move |e| from.set(event_target_value(&e)) /></label>
                <label>"to " <input type="datetime-local" prop:value=move || to.get() on:input=move |e| to.set(event_target_value(&e)) /></label>
                <button type="submit" class="small">"Show"</button>
                {move || custom_error.get().map(|e| view! { <span class="field-error" role="alert">{e}</span> })}
            </form>
        </div>
    }
}

#[component]
pub fn Resources() -> impl IntoView {
    view! {
        <Require permission=Permission::MetricsRead>
            <ResourcesPage />
        </Require>
    }
}

#[component]
fn ResourcesPage() -> impl IntoView {
    let choice = RwSignal::new(RangeChoice::Live);
    let servers = live_servers();
    let server = RwSignal::new(String::new());
    view! {
        <h1>"Resources"</h1>
        <RangePicker choice=choice />
        <h2>"Host"</h2>
        {move || {
            let feed = feed(Source::Host, &["cpu.percent", "memory.used_bytes", "disk.used_bytes", "net.rx_bytes_per_s", "net.tx_bytes_per_s", "load.1"], choice.get().span());
            view! {
                <ErrorNote error=feed.error />
                <div class="chart-grid">
                    {HOST_CHARTS.iter().map(|c| view! { <Chart title=c.title unit=c.unit series=feed.pick(c.metrics) range=feed.range /> }).collect_view()}
                    <Chart title="Load (1 min)" unit="" series=feed.pick(&[("load.1", "load")]) range=feed.range />
                </div>
            }
        }}
        <h2>"A server"</h2>
        <label>
            "Server "
            <select on:change=move |e| server.set(event_target_value(&e))>
                <option value="">"Choose a server"</option>
                {move || servers.rows.get().unwrap_or_default().into_iter().map(|r| {
                    let id = r.id.to_string();
                    let selected = { let id = id.clone(); move || server.get() == id };
                    view! { <option value=id selected=selected>{r.name.clone()}</option> }
                }).collect_view()}
            </select>
        </label>
        {move || {
            let id = server.get().parse::<i64>().ok()?;
            let feed = feed(Source::Server(id), &["cpu.percent", "memory.used_bytes"], choice.get().span());
            Some(view! {
                <ErrorNote error=feed.error />
                <div class="chart-grid">
                    <Chart title="Server CPU" unit="%" series=feed.pick(&[("cpu.percent", "CPU")]) range=feed.range />
                    <Chart title="Server memory" unit="bytes" series=feed.pick(&[("memory.used_bytes", "memory")]) range=feed.range />
                </div>
            })
        }}
    }
}
