//! Alerts: the rules (create, pause and resume, delete) and the alerts they raise, live, with
//! acknowledgement, the webhook's last delivery error and the metric around each firing.

use leptos::prelude::*;
use shared::{Metric, Permission, Suspicion};

use crate::{
    api::{
        self, ApiError,
        ops::{
            AcknowledgeAlert, AlertChanges, AlertList, AlertRules, CreateAlertRule, DeleteAlertRule,
            SetAlertRuleEnabled, acknowledge_alert, alert_changes, alert_list, alert_rules, create_alert_rule,
            delete_alert_rule, set_alert_rule_enabled,
        },
    },
    app::ctx,
    charts::{
        Chart,
        feed::{Source, Span, feed},
    },
    components::{
        form::{Field, field_error, form_error},
        status::{ErrorNote, Require},
        table::{Column, Table},
    },
    live,
    pages::servers::live_servers,
    time,
};

/// An alert as the page shows it (from the query or the subscription).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: String,
    pub firing: bool,
    pub value: f64,
    pub server_id: Option<String>,
    /// The client address of a security alert.
    pub subject: Option<String>,
    pub started_at: String,
    pub resolved_at: Option<String>,
    pub acknowledged: Option<(String, String)>,
    pub webhook_error: Option<String>,
    pub rule: String,
    pub metric: String,
    pub condition: String,
}

fn condition(comparison: &str, threshold: f64) -> String {
    format!("{} {threshold}", comparison.to_lowercase())
}

/// An enum of the API as its name (`ABOVE`), whichever operation's type it is.
fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

macro_rules! alert_row {
    ($a:expr, $state:path) => {{
        let a = $a;
        AlertRow {
            firing: matches!(a.state, $state),
            value: a.value,
            server_id: a.server_id,
            subject: a.subject,
            started_at: a.started_at,
            resolved_at: a.resolved_at,
            acknowledged: a.acknowledged_at.map(|at| {
                (
                    at,
                    a.acknowledged_by
                        .map(|u| if u.display_name.is_empty() { u.email } else { u.display_name })
                        .unwrap_or_default(),
                )
            }),
            webhook_error: a.webhook_error,
            condition: condition(&word(&a.rule.comparison), a.rule.threshold),
            rule: a.rule.name,
            metric: a.rule.metric,
            id: a.id,
        }
    }};
}

#[component]
pub fn Alerts() -> impl IntoView {
    view! {
        <Require permission=Permission::AlertRead>
            <AlertsPage />
        </Require>
    }
}

