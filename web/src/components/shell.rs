//! The frame around signed-in pages: the hub's name, navigation by permission, the live
//! connection's state, the theme switch and the user with sign out.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_navigate};
use shared::Permission;

use crate::{
    api::session,
    app::{ThemeChoice, apply_theme, ctx},
    live::Status,
};

#[component]
pub fn Shell(children: Children) -> impl IntoView {
    let ctx = ctx();
    let menu_open = RwSignal::new(false);
    let hub_name = move || ctx.hub.with(|h| h.as_ref().map_or_else(|| "Kutanga Hub".to_owned(), |h| h.name.clone()));
    let navigate = use_navigate();
    let sign_out = move |_| {
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            // Signed out here either way; the sign-in page cannot show why the hub was not told,
            // so the console keeps it.
            if let Err(e) = session::sign_out().await {
                leptos::logging::warn!("the hub could not be told of the sign-out: {}", e.words());
            }
            navigate("/sign-in", Default::default());
        });
    };
    let user = move || {
        ctx.me.with(|m| {
            m.as_ref().map(|m| if m.display_name.is_empty() { m.email.clone() } else { m.display_name.clone() })
        })
    };
    let close = move |_| menu_open.set(false);
    view! {
        <a class="skip" href="#main">"Skip to content"</a>
        <header class="topbar">
            <button
                type="button"
                class="menu-button"
                aria-controls="nav"
                aria-expanded=move || menu_open.get().to_string()
                on:click=move |_| menu_open.update(|o| *o = !*o)
            >
                <span aria-hidden="true">"☰"</span>
                <span class="sr-only">"Menu"</span>
            </button>
            <A href="/" attr:class="brand">{hub_name}</A>
            <nav id="nav" aria-label="Main" class:open=move || menu_open.get()>
                <A href="/" exact=true on:click=close>"Dashboard"</A>
                <A href="/servers" on:click=close>"Servers"</A>
                <Show when=move || ctx.can(Permission::MetricsRead)>
                    <A href="/resources" on:click=close>"Resources"</A>
                </Show>
                <Show when=move || ctx.can(Permission::AlertRead)>
                    <A href="/alerts" on:click=close>"Alerts"</A>
                </Show>
                <Show when=move || ctx.can(Permission::TemplateManage)>
                    <A href="/templates" on:click=close>"Templates"</A>
                </Show>
                <Show when=move || ctx.can(Permission::UserRead)>
                    <A href="/users" on:click=close>"Users"</A>
                </Show>
                <Show when=move || ctx.can(Permission::RoleRead)>
                    <A href="/roles" on:click=close>"Roles"</A>
                </Show>
                <Show when=move || ctx.can(Permission::AuditRead)>
                    <A href="/audit" on:click=close>"Audit log"</A>
                </Show>
                <Show when=move || ctx.can(Permission::SettingsManage)>
                    <A href="/settings" on:click=close>"Settings"</A>
                </Show>
            </nav>
            <div class="topbar-end">
                <ConnectionIndicator />
                <ThemeSwitch />
                <A href="/profile" attr:class="user" attr:data-testid="user" attr:title="Your profile">{user}</A>
                <button type="button" class="quiet" on:click=sign_out>"Sign out"</button>
            </div>
        </header>
        <main id="main" class="page" tabindex="-1">{children()}</main>
    }
}

/// Connected, reconnecting or offline, for sighted users and screen readers alike.
#[component]
pub fn ConnectionIndicator() -> impl IntoView {
    let ctx = ctx();
    let (class, text) = (
        move || match ctx.status.get() {
            Status::Connected => "live connected",
            Status::Connecting | Status::Reconnecting => "live reconnecting",
            Status::Offline => "live offline",
        },
        move || match ctx.status.get() {
            Status::Connected => "Live",
            Status::Connecting => "Connecting…",
            Status::Reconnecting => "Reconnecting…",
            Status::Offline => "Offline",
        },
    );
    view! {
        <span class=class role="status" aria-live="polite" data-testid="connection" title="Live updates from the hub">
            <span class="dot" aria-hidden="true"></span>
            {text}
        </span>
    }
}

#[component]
fn ThemeSwitch() -> impl IntoView {
    let ctx = ctx();
    let on_change = move |e: leptos::ev::Event| {
        let choice = match event_target_value(&e).as_str() {
            "light" => ThemeChoice::Light,
            "dark" => ThemeChoice::Dark,
            _ => ThemeChoice::System,
        };
        ctx.theme.set(choice);
        apply_theme(choice);
    };
    let selected = move |c: ThemeChoice| move || ctx.theme.get() == c;
    view! {
        <label class="theme">
            <span class="sr-only">"Theme"</span>
            <select on:change=on_change>
                <option value="system" selected=selected(ThemeChoice::System)>"Auto"</option>
                <option value="light" selected=selected(ThemeChoice::Light)>"Light"</option>
                <option value="dark" selected=selected(ThemeChoice::Dark)>"Dark"</option>
            </select>
        </label>
    }
}
