//! The Kutanga Hub web app: a Leptos client-side app served by the hub itself.
//!
//! - `api/`: the typed GraphQL client, the session (tokens) and errors in words;
//! - `live/`: the one graphql-transport-ws connection and its subscriptions;
//! - `charts/`: the chart component over `shared::chart` (the hub draws with it too);
//! - `components/`: the shell's parts, forms, the console;
//! - `pages/`: one module per page.

mod ansi;
mod api;
mod app;
mod charts;
mod collect;
mod components;
mod download;
mod live;
mod pages;
mod time;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
