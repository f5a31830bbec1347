//! The template editor's form view: every part of a template file as a field. The hub writes the
//! file from the parts (`checkTemplate(parts:)`) and reads the parts back from a file, so the form
//! and the TOML view round-trip (comments in the file do not survive the form). A mistake shows on
//! the field the hub names (`errorAt`, e.g. `variables.1.default`).
//!
//! The parts are kept as the JSON the hub sends (`TemplateParts`), which is also the JSON it takes
//! (`TemplatePartsInput` has the same fields), and each field reads and writes its own place in
//! it: the place is the hub's `errorAt` path, so a field and its message share one name. The form
//! itself is a table of fields (`MAIN`, `VARIABLE`, ...) drawn by one function, so that a field
//! costs a line of the table rather than its own view code.

use leptos::prelude::*;
use serde_json::{Value, json};

/// The parts being edited (JSON of `TemplateParts`); None while they are read from the text.
pub type Form = RwSignal<Option<Value>>;
type Checked = RwSignal<Option<Check>>;

/// The hub's check of a template (`TemplateCheck`), read by hand from the JSON (a derived reader
/// per type weighs more than these few lines).
#[derive(Clone, PartialEq)]
pub struct Check {
    pub error: Option<String>,
    pub error_at: Option<String>,
    pub warnings: Vec<String>,
    pub definition: Option<String>,
    pub parts: Option<Value>,
    pub variables: Vec<CheckedVariable>,
    pub argv: Option<Vec<String>>,
    pub values_error: Option<String>,
}

#[derive(Clone, PartialEq)]
pub struct CheckedVariable {
    pub key: String,
    pub default: Option<String>,
    pub rule: Option<String>,
}

fn string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|l| l.iter().filter_map(string).collect())
}

