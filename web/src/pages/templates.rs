//! Templates (`template.manage`): the built-in ones to read or copy, custom ones made, changed
//! and deleted. The editor shows a template as a form (`template_form`) or as its TOML file; the
//! hub checks either as it is typed (`checkTemplate`: the error and its place, warnings such as a
//! program missing on this host), writes the file from the form and reads the form from the file,
//! and "try it" renders the command line a server would run for the values given.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde_json::{Value, json};
use shared::Permission;

use crate::{
    api::{
        self, ApiError,
        ops::{
            CreateTemplate, DeleteTemplate, TemplateList, UpdateTemplate, check_template, create_template,
            delete_template, template_list, update_template,
        },
    },
    components::{
        form::Confirm,
        status::{ErrorNote, Loading, Require},
    },
    pages::template_form::{Check, Form, TemplateForm},
};

type Row = template_list::TemplateListTemplates;

/// How the editor shows the template.
#[derive(Clone, Copy, PartialEq)]
enum View {
    Form,
    Toml,
}

/// Asks the hub to check the text or, given, the parts (then the answer carries the text).
async fn ask(text: String, parts: Option<Value>, values: Vec<Value>) -> Result<Check, ApiError> {
    let (definition, parts) = match parts {
        Some(parts) => (Value::Null, parts),
        None => (Value::String(text), Value::Null),
    };
    let variables = json!({ "definition": definition, "parts": parts, "values": values });
    let mut data = api::run_json(check_template::QUERY, check_template::OPERATION_NAME, variables).await?;
    Ok(Check::read(data["checkTemplate"].take()))
}

/// A starting point for a new template.
const STARTER: &str = r#"name = "My game"
description = "What it is, for the people who pick it."
executable = "/usr/games/my-game-server"
args = ["--port", "{{PORT}}", "--data", "{{SERVER_DIR}}/data"]
port_variable = "PORT"

[[variables]]
key = "PORT"
description = "The port players connect to."
default = "30000"
rule = "port"

[ready]
patterns = ["Server started"]
timeout = 60

[stop]
command = "/quit"

[probe]
kind = "process"
"#;

/// What the editor holds: a template of the hub (by id) or a new one.
#[derive(Clone, PartialEq)]
enum Editing {
    New,
    Existing { id: String, built_in: bool },
}

#[component]
pub fn Templates() -> impl IntoView {
    view! {
        <Require permission=Permission::TemplateManage>
            <TemplatesPage />
        </Require>
    }
}

