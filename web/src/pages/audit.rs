//! The audit log: filtered by action, actor, target and time, paged, new entries arriving live
//! at the top (unless paused), each entry opening to its details, the filtered entries as CSV.

use leptos::prelude::*;
use shared::Permission;

use crate::{
    api::{
        self, ApiError,
        ops::{AuditFeed, AuditPage, audit_feed, audit_page},
    },
    components::{
        status::{ErrorNote, Require},
        table::{Column, Table},
    },
    live, time,
};

/// One entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub ip: String,
}

macro_rules! entry {
    ($e:expr) => {{
        let e = $e;
        Entry {
            actor: e
                .actor
                .as_ref()
                .map(|a| a.display_name.clone())
                .or(e.actor_email.clone())
                .unwrap_or_else(|| "the hub".into()),
            actor_id: e.actor.map(|a| a.id),
            target: match (e.target_type, e.target_id) {
                (Some(t), Some(id)) => format!("{t} {id}"),
                (Some(t), None) => t,
                (None, Some(id)) => id,
                (None, None) => String::new(),
            },
            id: e.id,
            at: e.at,
            action: e.action,
            outcome: e.outcome,
            detail: e.detail.unwrap_or_default(),
            ip: e.ip.unwrap_or_default(),
        }
    }};
}

/// The filter as the form holds it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Filter {
    action: String,
    actor_id: String,
    target_id: String,
    from: String,
    to: String,
}

impl Filter {
    fn local_to_rfc3339(text: &str) -> Option<String> {
        let ms = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(text)).get_time();
        (!text.is_empty() && ms.is_finite()).then(|| time::rfc3339(ms))
    }

    fn page(&self) -> audit_page::AuditFilter {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        audit_page::AuditFilter {
            action: some(&self.action),
            actor_id: some(&self.actor_id),
            target_id: some(&self.target_id),
            from: Self::local_to_rfc3339(&self.from),
            to: Self::local_to_rfc3339(&self.to),
        }
    }

    fn feed(&self) -> audit_feed::AuditFilter {
        let f = self.page();
        audit_feed::AuditFilter {
            action: f.action,
            actor_id: f.actor_id,
            target_id: f.target_id,
            from: f.from,
            to: f.to,
        }
    }
}

const PAGE: i64 = 100;

#[component]
pub fn Audit() -> impl IntoView {
    view! {
        <Require permission=Permission::AuditRead>
            <AuditLog />
        </Require>
    }
}

