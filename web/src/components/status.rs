//! Loading, empty, error, "not allowed" and "not found" states, the same on every page.

use leptos::prelude::*;
use leptos_router::components::A;
use shared::Permission;

use crate::{api::ApiError, app::ctx};

/// An API error in words.
#[component]
pub fn ErrorNote(#[prop(into)] error: Signal<Option<ApiError>>) -> impl IntoView {
    move || error.get().map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })
}

#[component]
pub fn Loading(#[prop(optional, into)] what: Option<String>) -> impl IntoView {
    view! { <p class="muted" role="status">{format!("Loading {}…", what.unwrap_or_default()).replace("  ", " ")}</p> }
}

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <main class="page narrow">
            <h1>"Not found"</h1>
            <p>"There is no page at this address."</p>
            <p><A href="/">"Back to the dashboard"</A></p>
        </main>
    }
}

/// What a page shows to a user without the permission it needs.
#[component]
pub fn NotAllowed(permission: Permission) -> impl IntoView {
    view! {
        <section class="page narrow" aria-labelledby="not-allowed">
            <h1 id="not-allowed">"Not allowed"</h1>
            <p>{format!("This page needs the permission {}, which you do not hold.", permission.key())}</p>
            <p>"Ask an admin for it if you need this page."</p>
            <p><A href="/">"Back to the dashboard"</A></p>
        </section>
    }
}

/// Renders `children` only for holders of `permission`, "not allowed" for the others.
#[component]
pub fn Require(permission: Permission, children: ChildrenFn) -> impl IntoView {
    let ctx = ctx();
    // The page is rebuilt only when the answer changes, not each time `me` is read again.
    let allowed = Memo::new(move |_| ctx.me.with(Option::is_some).then(|| ctx.can(permission)));
    move || match allowed.get() {
        None => view! { <Loading /> }.into_any(),
        Some(true) => children().into_any(),
        Some(false) => view! { <NotAllowed permission=permission /> }.into_any(),
    }
}
