//! The servers the caller may see: a list with search, sort and filter and power buttons on
//! each row; creating a server from a template with a form built from its variables; editing
//! and deleting one.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_router::{
    components::A,
    hooks::{use_navigate, use_params_map},
};
use shared::{ErrorCode, Permission, ServerState, metric::format_bytes, template::Rule};

use crate::{
    api::{
        self, ApiError,
        ops::{
            CreateServer, DeleteServer, Server, ServerSamples, ServerStates, Servers, Templates, UpdateServer,
            create_server, delete_server, server, server_samples, server_states, servers, templates, update_server,
        },
        session,
    },
    app::ctx,
    collect,
    components::{
        form::{Field, form_error},
        power::{Power, PowerButtons, StateBadge},
        status::{ErrorNote, Loading},
    },
    live,
};

/// A server as the list and the dashboard show it, its state kept live.
#[derive(Clone)]
pub struct Row {
    pub id: i64,
    pub name: String,
    pub template: String,
    pub port: Option<i64>,
    /// The caller's keys on it, kept current (a grant can change them while the list is open).
    pub keys: RwSignal<Vec<String>>,
    pub state: RwSignal<ServerState>,
    /// The latest CPU % and memory bytes while it runs.
    pub usage: RwSignal<Option<(f64, f64)>>,
}

/// The visible servers, loaded and then kept live: states from `serverState`, a reload when a
/// server appears that the list does not have, after a reconnect and after each token refresh
/// (grants may have changed).
#[derive(Clone, Copy)]
pub struct LiveServers {
    pub rows: RwSignal<Option<Vec<Row>>>,
    pub error: RwSignal<Option<ApiError>>,
}

pub fn live_servers() -> LiveServers {
    let list = LiveServers { rows: RwSignal::new(None), error: RwSignal::new(None) };
    let reload = move || {
        let asked = live::order::mark();
        leptos::task::spawn_local(async move {
            match api::run::<Servers>(servers::Variables {}).await {
                Ok(data) => {
                    // The page may have gone while the answer travelled.
                    let Some(old) = list.rows.try_get_untracked() else { return };
                    let old: BTreeMap<i64, Row> = collect::map(old.unwrap_or_default().into_iter().map(|r| (r.id, r)));
                    let rows = data
                        .servers
                        .into_iter()
                        .filter_map(|s| {
                            let id = s.id.parse().ok()?;
                            let (state, usage, keys) = match old.get(&id) {
                                Some(r) => {
                                    // A state event that came after the question wins.
                                    if live::order::current(id, asked) {
                                        r.state.set(s.state);
                                    }
                                    if r.keys.with_untracked(|k| *k != s.my_permissions) {
                                        r.keys.set(s.my_permissions);
                                    }
                                    (r.state, r.usage, r.keys)
                                }
                                None => (RwSignal::new(s.state), RwSignal::new(None), RwSignal::new(s.my_permissions)),
                            };
                            Some(Row { id, name: s.name, template: s.template.name, port: s.port, keys, state, usage })
                        })
                        .collect();
                    list.rows.set(Some(rows));
                    list.error.set(None);
                }
                Err(e) => list.error.set(Some(e)),
            }
        });
    };
    let sub = live::subscribe::<ServerStates>(
        server_states::Variables {},
        move |event| match event {
            Ok(data) => {
                let e = data.server_state;
                let id: i64 = e.server_id.parse().unwrap_or_default();
                live::order::event(id);
                let known = list.rows.with_untracked(|rows| {
                    rows.as_ref().and_then(|rows| rows.iter().find(|r| r.id == id).map(|r| r.state))
                });
                match known {
                    Some(state) => state.set(e.state),
                    None => reload(),
                }
            }
            Err(e) => list.error.set(Some(e)),
        },
        Some(Box::new(reload)),
    );
    on_cleanup(move || live::unsubscribe(sub));
    let epoch = session::epoch();
    let access = crate::app::ctx().access;
    Effect::new(move |_| {
        epoch.track();
        access.track();
        reload();
    });
    list
}

