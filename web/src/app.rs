//! The app shell. Pages and the router grow here with the web UI work.

use leptos::prelude::*;

use crate::pages::home::Home;

#[component]
pub fn App() -> impl IntoView {
    view! {
        <main class="shell">
            <Home />
        </main>
    }
}