#[component]
fn AlertsPage() -> impl IntoView {
    let ctx = ctx();
    let alerts = RwSignal::new(None::<Vec<AlertRow>>);
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::run::<AlertList>(alert_list::Variables {}).await {
                Ok(data) => {
                    alerts.set(Some(
                        data.alerts.into_iter().map(|a| alert_row!(a, alert_list::AlertState::FIRING)).collect(),
                    ));
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    let sub = live::subscribe::<AlertChanges>(
        alert_changes::Variables {},
        move |event| match event {
            Ok(data) => {
                let row = alert_row!(data.alerts, alert_changes::AlertState::FIRING);
                alerts.update(|list| {
                    let list = list.get_or_insert_with(Vec::new);
                    match list.iter_mut().find(|r| r.id == row.id) {
                        Some(old) => *old = row,
                        None => list.insert(0, row),
                    }
                });
            }
            Err(e) => error.set(Some(e)),
        },
        Some(Box::new(load)),
    );
    on_cleanup(move || live::unsubscribe(sub));
    let manage = move || ctx.can(Permission::AlertManage);
    let ack_error = RwSignal::new(None::<ApiError>);
    provide_context(AckError(ack_error));
    provide_context(CanManage(Signal::derive(manage)));

    let columns = vec![
        Column::new("Rule", |a: &AlertRow| view! { <strong>{a.rule.clone()}</strong> }.into_any())
            .sorted(|a, b| a.rule.cmp(&b.rule)),
        Column::new("State", |a: &AlertRow| {
            let (class, text) =
                if a.firing { ("badge state-crashed", "FIRING") } else { ("badge state-offline", "RESOLVED") };
            view! { <span class=class data-testid="alert-state">{text}</span> }.into_any()
        })
        .sorted(|a, b| b.firing.cmp(&a.firing)),
        Column::new("Value", |a: &AlertRow| {
            if a.metric == "server.crashed" {
                format!("server {} crashed", a.server_id.clone().unwrap_or_default()).into_any()
            } else if let Some(kind) = Suspicion::parse(&a.metric) {
                let who = a.subject.clone().unwrap_or_else(|| "unknown".into());
                view! { <span data-testid="alert-subject">{format!("{:.0} {} from {who}", a.value, kind.words())}</span> }
                    .into_any()
            } else {
                format!("{} = {:.2} ({})", a.metric, a.value, a.condition).into_any()
            }
        }),
        Column::new("Since", |a: &AlertRow| time::show(&a.started_at).into_any())
            .sorted(|a, b| a.started_at.cmp(&b.started_at)),
        Column::new("Webhook", |a: &AlertRow| match &a.webhook_error {
            Some(e) => view! { <span class="field-error">{format!("last delivery failed: {e}")}</span> }.into_any(),
            None => "–".into_any(),
        }),
        Column::new("Acknowledged", |a: &AlertRow| match &a.acknowledged {
            Some((at, by)) => format!("by {by}, {}", time::show(at)).into_any(),
            None => view! { <AckButton id=a.id.clone() /> }.into_any(),
        }),
    ];
    view! {
        <h1>"Alerts"</h1>
        <ErrorNote error=error />
        <ErrorNote error=ack_error />
        <Table rows=alerts columns=columns key=|a: &AlertRow| a.id.clone() empty="No alert has fired yet." label="Alerts"
            details=|a: &AlertRow| view! { <AlertSparkline alert=a.clone() /> }.into_any() />
        <Rules />
    }
}

#[derive(Clone, Copy)]
struct AckError(RwSignal<Option<ApiError>>);

#[derive(Clone, Copy)]
struct CanManage(Signal<bool>);

#[component]
fn AckButton(id: String) -> impl IntoView {
    let AckError(error) = expect_context::<AckError>();
    let CanManage(manage) = expect_context::<CanManage>();
    let busy = RwSignal::new(false);
    let click = move |e: leptos::ev::MouseEvent| {
        e.stop_propagation();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let id = id.clone();
        leptos::task::spawn_local(async move {
            // The acknowledgement comes back on the subscription.
            if let Err(e) = api::run::<AcknowledgeAlert>(acknowledge_alert::Variables { id }).await {
                error.set(Some(e));
            }
            busy.set(false);
        });
    };
    view! {
        <Show when=move || manage.get() fallback=|| "not yet">
            <button type="button" class="small" disabled=move || busy.get() on:click=click.clone()>"Acknowledge"</button>
        </Show>
    }
}

/// The alert's metric from a quarter hour before it fired to its end (or now).
#[component]
fn AlertSparkline(alert: AlertRow) -> impl IntoView {
    let Ok(metric) = alert.metric.parse::<Metric>() else {
        return view! { <p class="muted">"A crash alert has no metric to show."</p> }.into_any();
    };
    let started = time::parse_ms(&alert.started_at).unwrap_or_default();
    let ended = alert.resolved_at.as_deref().and_then(time::parse_ms).unwrap_or(time::now_ms() as i64);
    let source = match alert.server_id.as_deref().and_then(|s| s.parse().ok()) {
        Some(id) => Source::Server(id),
        None => Source::Host,
    };
    let metrics: &'static [&'static str] = match metric {
        Metric::CpuPercent => &["cpu.percent"],
        Metric::MemoryUsedBytes => &["memory.used_bytes"],
        Metric::MemoryPercent => &["memory.percent"],
        Metric::SwapUsedBytes => &["swap.used_bytes"],
        Metric::DiskUsedBytes => &["disk.used_bytes"],
        Metric::DiskPercent => &["disk.percent"],
        Metric::NetRxBytesPerS => &["net.rx_bytes_per_s"],
        Metric::NetTxBytesPerS => &["net.tx_bytes_per_s"],
        Metric::Load1 => &["load.1"],
    };
    let data = feed(source, metrics, Span::Fixed(started - 15 * 60_000, ended + 60_000));
    let series = {
        let all = data.series;
        Signal::derive(move || all.with(|m| m.values().cloned().collect::<Vec<_>>()))
    };
    view! {
        <ErrorNote error=data.error />
        <Chart title=format!("{} around the alert", metric.as_str()) unit=metric.unit() series=series range=data.range height=160 />
    }
    .into_any()
}

/// The rules, and a form for a new one.
#[component]
fn Rules() -> impl IntoView {
    let ctx = ctx();
    let rules = RwSignal::new(None::<Vec<alert_rules::AlertRulesAlertRules>>);
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::run::<AlertRules>(alert_rules::Variables {}).await {
                Ok(data) => rules.set(Some(data.alert_rules)),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    provide_context(ReloadRules(Callback::new(move |()| load())));
    provide_context(RuleError(error));
    let columns = vec![
        Column::new("Name", |r: &alert_rules::AlertRulesAlertRules| {
            view! { <strong>{r.name.clone()}</strong> }.into_any()
        })
        .sorted(|a, b| a.name.cmp(&b.name)),
        Column::new("Metric", |r: &alert_rules::AlertRulesAlertRules| {
            if Suspicion::parse(&r.metric).is_some() {
                return format!("{} (per address)", r.metric).into_any();
            }
            let target = r.server_id.as_ref().map_or_else(|| "host".to_owned(), |s| format!("server {s}"));
            format!("{} of {target}", r.metric).into_any()
        }),
        Column::new("Condition", |r: &alert_rules::AlertRulesAlertRules| {
            if r.metric == "server.crashed" {
                "on a crash".into_any()
            } else if Suspicion::parse(&r.metric).is_some() {
                format!("{} or more within {} s", r.threshold, r.for_seconds).into_any()
            } else {
                format!("{} for {} s", condition(&word(&r.comparison), r.threshold), r.for_seconds).into_any()
            }
        }),
        Column::new("Webhook", |r: &alert_rules::AlertRulesAlertRules| {
            r.webhook_host
                .clone()
                .map(|h| {
                    format!(
                        "{h} ({})",
                        r.webhook_format.as_ref().map(word).unwrap_or_else(|| "GENERIC".into()).to_lowercase()
                    )
                })
                .unwrap_or_else(|| "–".into())
                .into_any()
        }),
        Column::new("", |r: &alert_rules::AlertRulesAlertRules| {
            view! { <RuleActions id=r.id.clone() name=r.name.clone() enabled=r.enabled /> }.into_any()
        }),
    ];
    view! {
        <h2>"Rules"</h2>
        <ErrorNote error=error />
        <Table rows=rules columns=columns key=|r: &alert_rules::AlertRulesAlertRules| r.id.clone() empty="No rules yet." label="Alert rules" />
        <Show when=move || ctx.can(Permission::AlertManage)>
            <NewRule />
        </Show>
    }
}

#[derive(Clone, Copy)]
struct ReloadRules(Callback<()>);

#[derive(Clone, Copy)]
struct RuleError(RwSignal<Option<ApiError>>);

#[component]
fn RuleActions(id: String, name: String, enabled: bool) -> impl IntoView {
    let ctx = ctx();
    let ReloadRules(reload) = expect_context::<ReloadRules>();
    let RuleError(error) = expect_context::<RuleError>();
    let confirming = RwSignal::new(false);
    let id = StoredValue::new(id);
    let toggle = {
        move |_| {
            let id = id.get_value();
            leptos::task::spawn_local(async move {
                match api::run::<SetAlertRuleEnabled>(set_alert_rule_enabled::Variables { id, enabled: !enabled }).await
                {
                    Ok(_) => reload.run(()),
                    Err(e) => error.set(Some(e)),
                }
            });
        }
    };
    let delete = {
        move |_| {
            let id = id.get_value();
            leptos::task::spawn_local(async move {
                match api::run::<DeleteAlertRule>(delete_alert_rule::Variables { id }).await {
                    Ok(_) => reload.run(()),
                    Err(e) => error.set(Some(e)),
                }
            });
        }
    };
    view! {
        <span class="muted">{if enabled { "active" } else { "paused" }}</span>
        <Show when=move || ctx.can(Permission::AlertManage)>
            " "
            <button type="button" class="small" on:click=toggle aria-label=format!("{} the rule {name}", if enabled { "Pause" } else { "Resume" })>
                {if enabled { "Pause" } else { "Resume" }}
            </button>
            " "
            <Show when=move || confirming.get() fallback=move || view! {
                <button type="button" class="small danger" on:click=move |_| confirming.set(true)>"Delete"</button>
            }>
                <button type="button" class="small danger" on:click=delete>"Delete it"</button>
                <button type="button" class="small" on:click=move |_| confirming.set(false)>"Keep"</button>
            </Show>
        </Show>
    }
}

#[component]
fn NewRule() -> impl IntoView {
    let ReloadRules(reload) = expect_context::<ReloadRules>();
    let servers = live_servers();
    let name = RwSignal::new(String::new());
    let metric = RwSignal::new("cpu.percent".to_owned());
    let server = RwSignal::new(String::new());
    let above = RwSignal::new(true);
    let threshold = RwSignal::new("90".to_owned());
    let for_seconds = RwSignal::new("60".to_owned());
    let webhook = RwSignal::new(String::new());
    let format = RwSignal::new("GENERIC".to_owned());
    let error = RwSignal::new(None::<ApiError>);
    let local = RwSignal::new(Vec::<(&'static str, String)>::new());
    let pending = RwSignal::new(false);
    let crash = move || metric.get() == "server.crashed";
    let security = move || Suspicion::parse(&metric.get()).is_some();
    let for_field = move |field: &'static str| {
        Signal::derive(move || {
            let own = local.with(|l| l.iter().find(|(f, _)| *f == field).map(|(_, m)| m.clone()));
            field_error(own, &error.get(), field)
        })
    };
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let mut problems = Vec::new();
        let n = name.get_untracked().trim().to_owned();
        if n.is_empty() {
            problems.push(("name", "a rule needs a name".to_owned()));
        }
        let t = threshold.get_untracked().trim().parse::<f64>();
        if security() {
            if t.as_ref().map_or(true, |t| *t < 1.0 || t.fract() != 0.0) {
                problems.push(("threshold", "a whole number of events, 1 or more".to_owned()));
            }
        } else if !crash() && t.as_ref().map_or(true, |t| !t.is_finite()) {
            problems.push(("threshold", "a number, such as 90 or 0.5".to_owned()));
        }
        let f = for_seconds.get_untracked().trim().parse::<i64>();
        let least = if security() { 1 } else { 0 };
        if !crash() && f.as_ref().map_or(true, |f| *f < least) {
            problems.push(("forSeconds", format!("whole seconds, {least} or more")));
        }
        let ok = problems.is_empty();
        local.set(problems);
        if !ok {
            return;
        }
        let hook = webhook.get_untracked().trim().to_owned();
        let input = create_alert_rule::AlertRuleInput {
            name: n,
            metric: metric.get_untracked(),
            server_id: Some(server.get_untracked()).filter(|s| !s.is_empty() && !security()),
            threshold: t.unwrap_or(0.0),
            for_seconds: f.unwrap_or(0),
            comparison: if above.get_untracked() {
                create_alert_rule::AlertComparison::ABOVE
            } else {
                create_alert_rule::AlertComparison::BELOW
            },
            webhook_format: (!hook.is_empty()).then(|| match format.get_untracked().as_str() {
                "DISCORD" => create_alert_rule::AlertWebhookFormat::DISCORD,
                "SLACK" => create_alert_rule::AlertWebhookFormat::SLACK,
                _ => create_alert_rule::AlertWebhookFormat::GENERIC,
            }),
            webhook_url: Some(hook).filter(|h| !h.is_empty()),
        };
        pending.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::run::<CreateAlertRule>(create_alert_rule::Variables { input }).await {
                Ok(_) => {
                    name.set(String::new());
                    reload.run(());
                }
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    let metric_options = Metric::ALL
        .iter()
        .map(|m| m.as_str())
        .chain(["server.crashed"])
        .chain(Suspicion::ALL.iter().map(|s| s.as_str()))
        .collect::<Vec<_>>();
    view! {
        <form class="form card" on:submit=submit novalidate>
            <h3>"New rule"</h3>
            <Field id="name" label="Name" value=name required=true error=for_field("name") />
            <div class="field">
                <label for="metric">"Metric"</label>
                <select id="metric" on:change=move |e| metric.set(event_target_value(&e))>
                    {metric_options.into_iter().map(|m| view! { <option value=m selected=move || metric.get() == m>{m}</option> }).collect_view()}
                </select>
            </div>
            <Show when=move || !security()>
            <div class="field">
                <label for="rule-server">"Of"</label>
                <select id="rule-server" on:change=move |e| server.set(event_target_value(&e))>
                    <option value="">{move || if crash() { "Every server" } else { "The host" }}</option>
                    {move || servers.rows.get().unwrap_or_default().into_iter().map(|r| view! { <option value=r.id.to_string()>{r.name.clone()}</option> }).collect_view()}
                </select>
                <small class="hint">"A server records cpu.percent and memory.used_bytes only."</small>
            </div>
            </Show>
            <Show when=move || !crash() && !security()>
                <div class="field">
                    <label for="comparison">"Fires when the value is"</label>
                    <select id="comparison" on:change=move |e| above.set(event_target_value(&e) == "ABOVE")>
                        <option value="ABOVE">"above"</option>
                        <option value="BELOW">"below"</option>
                    </select>
                </div>
                <Field id="threshold" label="Threshold" value=threshold error=for_field("threshold") />
                <Field id="forSeconds" label="For (seconds)" value=for_seconds hint="How long the value must hold before the alert fires." error=for_field("forSeconds") />
            </Show>
            <Show when=security>
                <Field id="threshold" label="Events from one address" value=threshold hint="The alert fires when one client address reaches this many." error=for_field("threshold") />
                <Field id="forSeconds" label="Within (seconds)" value=for_seconds hint="The window the events are counted in (up to a day)." error=for_field("forSeconds") />
            </Show>
            <Field id="webhookUrl" label="Webhook URL (optional)" value=webhook kind="url" hint="http:// or https://; never shown again (only its host)." error=for_field("webhookUrl") />
            <div class="field">
                <label for="webhook-format">"Webhook format"</label>
                <select id="webhook-format" on:change=move |e| format.set(event_target_value(&e))>
                    <option value="GENERIC">"Generic JSON"</option>
                    <option value="DISCORD">"Discord"</option>
                    <option value="SLACK">"Slack"</option>
                </select>
            </div>
            {move || form_error(error.get(), &["name", "threshold", "forSeconds", "webhookUrl"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
            <button type="submit" class="primary" disabled=move || pending.get()>"Create the rule"</button>
        </form>
    }
}