/// Keeps `usage` current from the server's samples while the component lives and the server
/// runs (a stopped server sends none: no subscription is held for it, which keeps a long list
/// within the hub's 100 operations per socket).
pub fn follow_usage(row: &Row) {
    use std::sync::{Arc, Mutex};
    let (usage, state, id) = (row.usage, row.state, row.id);
    let held: Arc<Mutex<Option<live::SubId>>> = Arc::new(Mutex::new(None));
    let release = {
        let held = held.clone();
        move || {
            if let Some(sub) = held.lock().ok().and_then(|mut h| h.take()) {
                live::unsubscribe(sub);
            }
        }
    };
    Effect::new({
        let (held, release) = (held.clone(), release.clone());
        move |_| {
            let running = matches!(state.get(), ServerState::Starting | ServerState::Running | ServerState::Stopping);
            let holding = held.lock().is_ok_and(|h| h.is_some());
            if running && !holding {
                let sub = live::subscribe::<ServerSamples>(
                    server_samples::Variables { server_id: id.to_string() },
                    move |event| {
                        if let Ok(data) = event {
                            usage.set(Some((data.server_metrics.cpu_percent, data.server_metrics.memory_bytes)));
                        }
                    },
                    None,
                );
                if let Ok(mut h) = held.lock() {
                    *h = Some(sub);
                }
            } else if !running && holding {
                release();
                usage.set(None);
            }
        }
    });
    on_cleanup(release);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Name,
    State,
    Template,
    Cpu,
    Memory,
}

#[component]
pub fn ServerList() -> impl IntoView {
    let ctx = ctx();
    let list = live_servers();
    // Loading, empty or a list: the table is built once and its rows kept across reloads.
    let shape = Memo::new(move |_| list.rows.with(|r| r.as_ref().map(Vec::is_empty)));
    let search = RwSignal::new(String::new());
    let state_filter = RwSignal::new(String::new());
    let sort = RwSignal::new(SortBy::Name);
    let shown = move || {
        let needle = search.get().to_lowercase();
        let wanted = state_filter.get();
        let mut rows: Vec<Row> = list
            .rows
            .get()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                needle.is_empty()
                    || r.name.to_lowercase().contains(&needle)
                    || r.template.to_lowercase().contains(&needle)
            })
            .filter(|r| wanted.is_empty() || r.state.get().as_str() == wanted)
            .collect();
        let usage = |r: &Row, i: usize| r.usage.get().map_or(-1.0, |u| if i == 0 { u.0 } else { u.1 });
        let by = sort.get();
        collect::sort(&mut rows, &|a: &Row, b: &Row| match by {
            SortBy::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            SortBy::State => a.state.get().as_str().cmp(b.state.get().as_str()),
            SortBy::Template => a.template.to_lowercase().cmp(&b.template.to_lowercase()),
            SortBy::Cpu => usage(b, 0).total_cmp(&usage(a, 0)),
            SortBy::Memory => usage(b, 1).total_cmp(&usage(a, 1)),
        });
        rows
    };
    let on_sort = move |e: leptos::ev::Event| {
        sort.set(match event_target_value(&e).as_str() {
            "state" => SortBy::State,
            "template" => SortBy::Template,
            "cpu" => SortBy::Cpu,
            "memory" => SortBy::Memory,
            _ => SortBy::Name,
        })
    };
    view! {
        <div class="page-head">
            <h1>"Servers"</h1>
            <Show when=move || ctx.can(Permission::ServerCreate)>
                <A href="/servers/new" attr:class="button primary">"New server"</A>
            </Show>
        </div>
        <div class="filters" role="search">
            <label>
                <span class="sr-only">"Search servers"</span>
                <input type="search" placeholder="Search by name or template" prop:value=move || search.get() on:input=move |e| search.set(event_target_value(&e)) />
            </label>
            <label>
                "State "
                <select on:change=move |e| state_filter.set(event_target_value(&e))>
                    <option value="">"Any"</option>
                    {ServerState::ALL.iter().map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Sort by "
                <select on:change=on_sort>
                    <option value="name">"Name"</option>
                    <option value="state">"State"</option>
                    <option value="template">"Template"</option>
                    <option value="cpu">"CPU"</option>
                    <option value="memory">"Memory"</option>
                </select>
            </label>
        </div>
        <ErrorNote error=list.error />
        {move || match shape.get() {
            None => view! { <Loading what="servers" /> }.into_any(),
            Some(true) => view! {
                <p class="empty">"No servers yet. "
                    <Show when=move || ctx.can(Permission::ServerCreate) fallback=|| "Ask an admin to give you one.">
                        <A href="/servers/new">"Create the first one"</A>"."
                    </Show>
                </p>
            }.into_any(),
            Some(false) => view! {
                <div class="table-scroll">
                <table class="table servers">
                    <thead>
                        <tr><th scope="col">"Name"</th><th scope="col">"State"</th><th scope="col" class="wide">"Template"</th><th scope="col">"CPU"</th><th scope="col" class="wide">"Memory"</th><th scope="col">"Actions"</th></tr>
                    </thead>
                    <tbody>
                        <For each=shown key=|r| r.id let:row>
                            <ServerRow row=row />
                        </For>
                    </tbody>
                </table>
                </div>
                {move || (shown().is_empty()).then(|| view! { <p class="empty">"No server matches."</p> })}
            }.into_any(),
        }}
    }
}

