//! The dashboard: firing alerts on top, the host's live charts, every visible server as a card
//! with its live state, sparklines and start/stop; and the alerts page it links to.

use leptos::prelude::*;
use leptos_router::components::A;
use shared::Permission;

use crate::{
    api::{
        self, ApiError,
        ops::{AlertEvents, FiringAlerts, alert_events, firing_alerts},
    },
    app::ctx,
    charts::{
        Chart, HOST_CHARTS,
        feed::{Source, Span, feed},
    },
    components::{
        power::{Power, PowerButtons, StateBadge},
        status::{ErrorNote, Loading},
    },
    live,
    pages::servers::{Row, live_servers},
};

/// An alert as the pages show it.
#[derive(Debug, Clone, PartialEq)]
struct Firing {
    id: String,
    rule: String,
    metric: String,
    value: f64,
    started_at: String,
    firing: bool,
}

/// Alerts kept live: loaded, then updated by the `alerts` subscription.
fn live_alerts() -> (RwSignal<Option<Vec<Firing>>>, RwSignal<Option<ApiError>>) {
    let alerts = RwSignal::new(None::<Vec<Firing>>);
    let error = RwSignal::new(None);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::run::<FiringAlerts>(firing_alerts::Variables {}).await {
                Ok(data) => alerts.set(Some(
                    data.alerts
                        .into_iter()
                        .map(|a| Firing {
                            id: a.id,
                            rule: a.rule.name,
                            metric: a.rule.metric,
                            value: a.value,
                            started_at: a.started_at,
                            firing: true,
                        })
                        .collect(),
                )),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    let sub = live::subscribe::<AlertEvents>(
        alert_events::Variables {},
        move |event| match event {
            Ok(data) => {
                let a = data.alerts;
                let firing = matches!(a.state, alert_events::AlertState::FIRING);
                alerts.update(|list| {
                    let list = list.get_or_insert_with(Vec::new);
                    list.retain(|f| f.id != a.id);
                    if firing {
                        list.insert(
                            0,
                            Firing {
                                id: a.id,
                                rule: a.rule.name,
                                metric: a.rule.metric,
                                value: a.value,
                                started_at: a.started_at,
                                firing,
                            },
                        );
                    }
                });
            }
            Err(e) => error.set(Some(e)),
        },
        Some(Box::new(load)),
    );
    on_cleanup(move || live::unsubscribe(sub));
    (alerts, error)
}

#[component]
fn AlertBanner() -> impl IntoView {
    let (alerts, _) = live_alerts();
    move || {
        let n = alerts.with(|a| a.as_ref().map_or(0, Vec::len));
        (n > 0).then(|| {
            let first = alerts.with(|a| a.as_ref().and_then(|a| a.first().cloned()));
            view! {
                <aside class="alert-banner" role="alert">
                    <strong>{format!("{n} alert{} firing", if n == 1 { "" } else { "s" })}</strong>
                    {first.map(|f| format!(": {} ({} = {:.1})", f.rule, f.metric, f.value))}
                    " " <A href="/alerts">"See alerts"</A>
                </aside>
            }
        })
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let ctx = ctx();
    let servers = live_servers();
    // Loading, empty or cards: the cards are built once and kept across reloads.
    let shape = Memo::new(move |_| servers.rows.with(|r| r.as_ref().map(Vec::is_empty)));
    view! {
        <Show when=move || ctx.can(Permission::AlertRead)>
            <AlertBanner />
        </Show>
        <h1 class="sr-only">"Dashboard"</h1>
        <Show when=move || ctx.can(Permission::MetricsRead)>
            <section aria-labelledby="host-title">
                <h2 id="host-title">"Host"</h2>
                <HostCharts />
            </section>
        </Show>
        <section aria-labelledby="servers-title">
            <div class="page-head">
                <h2 id="servers-title">"Servers"</h2>
                <Show when=move || ctx.can(Permission::ServerCreate)>
                    <A href="/servers/new" attr:class="button">"New server"</A>
                </Show>
            </div>
            <ErrorNote error=servers.error />
            {move || match shape.get() {
                None => view! { <Loading what="servers" /> }.into_any(),
                Some(true) => view! { <p class="empty">"You see no servers yet."</p> }.into_any(),
                Some(false) => view! {
                    <div class="cards">
                        <For each=move || servers.rows.get().unwrap_or_default() key=|r| r.id let:row>
                            <ServerCard row=row />
                        </For>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}

/// The host's CPU, memory, disk and network over the last hour, live.
#[component]
fn HostCharts() -> impl IntoView {
    let feed = feed(
        Source::Host,
        &["cpu.percent", "memory.used_bytes", "disk.used_bytes", "net.rx_bytes_per_s", "net.tx_bytes_per_s"],
        Span::Live(3_600_000),
    );
    view! {
        <ErrorNote error=feed.error />
        <div class="chart-grid" data-testid="host-charts">
            {HOST_CHARTS.iter().map(|c| view! { <Chart title=c.title unit=c.unit series=feed.pick(c.metrics) range=feed.range height=180 /> }).collect_view()}
        </div>
    }
}

#[component]
fn ServerCard(row: Row) -> impl IntoView {
    let feed = feed(Source::Server(row.id), &["cpu.percent", "memory.used_bytes"], Span::Live(10 * 60_000));
    let keys = row.keys;
    let name = row.name.clone();
    let latest =
        move |metric: &'static str| feed.series.with(|s| s.get(metric).and_then(|s| s.points.last().map(|p| p.value)));
    view! {
        <article class="card server-card" data-server=row.name.clone()>
            <header>
                <h3><A href=format!("/servers/{}", row.id)>{name}</A></h3>
                <StateBadge state=row.state />
            </header>
            <p class="muted">{row.template.clone()}{row.port.map(|p| format!(" · port {p}"))}</p>
            <div class="sparks">
                <div>
                    <span class="spark-label">"CPU " {move || latest("cpu.percent").map(|v| format!("{v:.1}%")).unwrap_or_default()}</span>
                    <Chart title=format!("CPU of {}", row.name) unit="%" series=feed.pick(&[("cpu.percent", "CPU")]) range=feed.range height=40 bare=true />
                </div>
                <div>
                    <span class="spark-label">"Memory " {move || latest("memory.used_bytes").map(shared::metric::format_bytes).unwrap_or_default()}</span>
                    <Chart title=format!("Memory of {}", row.name) unit="bytes" series=feed.pick(&[("memory.used_bytes", "memory")]) range=feed.range height=40 bare=true />
                </div>
            </div>
            <PowerButtons id=row.id.to_string() name=row.name.clone() state=row.state keys=keys actions=&[Power::Start, Power::Stop] small=true />
        </article>
    }
}
