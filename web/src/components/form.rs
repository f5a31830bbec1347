//! Form fields with their message from the browser's checks or from the API
//! (`extensions.field`).

use leptos::prelude::*;

use crate::api::ApiError;

/// The message for one field: its own check's, else the API's when the API named this field.
pub fn field_error(local: Option<String>, api: &Option<ApiError>, field: &str) -> Option<String> {
    local.or_else(|| api.as_ref().filter(|e| e.field.as_deref() == Some(field)).map(ApiError::words))
}

/// The API's error when it names no field shown on the form (else it shows on its field).
pub fn form_error(api: Option<ApiError>, fields: &[&str]) -> Option<ApiError> {
    api.filter(|e| e.field.as_deref().is_none_or(|f| !fields.contains(&f)))
}

/// A labelled input with its message.
#[component]
pub fn Field(
    /// The input's id and the API's field name.
    id: &'static str,
    #[prop(into)] label: String,
    value: RwSignal<String>,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional, into)] autocomplete: Option<&'static str>,
    #[prop(optional, into)] hint: Option<String>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(default = false)] required: bool,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described = {
        let (hint_id, error_id) = (hint_id.clone(), error_id.clone());
        let has_hint = hint.is_some();
        move || {
            let mut ids = Vec::new();
            if has_hint {
                ids.push(hint_id.clone());
            }
            if error.with(Option::is_some) {
                ids.push(error_id.clone());
            }
            ids.join(" ")
        }
    };
    view! {
        <div class="field" class:invalid=move || error.with(Option::is_some)>
            <label for=id>{label}</label>
            <input
                id=id
                name=id
                type=kind
                autocomplete=autocomplete
                required=required
                aria-invalid=move || error.with(Option::is_some).to_string()
                aria-describedby=described
                prop:value=move || value.get()
                on:input=move |e| value.set(event_target_value(&e))
            />
            {hint.map(|h| view! { <small id=hint_id.clone() class="hint">{h}</small> })}
            {move || error.get().map(|e| view! { <small id=error_id.clone() class="field-error" role="alert">{e}</small> })}
        </div>
    }
}

/// A destructive button that asks first. With `typed`, the confirm button stays disabled until
/// that text is typed (for what cannot be undone).
#[component]
pub fn Confirm(
    #[prop(into)] label: String,
    #[prop(into)] question: String,
    #[prop(optional, into)] typed: Option<String>,
    on_confirm: Callback<()>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let entered = RwSignal::new(String::new());
    let must = StoredValue::new(typed);
    let ok = move || must.with_value(|m| m.as_ref().is_none_or(|m| entered.with(|e| e.trim() == m)));
    let label = StoredValue::new(label);
    let question = StoredValue::new(question);
    move || {
        match asking.get() {
        false => view! {
            <button type="button" class="danger" on:click=move |_| { entered.set(String::new()); asking.set(true) }>
                {label.get_value()}
            </button>
        }
        .into_any(),
        true => view! {
            <div class="confirm" role="alertdialog" aria-label=label.get_value()>
                <p>{question.get_value()}</p>
                {must.get_value().map(|m| view! {
                    <label>
                        {format!("Type {m} to confirm")}
                        <input type="text" autocomplete="off" prop:value=move || entered.get() on:input=move |e| entered.set(event_target_value(&e)) />
                    </label>
                })}
                <button type="button" class="danger" disabled=move || !ok() on:click=move |_| { asking.set(false); on_confirm.run(()) }>
                    {format!("Yes, {}", label.get_value().to_lowercase())}
                </button>
                <button type="button" on:click=move |_| asking.set(false)>"Cancel"</button>
            </div>
        }
        .into_any(),
    }
    }
}

/// A secret shown once (a new password, an invitation link), selectable, with a copy button.
#[component]
pub fn ShownOnce(#[prop(into)] label: String, value: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let text = StoredValue::new(value.clone());
    let copy = move |_| {
        // navigator.clipboard is behind web-sys's unstable APIs: called by name.
        use wasm_bindgen::{JsCast, JsValue};
        let Some(w) = web_sys::window() else { return };
        let clipboard =
            js_sys::Reflect::get(&w.navigator(), &JsValue::from_str("clipboard")).unwrap_or(JsValue::UNDEFINED);
        let write = js_sys::Reflect::get(&clipboard, &JsValue::from_str("writeText"))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        if let Some(write) = write
            && write.call1(&clipboard, &JsValue::from_str(&text.get_value())).is_ok()
        {
            copied.set(true);
        }
    };
    view! {
        <div class="shown-once" role="status">
            <label>
                {label}
                <input type="text" readonly value=value data-testid="shown-once" on:focus=|e| {
                    use wasm_bindgen::JsCast;
                    if let Some(i) = e.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) { i.select() }
                } />
            </label>
            <button type="button" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
            <small class="hint">"Shown only now: the hub keeps no copy it could show again."</small>
        </div>
    }
}