#[component]
fn ServerRow(row: Row) -> impl IntoView {
    follow_usage(&row);
    let usage = row.usage;
    let keys = row.keys;
    let name = row.name.clone();
    view! {
        <tr data-server=row.name.clone()>
            <th scope="row"><A href=format!("/servers/{}", row.id)>{name}</A></th>
            <td><StateBadge state=row.state /></td>
            <td class="wide">{row.template.clone()}</td>
            <td>{move || usage.get().map(|u| format!("{:.1}%", u.0)).unwrap_or_else(|| "–".into())}</td>
            <td class="wide">{move || usage.get().map(|u| format_bytes(u.1)).unwrap_or_else(|| "–".into())}</td>
            <td>
                <PowerButtons id=row.id.to_string() name=row.name.clone() state=row.state keys=keys
                    actions=&[Power::Start, Power::Stop] small=true />
            </td>
        </tr>
    }
}

/// A template variable as the form needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct VarSpec {
    pub key: String,
    pub description: Option<String>,
    pub default: Option<String>,
    pub required: bool,
    pub editable: bool,
    pub privileged: bool,
    pub rule_words: Option<String>,
    pub rule: Option<Rule>,
}

/// Checks a value in the browser, with the same rules the hub applies again (patterns by the
/// browser's RegExp).
pub fn check(var: &VarSpec, value: &str) -> Result<(), String> {
    check_with(var, value, matches_pattern)
}

/// [`check`] with the pattern matcher given (tests use their own).
fn check_with(var: &VarSpec, value: &str, matches: fn(&str, &str) -> Result<bool, String>) -> Result<(), String> {
    if value.is_empty() {
        return if var.required { Err("required".into()) } else { Ok(()) };
    }
    match &var.rule {
        Some(rule) => rule.check_with(value, matches),
        None => Ok(()),
    }
}

/// Whether the whole value matches a pattern, by the browser's RegExp. A pattern it cannot read
/// (Rust's regex syntax differs in corners) passes: the hub checks again.
fn matches_pattern(pattern: &str, value: &str) -> Result<bool, String> {
    use wasm_bindgen::{JsCast, JsValue};
    let constructor = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("RegExp"))
        .ok()
        .and_then(|c| c.dyn_into::<js_sys::Function>().ok());
    let Some(constructor) = constructor else { return Ok(true) };
    let args = js_sys::Array::of2(&JsValue::from_str(&format!("^(?:{pattern})$")), &JsValue::from_str("u"));
    match js_sys::Reflect::construct(&constructor, &args).ok().and_then(|r| r.dyn_into::<js_sys::RegExp>().ok()) {
        Some(re) => Ok(re.test(value)),
        None => Ok(true),
    }
}