#[component]
fn AuditLog() -> impl IntoView {
    let form = RwSignal::new(Filter::default());
    let applied = RwSignal::new(Filter::default());
    let entries = RwSignal::new(None::<Vec<Entry>>);
    let more = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let paused = RwSignal::new(false);
    let held = RwSignal::new(Vec::<Entry>::new());

    let fetch = move |after: Option<String>| {
        let filter = applied.get_untracked().page();
        leptos::task::spawn_local(async move {
            let first = after.is_none();
            match api::run::<AuditPage>(audit_page::Variables { filter: Some(filter), first: Some(PAGE), after }).await
            {
                Ok(data) => {
                    let page: Vec<Entry> = data.audit_log.into_iter().map(|e| entry!(e)).collect();
                    more.set(page.len() as i64 == PAGE);
                    entries.update(|list| {
                        let list = list.get_or_insert_with(Vec::new);
                        if first {
                            list.clear();
                        }
                        list.extend(page);
                    });
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    // A new filter: the first page again, and a subscription with the same filter.
    Effect::new(move |_| {
        let filter = applied.get();
        entries.set(None);
        held.set(Vec::new());
        fetch(None);
        let sub = live::subscribe::<AuditFeed>(
            audit_feed::Variables { filter: Some(filter.feed()) },
            move |event| match event {
                Ok(data) => {
                    let e = entry!(data.audit_events);
                    if paused.get_untracked() {
                        held.update(|h| h.insert(0, e));
                    } else {
                        entries.update(|list| list.get_or_insert_with(Vec::new).insert(0, e));
                    }
                }
                Err(e) => error.set(Some(e)),
            },
            Some(Box::new(move || fetch(None))),
        );
        on_cleanup(move || live::unsubscribe(sub));
    });
    let resume = move |_| {
        let waiting = held.get_untracked();
        held.set(Vec::new());
        entries.update(|list| {
            let list = list.get_or_insert_with(Vec::new);
            for e in waiting.into_iter().rev() {
                list.insert(0, e);
            }
        });
        paused.set(false);
    };
    let apply = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        applied.set(form.get_untracked());
    };
    let export = move |_| {
        let filter = applied.get_untracked().page();
        leptos::task::spawn_local(async move {
            match all_entries(filter).await {
                Ok(list) => crate::download::save_text(&csv(&list), "audit-log.csv", "text/csv"),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let input = |id: &'static str,
                 label: &'static str,
                 kind: &'static str,
                 get: fn(&Filter) -> String,
                 set: fn(&mut Filter, String)| {
        view! {
            <label for=id>
                {label}
                <input id=id type=kind prop:value=move || form.with(get) on:input=move |e| { let v = event_target_value(&e); form.update(|f| set(f, v)) } />
            </label>
        }
    };
    let columns = vec![
        Column::new("When", |e: &Entry| time::show(&e.at).into_any())
            .sorted(|a, b| a.id.len().cmp(&b.id.len()).then(a.id.cmp(&b.id))),
        Column::new("Who", |e: &Entry| e.actor.clone().into_any()).sorted(|a, b| a.actor.cmp(&b.actor)),
        Column::new("Action", |e: &Entry| view! { <code>{e.action.clone()}</code> }.into_any())
            .sorted(|a, b| a.action.cmp(&b.action)),
        Column::new("Target", |e: &Entry| e.target.clone().into_any()),
        Column::new("Outcome", |e: &Entry| e.outcome.clone().into_any()).sorted(|a, b| a.outcome.cmp(&b.outcome)),
    ];
    view! {
        <h1>"Audit log"</h1>
        <form class="filters" role="search" on:submit=apply>
            {input("action", "Action ", "text", |f| f.action.clone(), |f, v| f.action = v)}
            {input("actor", "Actor id ", "text", |f| f.actor_id.clone(), |f, v| f.actor_id = v)}
            {input("target", "Target id ", "text", |f| f.target_id.clone(), |f, v| f.target_id = v)}
            {input("from", "From ", "datetime-local", |f| f.from.clone(), |f, v| f.from = v)}
            {input("to", "To ", "datetime-local", |f| f.to.clone(), |f, v| f.to = v)}
            <button type="submit" class="primary">"Filter"</button>
            <button type="button" on:click=move |_| { form.set(Filter::default()); applied.set(Filter::default()); }>"Clear"</button>
        </form>
        <div class="page-head">
            <Show when=move || paused.get() fallback=move || view! {
                <button type="button" on:click=move |_| paused.set(true) aria-pressed="false">"Pause live entries"</button>
            }>
                <button type="button" on:click=resume aria-pressed="true">
                    {move || format!("Resume ({} new)", held.with(Vec::len))}
                </button>
            </Show>
            <button type="button" on:click=export>"Export CSV"</button>
        </div>
        <ErrorNote error=error />
        <Table rows=entries columns=columns key=|e: &Entry| e.id.clone() empty="No entry matches." label="Audit log" page_size=50
            details=|e: &Entry| view! {
                <dl class="facts">
                    <dt>"Entry"</dt><dd>{e.id.clone()}</dd>
                    <dt>"At"</dt><dd>{time::show(&e.at)}</dd>
                    <dt>"Actor"</dt><dd>{format!("{}{}", e.actor, e.actor_id.as_ref().map(|id| format!(" (id {id})")).unwrap_or_default())}</dd>
                    <dt>"From"</dt><dd>{if e.ip.is_empty() { "–".to_owned() } else { e.ip.clone() }}</dd>
                    <dt>"Detail"</dt><dd>{if e.detail.is_empty() { "–".to_owned() } else { e.detail.clone() }}</dd>
                </dl>
            }.into_any() />
        <Show when=move || more.get()>
            <button type="button" on:click=move |_| {
                let last = entries.with_untracked(|l| l.as_ref().and_then(|l| l.last().map(|e| e.id.clone())));
                fetch(last);
            }>"Load older entries"</button>
        </Show>
    }
}

/// Every entry the filter matches (at most 20 000), page by page.
async fn all_entries(filter: audit_page::AuditFilter) -> Result<Vec<Entry>, ApiError> {
    let mut out: Vec<Entry> = Vec::new();
    let mut after = None;
    loop {
        let page =
            api::run::<AuditPage>(audit_page::Variables { filter: Some(filter.clone()), first: Some(500), after })
                .await?
                .audit_log;
        let n = page.len();
        out.extend(page.into_iter().map(|e| entry!(e)));
        if n < 500 || out.len() >= 20_000 {
            return Ok(out);
        }
        after = out.last().map(|e| e.id.clone());
    }
}

/// Entries as CSV, with cells that a spreadsheet would run as formulas defused.
pub fn csv(entries: &[Entry]) -> String {
    let cell = |s: &str| {
        let mut s = s.replace('"', "\"\"");
        if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            s.insert(0, '\'');
        }
        format!("\"{s}\"")
    };
    let mut out = String::from("id,at,actor,actor_id,action,target,outcome,detail,ip\n");
    for e in entries {
        let row = [
            &e.id,
            &e.at,
            &e.actor,
            e.actor_id.as_deref().unwrap_or(""),
            &e.action,
            &e.target,
            &e.outcome,
            &e.detail,
            &e.ip,
        ]
        .map(cell)
        .join(",");
        out.push_str(&row);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_every_cell_and_defuses_formulas() {
        let e = Entry {
            id: "7".into(),
            at: "2026-11-30T01:00:00Z".into(),
            actor: "Ann \"the admin\"".into(),
            actor_id: Some("1".into()),
            action: "server.command".into(),
            target: "server 3".into(),
            outcome: "success".into(),
            detail: "=cmd|' /c calc'!A1, then more".into(),
            ip: "127.0.0.1".into(),
        };
        let text = csv(&[e]);
        let line = text.lines().nth(1).unwrap();
        assert!(line.starts_with("\"7\",\"2026-11-30T01:00:00Z\",\"Ann \"\"the admin\"\"\",\"1\""), "{line}");
        assert!(line.contains("\"'=cmd|' /c calc'!A1, then more\""), "{line}");
    }
}
