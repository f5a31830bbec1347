//! The app: its shared state (session, live connection, the signed-in user, theme), the router
//! and the shell around the signed-in pages.

use leptos::prelude::*;
use leptos_router::{
    components::{Outlet, ParentRoute, Route, Router, Routes},
    hooks::use_location,
    path,
};
use shared::Permission;

use crate::{
    api::{
        self,
        ops::{AccessFeed, HubInfo, Me, access_feed, hub_info, me},
        session::{self, Phase},
    },
    components::{shell::Shell, status::NotFound},
    live,
    pages::{alerts, audit, auth, dashboard, profile, resources, roles, server, servers, settings, templates, users},
};

/// The light and dark look: the system's unless the user picked one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeChoice {
    System,
    Light,
    Dark,
}

/// What every page may read.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub phase: RwSignal<Phase>,
    pub status: RwSignal<live::Status>,
    pub me: RwSignal<Option<me::MeMe>>,
    pub hub: RwSignal<Option<hub_info::HubInfoHubInfo>>,
    pub theme: RwSignal<ThemeChoice>,
    /// The system prefers dark.
    pub system_dark: RwSignal<bool>,
    /// Bumped when the window is resized (charts redraw).
    pub resized: RwSignal<u32>,
    /// Why the session ended, when the app ended it on purpose (the sign-in page says it).
    pub farewell: RwSignal<Option<&'static str>>,
    /// Bumped when the hub says the user's access changed (`myAccess`): lists load again.
    pub access: RwSignal<u64>,
}

pub fn ctx() -> Ctx {
    expect_context::<Ctx>()
}

impl Ctx {
    /// Whether the signed-in user holds a global permission (tracked).
    pub fn can(&self, key: Permission) -> bool {
        self.me.with(|me| me.as_ref().is_some_and(|m| m.permissions.iter().any(|p| p == key.key())))
    }

    /// Whether pages are dark now (tracked).
    pub fn dark(&self) -> bool {
        match self.theme.get() {
            ThemeChoice::System => self.system_dark.get(),
            ThemeChoice::Light => false,
            ThemeChoice::Dark => true,
        }
    }
}

const THEME_KEY: &str = "kutanga.theme";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn stored_theme() -> ThemeChoice {
    match storage().and_then(|s| s.get_item(THEME_KEY).ok().flatten()).as_deref() {
        Some("light") => ThemeChoice::Light,
        Some("dark") => ThemeChoice::Dark,
        _ => ThemeChoice::System,
    }
}

/// Remembers the choice and sets `data-theme` on the document (CSS follows it).
pub fn apply_theme(choice: ThemeChoice) {
    let value = match choice {
        ThemeChoice::System => None,
        ThemeChoice::Light => Some("light"),
        ThemeChoice::Dark => Some("dark"),
    };
    if let Some(s) = storage() {
        let _ = match value {
            Some(v) => s.set_item(THEME_KEY, v),
            None => s.remove_item(THEME_KEY),
        };
    }
    if let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
        let _ = match value {
            Some(v) => root.set_attribute("data-theme", v),
            None => root.remove_attribute("data-theme"),
        };
    }
}

fn watch_window(system_dark: RwSignal<bool>, resized: RwSignal<u32>) {
    use wasm_bindgen::{JsCast, closure::Closure};
    let Some(window) = web_sys::window() else { return };
    if let Ok(Some(query)) = window.match_media("(prefers-color-scheme: dark)") {
        system_dark.set(query.matches());
        let on_change =
            Closure::<dyn FnMut(web_sys::MediaQueryListEvent)>::new(move |e: web_sys::MediaQueryListEvent| {
                system_dark.set(e.matches())
            });
        let _ = query.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
        on_change.forget();
    }
    let on_resize = Closure::<dyn FnMut()>::new(move || resized.update(|n| *n = n.wrapping_add(1)));
    let _ = window.add_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
    on_resize.forget();
}

