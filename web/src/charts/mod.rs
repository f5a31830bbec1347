//! The one chart component: `shared::chart` drawn on a `<canvas>` through plotters-canvas,
//! sized for the device pixel ratio, redrawn in place when data, range, theme or size change,
//! with a tooltip under the pointer, a legend that hides series, and PNG and CSV downloads.

pub mod feed;
pub mod series;

use std::collections::BTreeSet;

use leptos::{html, prelude::*};
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use shared::chart::{self, Chart as Spec, Frame, Line, PALETTE, Theme};

pub use series::Series;

use crate::{app::ctx, download, time};

/// A chart of one or more series over `range` (Unix ms).
#[component]
pub fn Chart(
    #[prop(into)] title: String,
    /// `%`, `bytes`, `bytes/s` or empty.
    unit: &'static str,
    #[prop(into)] series: Signal<Vec<Series>>,
    #[prop(into)] range: Signal<(i64, i64)>,
    /// CSS pixels.
    #[prop(default = 220)]
    height: u32,
    /// A sparkline: no axes, legend, tooltip or downloads.
    #[prop(default = false)]
    bare: bool,
) -> impl IntoView {
    let ctx = ctx();
    let canvas = NodeRef::<html::Canvas>::new();
    let hidden = RwSignal::new(BTreeSet::<String>::new());
    let frame = StoredValue::new(None::<(Frame, f64)>);
    let hover = RwSignal::new(None::<(f64, f64, String)>);
    let label = title.clone();

    Effect::new(move |_| {
        let all = series.get();
        let (from, to) = range.get();
        let dark = ctx.dark();
        let _ = ctx.resized.get();
        let hidden = hidden.get();
        let Some(el) = canvas.get() else { return };
        let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio()).max(1.0);
        let css_width = f64::from(el.client_width().max(100));
        el.set_width((css_width * dpr) as u32);
        el.set_height((f64::from(height) * dpr) as u32);
        let Some(backend) = CanvasBackend::with_canvas_object(el.clone()) else { return };
        let root = backend.into_drawing_area();
        let lines: Vec<Line<'_>> = all
            .iter()
            .enumerate()
            .filter(|(_, s)| !hidden.contains(&s.name))
            .map(|(i, s)| Line {
                name: &s.name,
                colour: PALETTE[i % PALETTE.len()],
                points: &s.points,
                step_seconds: s.step_seconds,
            })
            .collect();
        let spec = Spec {
            title: "",
            from_ms: from,
            to_ms: to,
            unit,
            lines: &lines,
            theme: if dark { Theme::DARK } else { Theme::LIGHT },
            font: "sans-serif",
            text_px: (12.0 * dpr) as u32,
            time_label: &time::label,
            bare,
        };
        if let Ok(f) = chart::draw(&root, &spec) {
            frame.set_value(Some((f, dpr)));
        }
        let _ = root.present();
    });

    let on_move = move |e: web_sys::MouseEvent| {
        if bare {
            return;
        }
        let Some((f, dpr)) = frame.get_value() else { return };
        let x = f64::from(e.offset_x());
        let Some(at) = f.time_at((x * dpr) as i32) else {
            hover.set(None);
            return;
        };
        let hidden = hidden.get_untracked();
        let (from, to) = range.get_untracked();
        let within = ((to - from) / 50).max(2_000);
        let rows: Vec<String> = series.with_untracked(|all| {
            all.iter()
                .filter(|s| !hidden.contains(&s.name))
                .filter_map(|s| {
                    let p = series::nearest(&s.points, at, within.max(s.step_seconds * 1000))?;
                    let mut row = format!("{}: {}", s.name, shared::metric::format_value(unit, p.value));
                    if let (Some(lo), Some(hi)) = (p.min, p.max) {
                        row.push_str(&format!(
                            " ({} – {})",
                            shared::metric::format_value(unit, lo),
                            shared::metric::format_value(unit, hi)
                        ));
                    }
                    Some(format!("{row} at {}", time::moment(p.at_ms)))
                })
                .collect()
        });
        if rows.is_empty() {
            hover.set(None);
        } else {
            hover.set(Some((x, f64::from(e.offset_y()), rows.join("\n"))));
        }
    };

    let download_png = {
        let title = title.clone();
        move |_| {
            if let Some(el) = canvas.get_untracked()
                && let Ok(url) = el.to_data_url()
            {
                download::save_url(&url, &format!("{}.png", file_name(&title)));
            }
        }
    };
    let download_csv = {
        let title = title.clone();
        move |_| {
            let text = series.with_untracked(|all| series::csv(all, |ms| time::rfc3339(ms as f64)));
            download::save_text(&text, &format!("{}.csv", file_name(&title)), "text/csv");
        }
    };

    let legend = move || {
        series
            .get()
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let name = s.name.clone();
                let c = PALETTE[i % PALETTE.len()];
                let swatch = format!("background:rgb({},{},{})", c.0, c.1, c.2);
                let off = {
                    let name = name.clone();
                    move || hidden.with(|h| h.contains(&name))
                };
                let toggle = {
                    let name = name.clone();
                    move |_| {
                        hidden.update(|h| {
                            if !h.remove(&name) {
                                h.insert(name.clone());
                            }
                        })
                    }
                };
                view! {
                    <button
                        type="button"
                        class="legend-item"
                        class:off=off.clone()
                        aria-pressed=move || (!off()).to_string()
                        title="Show or hide this series"
                        on:click=toggle
                    >
                        <span class="swatch" style=swatch></span>
                        {name}
                    </button>
                }
            })
            .collect_view()
    };

    view! {
        <figure class="chart" class:bare=bare>
            <Show when=move || !bare>
                <figcaption>
                    <span class="chart-title">{label.clone()}</span>
                    <span class="legend">{legend}</span>
                    <span class="chart-tools">
                        <button type="button" class="small" on:click=download_png.clone()>"PNG"</button>
                        <button type="button" class="small" on:click=download_csv.clone()>"CSV"</button>
                    </span>
                </figcaption>
            </Show>
            <div class="chart-area">
                <canvas
                    node_ref=canvas
                    style=format!("height:{height}px")
                    role="img"
                    aria-label=title.clone()
                    on:mousemove=on_move
                    on:mouseleave=move |_| hover.set(None)
                ></canvas>
                {move || {
                    hover
                        .get()
                        .map(|(x, y, text)| {
                            view! {
                                <div class="tooltip" role="status" style=format!("left:{}px;top:{}px", x + 12.0, y + 12.0)>
                                    {text}
                                </div>
                            }
                        })
                }}
            </div>
        </figure>
    }
}

fn file_name(title: &str) -> String {
    let name: String =
        title.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    if name.trim_matches('-').is_empty() { "chart".into() } else { name }
}

/// Host metrics in the app: the names, units and titles of each chart.
pub struct MetricChart {
    pub title: &'static str,
    pub unit: &'static str,
    pub metrics: &'static [(&'static str, &'static str)],
}

/// The host's charts: CPU, memory, disk, network.
pub const HOST_CHARTS: [MetricChart; 4] = [
    MetricChart { title: "CPU", unit: "%", metrics: &[("cpu.percent", "CPU")] },
    MetricChart { title: "Memory", unit: "bytes", metrics: &[("memory.used_bytes", "used")] },
    MetricChart { title: "Disk", unit: "bytes", metrics: &[("disk.used_bytes", "used")] },
    MetricChart {
        title: "Network",
        unit: "bytes/s",
        metrics: &[("net.rx_bytes_per_s", "received"), ("net.tx_bytes_per_s", "sent")],
    },
];