pub fn vars_of(vars: Vec<templates::TemplatesTemplatesVariables>) -> Vec<VarSpec> {
    vars.into_iter()
        .map(|v| VarSpec {
            rule: v.rule_spec.and_then(|r| Rule::from_parts(r.kind, r.min, r.max, r.options, r.pattern)),
            key: v.key,
            description: v.description,
            default: v.default,
            required: v.required,
            editable: v.editable,
            privileged: v.privileged,
            rule_words: v.rule,
        })
        .collect()
}

/// The inputs for a template's variables; `values` holds what the user typed.
#[component]
pub fn VariableFields(
    #[prop(into)] vars: Signal<Vec<VarSpec>>,
    values: RwSignal<BTreeMap<String, String>>,
    #[prop(into)] errors: Signal<BTreeMap<String, String>>,
    /// Privileged variables (template.manage) and non-editable ones are shown read-only.
    #[prop(into)]
    may_set_privileged: Signal<bool>,
) -> impl IntoView {
    move || {
        vars.get()
            .into_iter()
            .map(|v| {
                let key = v.key.clone();
                let id = format!("var-{key}");
                let read_only = !v.editable || (v.privileged && !may_set_privileged.get());
                let value = {
                    let key = key.clone();
                    move || values.with(|m| m.get(&key).cloned().unwrap_or_default())
                };
                let on_input = {
                    let key = key.clone();
                    move |e| {
                        let text = event_target_value(&e);
                        values.update(|m| {
                            m.insert(key.clone(), text);
                        })
                    }
                };
                let error = {
                    let key = key.clone();
                    Signal::derive(move || errors.with(|e| e.get(&key).cloned()))
                };
                let hint = [v.description.clone(), v.rule_words.clone().map(|r| format!("Rule: {r}")), read_only.then(|| "Set by the template.".to_owned())]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" · ");
                let options = match &v.rule {
                    Some(Rule::OneOf(options)) => Some(options.clone()),
                    _ => None,
                };
                let label = if v.required { format!("{key} *") } else { key.clone() };
                view! {
                    <div class="field" class:invalid=move || error.with(Option::is_some)>
                        <label for=id.clone()>{label}</label>
                        {match options {
                            Some(options) => view! {
                                <select id=id.clone() disabled=read_only on:change=on_input.clone()>
                                    {options.into_iter().map(|o| {
                                        let selected = { let o = o.clone(); let value = value.clone(); move || value() == o };
                                        view! { <option value=o.clone() selected=selected>{o.clone()}</option> }
                                    }).collect_view()}
                                </select>
                            }.into_any(),
                            None => view! {
                                <input id=id.clone() type="text" readonly=read_only prop:value=value.clone() on:input=on_input.clone()
                                    aria-invalid=move || error.with(Option::is_some).to_string() />
                            }.into_any(),
                        }}
                        <small class="hint">{hint}</small>
                        {move || error.get().map(|e| view! { <small class="field-error" role="alert">{e}</small> })}
                    </div>
                }
            })
            .collect_view()
    }
}

/// Checks every variable; the messages by key.
fn check_all(vars: &[VarSpec], values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    collect::map(vars.iter().filter(|v| v.editable).filter_map(|v| {
        let value = values.get(&v.key).map(String::as_str).unwrap_or_default();
        check(v, value).err().map(|e| (v.key.clone(), format!("{} must be {e}", v.key)))
    }))
}