#[component]
pub fn App() -> impl IntoView {
    let phase = session::install();
    let status = live::install();
    let ctx = Ctx {
        phase,
        status,
        me: RwSignal::new(None),
        hub: RwSignal::new(None),
        theme: RwSignal::new(stored_theme()),
        system_dark: RwSignal::new(false),
        resized: RwSignal::new(0),
        farewell: RwSignal::new(None),
        access: RwSignal::new(0),
    };
    provide_context(ctx);
    apply_theme(ctx.theme.get_untracked());
    watch_window(ctx.system_dark, ctx.resized);

    leptos::task::spawn_local(async move {
        if let Ok(data) = api::run::<HubInfo>(hub_info::Variables {}).await {
            ctx.hub.set(Some(data.hub_info));
        }
    });
    // Signed in: the live connection and the user (again after each refresh, so that changed
    // roles show without a reload).
    let epoch = session::epoch();
    let feed = StoredValue::new(None::<live::SubId>);
    Effect::new(move |_| {
        let _ = epoch.get();
        let _ = ctx.access.get();
        match phase.get() {
            Phase::SignedIn => {
                live::connect();
                // The hub says when this user's roles or grants change: `me` and the lists are
                // read again (the navigation and the dashboard change without a reload).
                if feed.with_value(Option::is_none) {
                    let sub = live::subscribe::<AccessFeed>(
                        access_feed::Variables {},
                        move |event| {
                            if event.is_ok() {
                                ctx.access.update(|n| *n = n.wrapping_add(1));
                            }
                        },
                        None,
                    );
                    feed.set_value(Some(sub));
                }
                leptos::task::spawn_local(async move {
                    if let Ok(data) = api::run::<Me>(me::Variables {}).await {
                        ctx.me.set(Some(data.me));
                    }
                });
            }
            Phase::SignedOut => {
                ctx.me.set(None);
                if let Some(sub) = feed.try_update_value(Option::take).flatten() {
                    live::unsubscribe(sub);
                }
            }
            Phase::Resuming => {}
        }
    });

    view! {
        <Router>
            <Routes fallback=|| view! { <NotFound /> }>
                <Route path=path!("/sign-in") view=auth::SignIn />
                <Route path=path!("/register") view=auth::Register />
                <Route path=path!("/forgot-password") view=auth::ForgotPassword />
                <Route path=path!("/reset-password") view=auth::ResetPassword />
                <ParentRoute path=path!("") view=SignedInShell>
                    <Route path=path!("") view=dashboard::Dashboard />
                    <Route path=path!("servers") view=servers::ServerList />
                    <Route path=path!("servers/new") view=servers::NewServer />
                    <Route path=path!("servers/:id") view=server::ServerDetail />
                    <Route path=path!("servers/:id/edit") view=servers::EditServer />
                    <Route path=path!("resources") view=resources::Resources />
                    <Route path=path!("alerts") view=alerts::Alerts />
                    <Route path=path!("audit") view=audit::Audit />
                    <Route path=path!("roles") view=roles::Roles />
                    <Route path=path!("users") view=users::Users />
                    <Route path=path!("profile") view=profile::Profile />
                    <Route path=path!("settings") view=settings::Settings />
                    <Route path=path!("templates") view=templates::Templates />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The signed-in pages inside the shell; the sign-in page (coming back here after) otherwise.
#[component]
fn SignedInShell() -> impl IntoView {
    let ctx = ctx();
    let location = use_location();
    move || match ctx.phase.get() {
        Phase::Resuming => view! { <p class="splash" role="status">"Loading…"</p> }.into_any(),
        Phase::SignedOut => {
            let here = format!("{}{}", location.pathname.get_untracked(), location.search.get_untracked());
            let next =
                if here == "/" { String::new() } else { format!("?next={}", js_sys::encode_uri_component(&here)) };
            view! { <leptos_router::components::Redirect path=format!("/sign-in{next}") /> }.into_any()
        }
        Phase::SignedIn => view! {
            <Shell>
                <Outlet />
            </Shell>
        }
        .into_any(),
    }
}