#[component]
fn TemplatesPage() -> impl IntoView {
    let list = RwSignal::new(None::<Vec<Row>>);
    let error = RwSignal::new(None::<ApiError>);
    let editing = RwSignal::new(Editing::New);
    let text = RwSignal::new(STARTER.to_owned());
    // The form's parts, read again from the text whenever another template is opened.
    let form: Form = RwSignal::new(None);
    // Another text: its form is read again (the same text, as after saving, keeps the form).
    let show = move |definition: String| {
        if text.with_untracked(|t| *t != definition) {
            text.set(definition);
            form.set(None);
        }
    };
    let load = move |select: Option<String>| {
        leptos::task::spawn_local(async move {
            match api::run::<TemplateList>(template_list::Variables {}).await {
                Ok(data) => {
                    if let Some(id) = select
                        && let Some(t) = data.templates.iter().find(|t| t.id == id)
                    {
                        editing.set(Editing::Existing { id: t.id.clone(), built_in: t.built_in });
                        show(t.definition.clone());
                    }
                    list.set(Some(data.templates));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load(None);
    let open = move |t: &Row| {
        editing.set(Editing::Existing { id: t.id.clone(), built_in: t.built_in });
        show(t.definition.clone());
    };
    view! {
        <h1>"Templates"</h1>
        <ErrorNote error=error />
        <div class="templates">
            <nav class="template-list" aria-label="Templates">
                <button type="button" class="primary" on:click=move |_| { editing.set(Editing::New); show(STARTER.to_owned()) }>"New template"</button>
                {move || match list.get() {
                    None => view! { <Loading what="templates" /> }.into_any(),
                    Some(rows) => view! {
                        <ul>
                            {rows.into_iter().map(|t| {
                                let id = t.id.clone();
                                let current = move || matches!(editing.get(), Editing::Existing { id: ref e, .. } if *e == id);
                                let warned = !t.warnings.is_empty();
                                let row = t.clone();
                                view! {
                                    <li>
                                        <button type="button" class="quiet" aria-current=move || current().then_some("true") on:click=move |_| open(&row)>
                                            {t.name.clone()}
                                            {t.built_in.then(|| view! { " " <span class="badge">"built-in"</span> })}
                                            {warned.then(|| view! { " " <span class="badge state-crashed" title="See its warnings">"!"</span> })}
                                        </button>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }}
            </nav>
            <Editor editing=editing text=text form=form reload=Callback::new(load) />
        </div>
    }
}

#[component]
fn Editor(
    editing: RwSignal<Editing>,
    text: RwSignal<String>,
    form: Form,
    reload: Callback<Option<String>>,
) -> impl IntoView {
    let view_as = RwSignal::new(View::Form);
    let check = RwSignal::new(None::<Check>);
    let values = RwSignal::new(BTreeMap::<String, String>::new());
    let error = RwSignal::new(None::<ApiError>);
    // A check that could not be made (the hub unreachable): apart from what Save and Delete say,
    // so that a late check never hides their answer.
    let check_error = RwSignal::new(None::<ApiError>);
    let saved = RwSignal::new(None::<&'static str>);
    let pending = RwSignal::new(false);
    let asked = RwSignal::new(0u32);
    // The parts as read from the text: while the form still holds them, the text is kept as it
    // is (with its comments and order) rather than written again from the form.
    let pristine = StoredValue::new(None::<Value>);
    let edited = move |parts: &Value| pristine.with_value(|p| p.as_ref() != Some(parts));
    let given = move || -> Vec<Value> {
        values
            .get()
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(key, value)| json!({ "key": key, "value": value }))
            .collect()
    };
    // The hub checks what is shown a moment after the typing stops; only the latest answer
    // counts. From the form it writes the text; from the text it reads the form's parts.
    Effect::new(move |_| {
        let parts = match view_as.get() {
            View::Form => form.get().filter(|p| edited(p)),
            View::Toml => None,
        };
        let definition = if parts.is_none() { text.get() } else { String::new() };
        let from_parts = parts.is_some();
        let given = given();
        let n = asked.get_untracked().wrapping_add(1);
        asked.update_untracked(|a| *a = n);
        leptos::task::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(350).await;
            if asked.get_untracked() != n {
                return;
            }
            match ask(definition, parts, given).await {
                Ok(c) if asked.get_untracked() == n => {
                    check_error.set(None);
                    if from_parts {
                        if let Some(written) = &c.definition {
                            text.set(written.clone());
                        }
                    } else if view_as.get_untracked() == View::Form && form.with_untracked(Option::is_none) {
                        match c.parts.clone() {
                            Some(parts) => {
                                pristine.set_value(Some(parts.clone()));
                                form.set(Some(parts));
                            }
                            None => view_as.set(View::Toml),
                        }
                    }
                    check.set(Some(c));
                }
                Ok(_) => {}
                Err(e) => check_error.set(Some(e)),
            }
        });
    });
    // The text of what is shown: from the form, written by the hub now (not a moment ago).
    let current_text = move || async move {
        match form.get_untracked().filter(|p| view_as.get_untracked() == View::Form && edited(p)) {
            None => Ok(text.get_untracked()),
            Some(parts) => {
                let c = ask(String::new(), Some(parts), Vec::new()).await?;
                let written = c.definition.clone();
                check.update(|old| {
                    if let Some(old) = old {
                        old.error = c.error;
                        old.error_at = c.error_at;
                    }
                });
                written.ok_or_else(|| {
                    ApiError::coded(shared::ErrorCode::BadUserInput, "The form has a mistake: see the marked field.")
                })
            }
        }
    };
    let to_toml = move |_| {
        if view_as.get_untracked() == View::Toml {
            return;
        }
        let was = editing.get_untracked();
        leptos::task::spawn_local(async move {
            let written = current_text().await;
            if editing.get_untracked() != was
                || view_as.get_untracked() != View::Form
                || form.with_untracked(Option::is_none)
            {
                return; // another template was opened meanwhile: its text stays
            }
            match written {
                Ok(written) => {
                    text.set(written);
                    form.set(None);
                    view_as.set(View::Toml);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let to_form = move |_| {
        if view_as.get_untracked() == View::Form {
            return;
        }
        form.set(None);
        view_as.set(View::Form);
    };
    let read_only = Signal::derive(move || matches!(editing.get(), Editing::Existing { built_in: true, .. }));
    let save = move |_| {
        if pending.get_untracked() {
            return;
        }
        pending.set(true);
        saved.set(None);
        let target = editing.get_untracked();
        leptos::task::spawn_local(async move {
            let done = match current_text().await {
                Err(e) => Err(e),
                Ok(definition) => {
                    // What is saved is what the page holds (then reloading keeps the form).
                    text.set(definition.clone());
                    match target {
                        Editing::New => api::run::<CreateTemplate>(create_template::Variables { definition })
                            .await
                            .map(|d| (d.create_template.id, "Created.")),
                        Editing::Existing { id, .. } => {
                            api::run::<UpdateTemplate>(update_template::Variables { id, definition })
                                .await
                                .map(|d| (d.update_template.id, "Saved."))
                        }
                    }
                }
            };
            match done {
                Ok((id, words)) => {
                    error.set(None);
                    saved.set(Some(words));
                    reload.run(Some(id));
                }
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    let delete = Callback::new(move |()| {
        let Editing::Existing { id, .. } = editing.get_untracked() else { return };
        leptos::task::spawn_local(async move {
            match api::run::<DeleteTemplate>(delete_template::Variables { id }).await {
                Ok(_) => {
                    error.set(None);
                    editing.set(Editing::New);
                    text.set(STARTER.to_owned());
                    form.set(None);
                    reload.run(None);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    });
    // A copy is a new template with another name: in the form, the name part changes (and the
    // hub writes the text); in the TOML, its `name` line.
    let copy = move |_| {
        editing.set(Editing::New);
        let renamed = form.try_update(|f| {
            f.as_mut().and_then(|f| f.get_mut("name")).map(|name| {
                *name = Value::String(format!("Copy of {}", name.as_str().unwrap_or_default()));
            })
        });
        if renamed.flatten().is_none() {
            text.update(|t| {
                if let Some(from) = ["name = \"", "name = '"].into_iter().find(|from| t.contains(from)) {
                    *t = t.replacen(from, &format!("{from}Copy of "), 1);
                }
            });
            form.set(None);
        }
    };
    // Whether the parts are there, as a memo: the form is drawn once, not again on each change.
    let has_form = Memo::new(move |_| form.with(Option::is_some));
    let tab = move |which: View| move || (view_as.get() == which).to_string();
    let unplaced = move || {
        check.get().and_then(|c| {
            let on_form = view_as.get() == View::Form && has_form.get() && c.error_at.is_some();
            c.error.filter(|_| !on_form)
        })
    };
    view! {
        <section class="card editor" aria-labelledby="editor-title">
            <h2 id="editor-title">{move || match editing.get() {
                Editing::New => "New template".to_owned(),
                Editing::Existing { built_in: true, .. } => "Built-in template (read-only)".to_owned(),
                Editing::Existing { .. } => "Template".to_owned(),
            }}</h2>
            <div class="tabs" role="tablist" aria-label="Show the template as">
                <button type="button" role="tab" aria-selected=tab(View::Form) on:click=to_form
                    disabled=move || view_as.get() == View::Toml && check.with(|c| c.as_ref().is_some_and(|c| c.parts.is_none()))
                    title="Every part as a field">"Form"</button>
                <button type="button" role="tab" aria-selected=tab(View::Toml) on:click=to_toml
                    title="The template file; comments are not kept through the form">"TOML"</button>
            </div>
            <Show when=move || view_as.get() == View::Form fallback=move || view! {
                <label for="definition">"Template file (TOML)"</label>
                <textarea id="definition" class="code" rows="22" spellcheck="false" readonly=move || read_only.get()
                    aria-describedby="definition-check"
                    prop:value=move || text.get() on:input=move |e| { saved.set(None); text.set(event_target_value(&e)) }></textarea>
            }>
                {move || match has_form.get() {
                    true => view! { <TemplateForm form=form check=check read_only=read_only /> }.into_any(),
                    false => view! { <Loading what="the form" /> }.into_any(),
                }}
            </Show>
            <ErrorNote error=check_error />
            <div id="definition-check" data-testid="template-check">
                {move || match unplaced() {
                    Some(e) => view! { <p class="field-error" role="alert">{e}</p> }.into_any(),
                    None => check.get().map(|c| match c.error {
                        Some(_) => view! { <p class="field-error" role="alert">"Not valid yet: see the marked field."</p> }.into_any(),
                        None => view! {
                            <p class="muted" role="status">"A valid template."</p>
                            <ul class="warnings">{c.warnings.into_iter().map(|w| view! { <li class="note">{w}</li> }).collect_view()}</ul>
                        }.into_any(),
                    }).into_any(),
                }}
            </div>
            <h3>"Try it"</h3>
            <p class="muted">"The command line a server would run with these values (each line is one argument, never split, never a shell)."</p>
            {move || check.get().filter(|c| c.error.is_none()).map(|c| view! {
                <div class="try">
                    {c.variables.into_iter().map(|v| {
                        let key = v.key.clone();
                        let id = format!("try-{}", key.to_lowercase());
                        let current = { let key = key.clone(); move || values.with(|m| m.get(&key).cloned().unwrap_or_default()) };
                        view! {
                            <div class="field">
                                <label for=id.clone()>{key.clone()} {v.rule.map(|r| format!(" ({r})"))}</label>
                                <input id=id type="text" placeholder=v.default.unwrap_or_default() prop:value=current
                                    on:input=move |e| { let value = event_target_value(&e); values.update(|m| { m.insert(key.clone(), value); }) } />
                            </div>
                        }
                    }).collect_view()}
                    {match (c.argv, c.values_error) {
                        (Some(argv), _) => view! {
                            <ol class="argv" data-testid="argv">{argv.into_iter().map(|a| view! { <li><code>{a}</code></li> }).collect_view()}</ol>
                        }.into_any(),
                        (None, Some(e)) => view! { <p class="field-error" role="alert">{e}</p> }.into_any(),
                        (None, None) => ().into_any(),
                    }}
                </div>
            })}
            <ErrorNote error=error />
            <div class="actions">
                <Show when=move || !read_only.get() fallback=move || view! { <button type="button" on:click=copy>"Copy as new"</button> }>
                    <button type="button" class="primary" disabled=move || pending.get() on:click=save>
                        {move || if editing.with(|e| *e == Editing::New) { "Create template" } else { "Save template" }}
                    </button>
                </Show>
                {move || saved.get().map(|w| view! { <span class="muted" role="status">{w}</span> })}
                <Show when=move || matches!(editing.get(), Editing::Existing { built_in: false, .. })>
                    <Confirm label="Delete" question="Delete this template? The hub refuses while a server uses it." on_confirm=delete />
                </Show>
            </div>
        </section>
    }
}