#[component]
pub fn NewServer() -> impl IntoView {
    let ctx = ctx();
    let navigate = use_navigate();
    let templates_list = RwSignal::new(None::<Vec<templates::TemplatesTemplates>>);
    let load_error = RwSignal::new(None::<ApiError>);
    leptos::task::spawn_local(async move {
        match api::run::<Templates>(templates::Variables {}).await {
            Ok(data) => templates_list.set(Some(data.templates)),
            Err(e) => load_error.set(Some(e)),
        }
    });
    let chosen = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let auto_restart = RwSignal::new(true);
    let values = RwSignal::new(BTreeMap::<String, String>::new());
    let var_errors = RwSignal::new(BTreeMap::<String, String>::new());
    let error = RwSignal::new(None::<ApiError>);
    let name_error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let template =
        move || templates_list.with(|t| t.as_ref().and_then(|t| t.iter().find(|t| t.id == chosen.get()).cloned()));
    let vars = Signal::derive(move || template().map(|t| vars_of(t.variables)).unwrap_or_default());
    // A new template: its defaults fill the form.
    Effect::new(move |_| {
        let defaults =
            collect::map(vars.get().into_iter().map(|v| (v.key.clone(), v.default.clone().unwrap_or_default())));
        values.set(defaults);
        var_errors.set(BTreeMap::new());
    });
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let n = name.get_untracked().trim().to_owned();
        name_error.set(n.is_empty().then(|| "a server needs a name".to_owned()));
        let problems = check_all(&vars.get_untracked(), &values.get_untracked());
        let ready = problems.is_empty() && !n.is_empty() && !chosen.get_untracked().is_empty();
        var_errors.set(problems);
        if !ready {
            return;
        }
        let editable: Vec<String> = vars.get_untracked().into_iter().filter(|v| v.editable).map(|v| v.key).collect();
        let variables = values
            .get_untracked()
            .into_iter()
            .filter(|(k, _)| editable.contains(k))
            .map(|(key, value)| create_server::ServerVariableInput { key, value })
            .collect();
        let input = create_server::CreateServerInput {
            name: n,
            template_id: chosen.get_untracked(),
            variables: Some(variables),
            auto_restart: Some(auto_restart.get_untracked()),
            start_with_hub: None,
            memory_limit_mb: None,
        };
        pending.set(true);
        error.set(None);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::run::<CreateServer>(create_server::Variables { input }).await {
                Ok(data) => navigate(&format!("/servers/{}", data.create_server.id), Default::default()),
                Err(e) => {
                    if let Some(field) = e.field.as_deref().and_then(|f| f.strip_prefix("variables.")) {
                        var_errors.update(|v| {
                            v.insert(field.to_owned(), e.words());
                        });
                    }
                    error.set(Some(e));
                }
            }
            pending.set(false);
        });
    };
    let may_set_privileged = Signal::derive(move || ctx.can(Permission::TemplateManage));
    view! {
        <h1>"New server"</h1>
        <ErrorNote error=load_error />
        <form class="form" on:submit=submit novalidate>
            <div class="field">
                <label for="template">"Template"</label>
                <select id="template" required=true on:change=move |e| chosen.set(event_target_value(&e))>
                    <option value="">"Choose a template"</option>
                    {move || templates_list.get().unwrap_or_default().into_iter().map(|t| view! { <option value=t.id.clone()>{t.name.clone()}</option> }).collect_view()}
                </select>
                <small class="hint">{move || template().and_then(|t| t.description)}</small>
            </div>
            <Field id="name" label="Name" value=name required=true
                error=Signal::derive(move || name_error.get().or_else(|| error.get().filter(|e| e.field.as_deref() == Some("name")).map(|e| e.words()))) />
            <VariableFields vars=vars values=values errors=var_errors may_set_privileged=may_set_privileged />
            <label class="check">
                <input type="checkbox" prop:checked=move || auto_restart.get() on:change=move |e| auto_restart.set(event_target_checked(&e)) />
                " Restart it when it crashes"
            </label>
            {move || form_error(error.get(), &["name"]).filter(|e| !e.field.as_deref().is_some_and(|f| f.starts_with("variables."))).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
            <div class="actions">
                <button type="submit" class="primary" disabled=move || pending.get() || chosen.get().is_empty()>
                    {move || if pending.get() { "Creating…" } else { "Create the server" }}
                </button>
                <A href="/servers">"Cancel"</A>
            </div>
        </form>
    }
}