impl Check {
    pub fn read(mut c: Value) -> Self {
        Self {
            error: string(&c["error"]),
            error_at: string(&c["errorAt"]),
            warnings: strings(&c["warnings"]).unwrap_or_default(),
            definition: string(&c["definition"]),
            parts: c.get_mut("parts").map(Value::take).filter(|p| !p.is_null()),
            variables: c["variables"]
                .as_array()
                .map(|vars| {
                    vars.iter()
                        .map(|v| CheckedVariable {
                            key: string(&v["key"]).unwrap_or_default(),
                            default: string(&v["default"]),
                            rule: string(&v["rule"]),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            argv: strings(&c["argv"]),
            values_error: string(&c["valuesError"]),
        }
    }
}

/// `variables.1.default` as a JSON pointer.
fn pointer(at: &str) -> String {
    format!("/{}", at.replace('.', "/"))
}

fn read<T: Default>(form: Form, at: &str, how: impl FnOnce(&Value) -> Option<T>) -> T {
    form.with(|f| f.as_ref().and_then(|f| f.pointer(&pointer(at))).and_then(how)).unwrap_or_default()
}

fn write(form: Form, at: &str, value: Value) {
    form.update(|f| {
        if let Some(slot) = f.as_mut().and_then(|f| f.pointer_mut(&pointer(at))) {
            *slot = value;
        }
    });
}

type Bind<T> = (Signal<T>, Callback<T>);

/// A text part; when `nullable`, an empty field is "not set".
fn text_at(form: Form, at: String, nullable: bool) -> Bind<String> {
    let place = at.clone();
    let get = Signal::derive(move || read(form, &place, |v| v.as_str().map(str::to_owned)));
    let set = Callback::new(move |v: String| {
        write(form, &at, if nullable && v.is_empty() { Value::Null } else { Value::String(v) })
    });
    (get, set)
}

/// A list of texts as the lines of a box: an empty box is an empty list, every line an entry.
fn lines_at(form: Form, at: String) -> Bind<String> {
    let place = at.clone();
    let get = Signal::derive(move || {
        read(form, &place, |v| v.as_array().map(|l| l.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n")))
    });
    let set = Callback::new(move |t: String| {
        let list = if t.is_empty() { Vec::new() } else { t.split('\n').map(Value::from).collect() };
        write(form, &at, Value::Array(list))
    });
    (get, set)
}

/// A whole number (what does not read as one is not taken).
fn number_at(form: Form, at: String) -> Bind<String> {
    let place = at.clone();
    let get = Signal::derive(move || read(form, &place, |v| v.as_i64().map(|n| n.to_string())));
    let set = Callback::new(move |t: String| {
        if let Ok(n) = t.trim().parse::<i64>() {
            write(form, &at, Value::from(n))
        }
    });
    (get, set)
}

fn flag_at(form: Form, at: String) -> Bind<bool> {
    let place = at.clone();
    let get = Signal::derive(move || read(form, &place, Value::as_bool));
    let set = Callback::new(move |on: bool| write(form, &at, Value::Bool(on)));
    (get, set)
}

/// The hub's message when its mistake is at `at`.
fn problem(check: Checked, at: String) -> Signal<Option<String>> {
    Signal::derive(move || {
        check.with(|c| c.as_ref().filter(|c| c.error_at.as_deref() == Some(at.as_str())).and_then(|c| c.error.clone()))
    })
}

fn field_id(at: &str) -> String {
    format!("tf-{}", at.replace('.', "-"))
}

/// What a field edits.
#[derive(Clone, Copy)]
enum Kind {
    /// Text; with `nullable`, an empty field is "not set"; more than 0 `rows` make a box.
    Text {
        nullable: bool,
        rows: u8,
    },
    /// A list of texts, one per line.
    Lines,
    Number,
    Flag,
    /// One of (value, words); the empty value is "not set".
    Pick(&'static [(&'static str, &'static str)]),
    /// One of the variables whose rule is PORT.
    PortVariable,
    /// A rule kind: picking one writes a whole rule with its parts.
    Rule,
    /// A checkbox for whether a part is set: ticking it sets the part to its defaults.
    Present(fn() -> Value),
}

/// When a field is shown: always, or while a part (relative to the item) is set or equal to a text.
#[derive(Clone, Copy)]
enum When {
    Always,
    Set(&'static str),
    Is(&'static str, &'static str),
}

/// A field of the form: its place in the parts (relative to its item), its label, what it edits,
/// a hint, and when it shows.
struct Spec {
    at: &'static str,
    label: &'static str,
    kind: Kind,
    hint: &'static str,
    when: When,
}

const fn text(at: &'static str, label: &'static str, hint: &'static str) -> Spec {
    Spec { at, label, kind: Kind::Text { nullable: false, rows: 0 }, hint, when: When::Always }
}
const fn optional(at: &'static str, label: &'static str, hint: &'static str) -> Spec {
    Spec { at, label, kind: Kind::Text { nullable: true, rows: 0 }, hint, when: When::Always }
}
const fn of(kind: Kind, at: &'static str, label: &'static str, hint: &'static str) -> Spec {
    Spec { at, label, kind, hint, when: When::Always }
}
const fn shown(spec: Spec, when: When) -> Spec {
    Spec { when, ..spec }
}

const SIGNALS: &[(&str, &str)] =
    &[("SIGTERM", "SIGTERM"), ("SIGINT", "SIGINT"), ("SIGHUP", "SIGHUP"), ("SIGQUIT", "SIGQUIT")];
const PROBES: &[(&str, &str)] = &[
    ("", "none"),
    ("PROCESS", "process alive (quiet)"),
    ("TCP", "TCP connect to the port"),
    ("UDP", "UDP datagram to the port"),
];
/// The rules a variable may have (the API's `VariableRuleKind`), in words.
const RULES: &[(&str, &str)] = &[
    ("", "any text"),
    ("PORT", "a port (1024-65535)"),
    ("INTEGER", "a whole number from min to max"),
    ("ONE_OF", "one of a list"),
    ("PATTERN", "a regular expression"),
    ("ARGS", "a list of arguments (JSON)"),
];

fn ready_defaults() -> Value {
    json!({ "patterns": [], "regex": [], "timeout": 60 })
}

/// A section: a heading, words, and rows of fields.
type Rows = &'static [&'static [Spec]];

const MAIN: Rows = &[
    &[text("name", "Name", "Shown to users; unique among templates.")],
    &[of(Kind::Text { nullable: true, rows: 2 }, "description", "Description", "")],
    &[text(
        "executable",
        "Program",
        "An absolute path, e.g. /usr/games/minetestserver; or {{KEY}} of a privileged variable.",
    )],
    &[of(
        Kind::Lines,
        "args",
        "Arguments",
        "One argument per line (an empty line is an empty argument), never split further and never run by a shell. Placeholders: {{KEY}}, {{SERVER_DIR}}, \
         {{SERVER_ID}}, {{SERVER_NAME}}; {{KEY...}} spreads a list.",
    )],
    &[optional("workingDir", "Working folder", "Relative to the server's folder; empty: the folder itself.")],
];

const AFTER_VARIABLES: Rows =
    &[&[of(Kind::PortVariable, "portVariable", "Port variable", "The variable players connect to.")]];

const RUNNING: Rows = &[
    &[of(Kind::Present(ready_defaults), "ready", "Wait for a console line before the server counts as ready", "")],
    &[
        shown(of(Kind::Lines, "ready.patterns", "Ready when a line contains", "One per line."), When::Set("ready")),
        shown(of(Kind::Lines, "ready.regex", "or matches", "Regular expressions, one per line."), When::Set("ready")),
        shown(of(Kind::Number, "ready.timeout", "Seconds to wait", ""), When::Set("ready")),
    ],
    &[
        optional("stop.command", "Stop command", "Written to the console first, e.g. /quit; empty: none."),
        of(Kind::Number, "stop.commandTimeout", "Seconds it has", ""),
        of(Kind::Pick(SIGNALS), "stop.signal", "Then the signal", ""),
        of(Kind::Number, "stop.signalTimeout", "Seconds it has", ""),
    ],
    &[of(Kind::Pick(PROBES), "probe", "Health check once ready", "Three failures in a row count as a crash.")],
    &[
        of(Kind::Flag, "crash.autoRestart", "Restart after a crash", ""),
        of(Kind::Number, "crash.maxRestarts", "At most", ""),
        of(Kind::Number, "crash.windowSeconds", "restarts within seconds", ""),
        of(Kind::Number, "crash.backoffSeconds", "First wait (doubles)", ""),
    ],
];

const VARIABLE: Rows = &[
    &[text("key", "Key", ""), optional("default", "Default", ""), of(Kind::Rule, "rule", "Rule", "")],
    &[
        shown(of(Kind::Number, "rule.min", "Min", ""), When::Is("rule.kind", "INTEGER")),
        shown(of(Kind::Number, "rule.max", "Max", ""), When::Is("rule.kind", "INTEGER")),
        shown(of(Kind::Lines, "rule.options", "Options", "One per line."), When::Is("rule.kind", "ONE_OF")),
        shown(text("rule.pattern", "Pattern", "The whole value must match."), When::Is("rule.kind", "PATTERN")),
    ],
    &[optional("description", "Description", "")],
    &[
        of(Kind::Flag, "required", "Required", ""),
        of(Kind::Flag, "editable", "Owners may change it", ""),
        of(Kind::Flag, "privileged", "Privileged (only template managers set it)", ""),
    ],
];

const ENV: Rows = &[&[text("key", "Variable", ""), text("value", "Value", "")]];

const FILE: Rows = &[
    &[text("path", "Path", "Relative to the server's folder.")],
    &[of(Kind::Text { nullable: false, rows: 5 }, "content", "Content", "")],
];

/// A list of items of the parts (variables, environment, files).
struct List {
    at: &'static str,
    title: &'static str,
    words: &'static str,
    rows: Rows,
    add: &'static str,
    blank: fn(usize) -> Value,
}

const LISTS: [List; 3] = [
    List {
        at: "variables",
        title: "Variables",
        words: "What each server of this template sets, such as its port.",
        rows: VARIABLE,
        add: "Add a variable",
        blank: |n| {
            json!({ "key": format!("VAR{}", n + 1), "description": null, "default": null, "required": false,
                    "editable": true, "privileged": false, "rule": null })
        },
    },
    List {
        at: "env",
        title: "Environment",
        words: "Variables of the game's environment; values may hold placeholders.",
        rows: ENV,
        add: "Add an environment variable",
        blank: |_| json!({ "key": "", "value": "" }),
    },
    List {
        at: "files",
        title: "Files",
        words: "Written into the server's folder when it is created; contents may hold placeholders.",
        rows: FILE,
        add: "Add a file",
        blank: |_| json!({ "path": "", "content": "" }),
    },
];

/// The rows of a section, for the item at `base` ("" or e.g. "variables.2.").
fn section(form: Form, check: Checked, base: String, rows: Rows) -> AnyView {
    rows.iter()
        .map(|row| {
            let fields = row.iter().map(|spec| field(form, check, &base, spec)).collect_view();
            if row.len() > 1 { view! { <div class="form-row">{fields}</div> }.into_any() } else { fields.into_any() }
        })
        .collect_view()
        .into_any()
}

/// One field of the table, drawn for the item at `base`.
fn field(form: Form, check: Checked, base: &str, spec: &'static Spec) -> AnyView {
    let at = format!("{base}{}", spec.at);
    let visible = {
        let base = base.to_owned();
        move || match spec.when {
            When::Always => true,
            When::Set(part) => read(form, &format!("{base}{part}"), |v| Some(!v.is_null())),
            When::Is(part, value) => read(form, &format!("{base}{part}"), |v| Some(v.as_str() == Some(value))),
        }
    };
    let id = field_id(&at);
    if let Kind::Flag | Kind::Present(_) = spec.kind {
        let (value, set) = match spec.kind {
            Kind::Present(defaults) => {
                let place = at.clone();
                (
                    Signal::derive(move || read(form, &place, |v| Some(!v.is_null()))),
                    Callback::new(move |on: bool| write(form, &at, if on { defaults() } else { Value::Null })),
                )
            }
            _ => flag_at(form, at),
        };
        let label_for = id.clone();
        return view! {
            <label class="check" for=label_for>
                <input id=id type="checkbox" prop:checked=move || value.get() on:change=move |e| set.run(event_target_checked(&e)) />
                {spec.label}
            </label>
        }
        .into_any();
    }
    let error = problem(check, at.clone());
    let error_id = format!("{id}-error");
    let invalid = move || error.with(Option::is_some).to_string();
    let (value, set) = match spec.kind {
        Kind::Lines => lines_at(form, at.clone()),
        Kind::Number => number_at(form, at.clone()),
        Kind::Text { nullable, .. } => text_at(form, at.clone(), nullable),
        Kind::Rule => rule_kind_at(form, at.clone()),
        _ => text_at(form, at.clone(), true),
    };
    let control = match spec.kind {
        Kind::Pick(_) | Kind::PortVariable | Kind::Rule => {
            let options = move || -> Vec<(String, String)> {
                match spec.kind {
                    Kind::Pick(options) => pairs(options),
                    Kind::Rule => pairs(RULES),
                    _ => port_choices(form),
                }
            };
            view! {
                <select id=id.clone() aria-invalid=invalid on:change=move |e| set.run(event_target_value(&e))>
                    {move || options().into_iter().map(|(v, words)| {
                        let selected = value.with(|c| *c == v);
                        view! { <option value=v selected=selected>{words}</option> }
                    }).collect_view()}
                </select>
            }
            .into_any()
        }
        Kind::Lines | Kind::Text { rows: 1.., .. } => {
            let rows = match spec.kind {
                Kind::Text { rows, .. } => rows,
                _ => 3,
            };
            view! { <textarea id=id.clone() class="code" rows=rows spellcheck="false" aria-invalid=invalid
            prop:value=move || value.get() on:input=move |e| set.run(event_target_value(&e))></textarea> }
            .into_any()
        }
        _ => {
            let kind = if let Kind::Number = spec.kind { "number" } else { "text" };
            view! { <input id=id.clone() type=kind spellcheck="false" aria-invalid=invalid
            prop:value=move || value.get() on:input=move |e| set.run(event_target_value(&e)) /> }
            .into_any()
        }
    };
    let hint = (!spec.hint.is_empty()).then(|| view! { <small class="hint">{spec.hint}</small> });
    view! {
        <div class="field" class:invalid=move || error.with(Option::is_some) class:hidden=move || !visible()>
            <label for=id.clone()>{spec.label}</label>
            {control}
            {hint}
            {move || error.get().map(|e| view! { <small id=error_id.clone() class="field-error" role="alert">{e}</small> })}
        </div>
    }
    .into_any()
}

/// A variable's rule kind; picking one writes a rule with its parts at their starting values.
fn rule_kind_at(form: Form, at: String) -> Bind<String> {
    let place = format!("{at}.kind");
    let get = Signal::derive(move || read(form, &place, |v| v.as_str().map(str::to_owned)));
    let set = Callback::new(move |kind: String| {
        let rule = if kind.is_empty() {
            Value::Null
        } else {
            let start = |part: &str, wanted: &str, value: Value| {
                (part.to_owned(), if kind == wanted { value } else { Value::Null })
            };
            let parts = [
                start("min", "INTEGER", 0.into()),
                start("max", "INTEGER", 100.into()),
                start("options", "ONE_OF", Value::Array(Vec::new())),
                start("pattern", "PATTERN", "".into()),
            ];
            let mut rule = serde_json::Map::new();
            for (part, value) in parts.into_iter().chain([("kind".to_owned(), Value::String(kind))]) {
                rule.insert(part, value); // (not collect(): see `crate::collect`)
            }
            Value::Object(rule)
        };
        write(form, &at, rule)
    });
    (get, set)
}

/// "(none)" and each variable whose rule is PORT.
fn port_choices(form: Form) -> Vec<(String, String)> {
    let mut out = pairs(&[("", "(none)")]);
    let ports = read(form, "variables", |v| {
        v.as_array().map(|vars| {
            vars.iter()
                .filter(|v| v.pointer("/rule/kind").and_then(Value::as_str) == Some("PORT"))
                .filter_map(|v| v["key"].as_str().map(|k| (k.to_owned(), k.to_owned())))
                .collect::<Vec<_>>()
        })
    });
    out.extend(ports);
    // A name that is no longer a port variable stays shown (and marked), so it can be changed.
    let current = read(form, "portVariable", string);
    if !current.is_empty() && !out.iter().any(|(v, _)| *v == current) {
        out.push((current.clone(), format!("{current} (not a port variable)")));
    }
    out
}

fn pairs(options: &[(&str, &str)]) -> Vec<(String, String)> {
    options.iter().map(|(v, w)| ((*v).to_owned(), (*w).to_owned())).collect()
}

fn count(form: Form, list: &'static str) -> usize {
    read(form, list, |v| v.as_array().map(Vec::len))
}

/// The items of a list, each with its fields and a remove button, and the button that adds one.
fn items(form: Form, check: Checked, list: &'static List) -> AnyView {
    let add = move |_| {
        form.update(|f| {
            if let Some(Value::Array(items)) = f.as_mut().and_then(|f| f.get_mut(list.at)) {
                items.push((list.blank)(items.len()));
            }
        })
    };
    let list_problem = problem(check, list.at.into());
    view! {
        <h3>{list.title}</h3>
        <p class="muted">{list.words}</p>
        <For each=move || 0..count(form, list.at) key=|i| *i let:i>
            {
                let base = format!("{}.{i}.", list.at);
                let title = {
                    let key = format!("{base}key");
                    move || read(form, &key, |v| v.as_str().map(|k| format!("{{{{{k}}}}}")))
                };
                let remove = move |_| {
                    form.update(|f| {
                        if let Some(Value::Array(items)) = f.as_mut().and_then(|f| f.get_mut(list.at))
                            && i < items.len()
                        {
                            items.remove(i);
                        }
                    })
                };
                view! {
                    <fieldset class="item">
                        <legend>{if list.at == "variables" { Some(title) } else { None }}</legend>
                        {section(form, check, base, list.rows)}
                        <button type="button" class="quiet" on:click=remove>"Remove"</button>
                    </fieldset>
                }
            }
        </For>
        {move || list_problem.get().map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
        <button type="button" on:click=add>{list.add}</button>
    }
    .into_any()
}

/// The whole form. Inputs are disabled for a built-in template.
#[component]
pub fn TemplateForm(form: Form, check: Checked, #[prop(into)] read_only: Signal<bool>) -> impl IntoView {
    view! {
        <fieldset class="template-form" disabled=move || read_only.get()>
            <legend class="sr-only">"The template in parts"</legend>
            {section(form, check, String::new(), MAIN)}
            {items(form, check, &LISTS[0])}
            {section(form, check, String::new(), AFTER_VARIABLES)}
            <h3>"Starting and stopping"</h3>
            {section(form, check, String::new(), RUNNING)}
            {items(form, check, &LISTS[1])}
            {items(form, check, &LISTS[2])}
        </fieldset>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_reads_from_the_hubs_answer() {
        let c = Check::read(json!({
            "error": "variable `A`: the default is not a port", "errorAt": "variables.0.default",
            "warnings": ["w"], "definition": "name = \"T\"\n", "parts": { "name": "T" },
            "variables": [{ "key": "A", "default": null, "rule": "port (1024-65535)" }],
            "argv": null, "valuesError": null,
        }));
        assert_eq!(c.error_at.as_deref(), Some("variables.0.default"));
        assert_eq!(c.parts, Some(json!({ "name": "T" })));
        assert_eq!(c.variables[0].rule.as_deref(), Some("port (1024-65535)"));
        assert!(c.argv.is_none() && c.warnings == ["w"]);
        assert!(Check::read(json!({ "parts": null })).parts.is_none(), "no parts of an invalid file");
    }

    #[test]
    fn a_place_is_a_pointer_and_an_id() {
        assert_eq!(pointer("variables.1.rule.min"), "/variables/1/rule/min");
        assert_eq!(field_id("stop.signal"), "tf-stop-signal");
        let parts = json!({ "variables": [{ "key": "A" }, { "key": "B", "rule": { "min": 3 } }] });
        assert_eq!(parts.pointer(&pointer("variables.1.rule.min")), Some(&json!(3)));
    }
}
