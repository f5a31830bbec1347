//! The Kutanga Hub web app: a Leptos client-side app served by the hub itself.

mod api;
mod app;
mod pages;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
