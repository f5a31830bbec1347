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