#[component]
pub fn EditServer() -> impl IntoView {
    let params = use_params_map();
    let navigate = StoredValue::new_local(use_navigate());
    let go = move |path: String| {
        let _ = navigate.try_with_value(|n| n(&path, Default::default()));
    };
    let id = params.with_untracked(|p| p.get("id")).unwrap_or_default();
    let server_id = StoredValue::new(id.clone());
    let loaded = RwSignal::new(None::<server::ServerServer>);
    let load_error = RwSignal::new(None::<ApiError>);
    let name = RwSignal::new(String::new());
    let auto_restart = RwSignal::new(true);
    let values = RwSignal::new(BTreeMap::<String, String>::new());
    let var_errors = RwSignal::new(BTreeMap::<String, String>::new());
    let error = RwSignal::new(None::<ApiError>);
    let pending = RwSignal::new(false);
    let confirm = RwSignal::new(String::new());
    let deleting = RwSignal::new(false);
    let delete_error = RwSignal::new(None::<ApiError>);
    {
        let id = id.clone();
        leptos::task::spawn_local(async move {
            match api::run::<Server>(server::Variables { id }).await {
                Ok(data) => match data.server {
                    Some(s) => {
                        name.set(s.name.clone());
                        auto_restart.set(s.auto_restart);
                        values.set(collect::map(s.variables.iter().map(|v| (v.key.clone(), v.value.clone()))));
                        loaded.set(Some(s));
                    }
                    None => load_error.set(Some(ApiError::coded(ErrorCode::NotFound, "server not found"))),
                },
                Err(e) => load_error.set(Some(e)),
            }
        });
    }
    let vars = Signal::derive(move || {
        loaded.with(|s| {
            s.as_ref()
                .map(|s| {
                    s.template
                        .variables
                        .iter()
                        .map(|v| VarSpec {
                            rule: v
                                .rule_spec
                                .clone()
                                .and_then(|r| Rule::from_parts(r.kind, r.min, r.max, r.options, r.pattern)),
                            key: v.key.clone(),
                            description: v.description.clone(),
                            default: v.default.clone(),
                            required: v.required,
                            editable: v.editable,
                            privileged: v.privileged,
                            rule_words: v.rule.clone(),
                        })
                        .collect::<Vec<VarSpec>>()
                })
                .unwrap_or_default()
        })
    });
    let keys = move || loaded.with(|s| s.as_ref().map(|s| s.my_permissions.clone()).unwrap_or_default());
    let submit = {
        move |e: leptos::ev::SubmitEvent| {
            e.prevent_default();
            if pending.get_untracked() {
                return;
            }
            let problems = check_all(&vars.get_untracked(), &values.get_untracked());
            let ok = problems.is_empty();
            var_errors.set(problems);
            if !ok {
                return;
            }
            let editable: Vec<String> =
                vars.get_untracked().into_iter().filter(|v| v.editable).map(|v| v.key).collect();
            let input = update_server::UpdateServerInput {
                name: Some(name.get_untracked().trim().to_owned()),
                variables: Some(
                    values
                        .get_untracked()
                        .into_iter()
                        .filter(|(k, _)| editable.contains(k))
                        .map(|(key, value)| update_server::ServerVariableInput { key, value })
                        .collect(),
                ),
                auto_restart: Some(auto_restart.get_untracked()),
                start_with_hub: None,
                memory_limit_mb: None,
            };
            pending.set(true);
            error.set(None);
            let id = server_id.get_value();
            leptos::task::spawn_local(async move {
                match api::run::<UpdateServer>(update_server::Variables { id: id.clone(), input }).await {
                    Ok(_) => go(format!("/servers/{id}")),
                    Err(e) => error.set(Some(e)),
                }
                pending.set(false);
            });
        }
    };
    let delete = {
        move |e: leptos::ev::SubmitEvent| {
            e.prevent_default();
            if deleting.get_untracked() {
                return;
            }
            deleting.set(true);
            let id = server_id.get_value();
            leptos::task::spawn_local(async move {
                match api::run::<DeleteServer>(delete_server::Variables { id }).await {
                    Ok(_) => go("/servers".into()),
                    Err(e) => delete_error.set(Some(e)),
                }
                deleting.set(false);
            });
        }
    };
    let server_name = move || loaded.with(|s| s.as_ref().map(|s| s.name.clone()).unwrap_or_default());
    let cancel = StoredValue::new(format!("/servers/{id}"));
    view! {
        <ErrorNote error=load_error />
        <Show when=move || loaded.with(Option::is_some) fallback=move || view! { <Show when=move || load_error.with(Option::is_none)><Loading what="the server" /></Show> }>
            <h1>{move || format!("Edit {}", server_name())}</h1>
            <Show when=move || keys().iter().any(|k| k == "server.update") fallback=|| view! { <p>"You may not change this server's settings."</p> }>
                <form class="form" on:submit=submit novalidate>
                    <Field id="name" label="Name" value=name required=true
                        error=Signal::derive(move || error.get().filter(|e| e.field.as_deref() == Some("name")).map(|e| e.words())) />
                    <VariableFields vars=vars values=values errors=var_errors may_set_privileged=Signal::derive(move || ctx().can(Permission::TemplateManage)) />
                    <label class="check">
                        <input type="checkbox" prop:checked=move || auto_restart.get() on:change=move |e| auto_restart.set(event_target_checked(&e)) />
                        " Restart it when it crashes"
                    </label>
                    {move || form_error(error.get(), &["name"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
                    <div class="actions">
                        <button type="submit" class="primary" disabled=move || pending.get()>"Save"</button>
                        <A href=move || cancel.get_value()>"Cancel"</A>
                    </div>
                </form>
            </Show>
            <Show when=move || keys().iter().any(|k| k == "server.delete")>
                <form class="danger-zone" on:submit=delete>
                    <h2>"Delete this server"</h2>
                    <p>"This stops it and deletes its folder with every file in it. It cannot be undone."</p>
                    <div class="field">
                        <label for="confirm-name">{move || format!("Type {} to confirm", server_name())}</label>
                        <input id="confirm-name" type="text" autocomplete="off" prop:value=move || confirm.get() on:input=move |e| confirm.set(event_target_value(&e)) />
                    </div>
                    <ErrorNote error=delete_error />
                    <button type="submit" class="danger" disabled=move || deleting.get() || confirm.get() != server_name()>"Delete the server"</button>
                </form>
            </Show>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(key: &str, required: bool, editable: bool, rule: Option<Rule>) -> VarSpec {
        VarSpec {
            key: key.into(),
            description: None,
            default: None,
            required,
            editable,
            privileged: false,
            rule_words: None,
            rule,
        }
    }

    fn only_digits(_pattern: &str, value: &str) -> Result<bool, String> {
        Ok(value.chars().all(|c| c.is_ascii_digit()))
    }

    #[test]
    fn the_form_checks_required_values_and_rules_before_sending() {
        let port = var("PORT", true, true, Some(Rule::Port));
        assert_eq!(check_with(&port, "", only_digits), Err("required".into()));
        assert_eq!(check_with(&port, "80", only_digits), Err("a port number from 1024 to 65535".into()));
        assert_eq!(check_with(&port, "30000", only_digits), Ok(()));
        let optional = var("MOTD", false, true, Some(Rule::Pattern("[0-9]+".into())));
        assert_eq!(check_with(&optional, "", only_digits), Ok(()), "an empty optional value is not checked");
        assert_eq!(check_with(&optional, "abc", only_digits), Err("text matching [0-9]+".into()));
        let values: BTreeMap<String, String> =
            [("PORT".to_owned(), "80".to_owned()), ("FIXED".to_owned(), String::new())].into_iter().collect();
        let fixed = var("FIXED", true, false, None);
        let problems = check_all(&[port, fixed], &values);
        assert_eq!(problems.len(), 1, "a variable the template sets is not the user's to fix: {problems:?}");
        assert_eq!(problems["PORT"], "PORT must be a port number from 1024 to 65535");
    }
}
