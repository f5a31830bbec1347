//! Sign in, register, forgot password and reset password: the pages outside the shell. None of
//! them tells whether an email has an account.

use leptos::prelude::*;
use leptos_router::{
    components::A,
    hooks::{use_navigate, use_query_map},
};
use shared::{session::RegisterRequest, validation};

use crate::{
    api::{
        self, ApiError,
        ops::{RequestPasswordReset, ResetPassword as ResetPasswordOp, request_password_reset, reset_password},
        session::{self, Phase},
    },
    app::ctx,
    components::form::{Field, field_error, form_error},
};

/// Where to go after signing in: the page that sent the user here, if it is one of ours: a path
/// of this site, never another origin. Browsers drop tabs and newlines from URLs and read `\`
/// as `/`, so `/\t/evil.example` would be `//evil.example`: no control, space or backslash passes.
pub fn next_page(next: Option<String>) -> String {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    })
    .unwrap_or_else(|| "/".into())
}

#[cfg(test)]
mod tests {
    use super::next_page;

    #[test]
    fn only_paths_of_this_site_are_followed() {
        let go = |n: &str| next_page(Some(n.to_owned()));
        assert_eq!(go("/servers/3?x=1"), "/servers/3?x=1");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "https://evil.example",
            "evil",
            "/ok\r",
            "/a b",
            "",
        ] {
            assert_eq!(go(bad), "/", "{bad:?}");
        }
        assert_eq!(next_page(None), "/");
    }
}

#[component]
fn AuthFrame(#[prop(into)] title: String, children: Children) -> impl IntoView {
    let ctx = ctx();
    let hub = move || ctx.hub.with(|h| h.as_ref().map_or_else(|| "Kutanga Hub".to_owned(), |h| h.name.clone()));
    view! {
        <main class="auth" id="main">
            <p class="brand">{hub}</p>
            <h1>{title}</h1>
            {children()}
        </main>
    }
}

#[component]
pub fn SignIn() -> impl IntoView {
    let ctx = ctx();
    let query = use_query_map();
    let navigate = use_navigate();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let pending = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let email_error = RwSignal::new(None::<String>);
    let next = move || next_page(query.with_untracked(|q| q.get("next")));

    // Signed in already (or by another tab meanwhile): on to the app.
    Effect::new({
        let navigate = navigate.clone();
        move |_| {
            if ctx.phase.get() == Phase::SignedIn {
                navigate(&next(), Default::default());
            }
        }
    });

    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let checked = validation::normalize_email(&email.get_untracked());
        email_error.set(checked.as_ref().err().map(|e| e.message.clone()));
        let Ok(address) = checked else { return };
        pending.set(true);
        error.set(None);
        let secret = password.get_untracked();
        leptos::task::spawn_local(async move {
            ctx.farewell.set(None);
            if let Err(e) = session::sign_in(address, secret).await {
                error.set(Some(e));
            }
            pending.set(false);
        });
    };
    let registration_open = move || ctx.hub.with(|h| h.as_ref().is_some_and(|h| h.registration_open));
    view! {
        <AuthFrame title="Sign in">
            {move || ctx.farewell.get().map(|words| view! { <p class="note" role="status">{words}</p> })}
            <form on:submit=submit novalidate>
                <Field id="email" label="Email" kind="email" autocomplete="username" value=email required=true
                    error=Signal::derive(move || field_error(email_error.get(), &error.get(), "email")) />
                <Field id="password" label="Password" kind="password" autocomplete="current-password" value=password required=true
                    error=Signal::derive(move || field_error(None, &error.get(), "password")) />
                {move || form_error(error.get(), &["email", "password"]).map(|e| view! { <p class="note error" role="alert" data-testid="sign-in-error">{e.words()}</p> })}
                <button type="submit" class="primary" disabled=move || pending.get()>
                    {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
            <p class="links">
                <A href="/forgot-password">"Forgot your password?"</A>
                <Show when=registration_open>
                    " · " <A href="/register">"Create an account"</A>
                </Show>
            </p>
        </AuthFrame>
    }
}

#[component]
pub fn Register() -> impl IntoView {
    let ctx = ctx();
    let query = use_query_map();
    let navigate = use_navigate();
    let invitation = query.with_untracked(|q| q.get("invitation")).filter(|i| !i.is_empty());
    let has_invitation = invitation.is_some();
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let pending = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let local = RwSignal::new(Vec::<(&'static str, String)>::new());
    let local_for = move |field: &'static str| {
        Signal::derive(move || {
            let own = local.with(|l| l.iter().find(|(f, _)| *f == field).map(|(_, m)| m.clone()));
            field_error(own, &error.get(), field)
        })
    };
    Effect::new({
        let navigate = navigate.clone();
        move |_| {
            if ctx.phase.get() == Phase::SignedIn {
                navigate("/", Default::default());
            }
        }
    });
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let mut problems = Vec::new();
        let address =
            validation::normalize_email(&email.get_untracked()).map_err(|e| problems.push((e.field, e.message))).ok();
        let display = name.get_untracked();
        let display = if display.trim().is_empty() {
            None
        } else {
            validation::display_name(&display).map_err(|e| problems.push((e.field, e.message))).ok()
        };
        if let Err(e) = validation::password_length("password", &password.get_untracked(), 8) {
            problems.push((e.field, e.message));
        }
        let done = problems.is_empty();
        local.set(problems);
        let Some(address) = address.filter(|_| done) else { return };
        pending.set(true);
        error.set(None);
        let request = RegisterRequest {
            email: address,
            password: password.get_untracked(),
            display_name: display,
            invitation: invitation.clone(),
        };
        leptos::task::spawn_local(async move {
            if let Err(e) = session::register(request).await {
                error.set(Some(e));
            }
            pending.set(false);
        });
    };
    let open = move || has_invitation || ctx.hub.with(|h| h.as_ref().is_some_and(|h| h.registration_open));
    view! {
        <AuthFrame title="Create an account">
            <Show
                when=open
                fallback=|| view! {
                    <p>"This hub takes new accounts by invitation only. Ask an admin for an invitation link."</p>
                    <p><A href="/sign-in">"Sign in"</A></p>
                }
            >
                <form on:submit=submit.clone() novalidate>
                    <Field id="email" label="Email" kind="email" autocomplete="email" value=email required=true error=local_for("email") />
                    <Field id="displayName" label="Display name (optional)" autocomplete="nickname" value=name error=local_for("displayName") />
                    <Field id="password" label="Password" kind="password" autocomplete="new-password" value=password required=true
                        hint="At least 8 characters; a long phrase is best." error=local_for("password") />
                    {move || form_error(error.get(), &["email", "displayName", "password"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
                    <button type="submit" class="primary" disabled=move || pending.get()>
                        {move || if pending.get() { "Creating…" } else { "Create the account" }}
                    </button>
                </form>
                <p class="links"><A href="/sign-in">"I have an account"</A></p>
            </Show>
        </AuthFrame>
    }
}

#[component]
pub fn ForgotPassword() -> impl IntoView {
    let email = RwSignal::new(String::new());
    let pending = RwSignal::new(false);
    let sent = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let email_error = RwSignal::new(None::<String>);
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let checked = validation::normalize_email(&email.get_untracked());
        email_error.set(checked.as_ref().err().map(|e| e.message.clone()));
        let Ok(address) = checked else { return };
        pending.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::run::<RequestPasswordReset>(request_password_reset::Variables { email: address }).await {
                Ok(_) => sent.set(true),
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    view! {
        <AuthFrame title="Forgot your password?">
            <Show
                when=move || !sent.get()
                fallback=|| view! {
                    <p role="status">"If an account has this email, a link to set a new password is on its way. It works once, for a short time."</p>
                    <p><A href="/sign-in">"Back to sign in"</A></p>
                }
            >
                <p>"Give the email of your account; we send a link to set a new password."</p>
                <form on:submit=submit novalidate>
                    <Field id="email" label="Email" kind="email" autocomplete="username" value=email required=true
                        error=Signal::derive(move || field_error(email_error.get(), &error.get(), "email")) />
                    {move || form_error(error.get(), &["email"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
                    <button type="submit" class="primary" disabled=move || pending.get()>"Send the link"</button>
                </form>
                <p class="links"><A href="/sign-in">"Back to sign in"</A></p>
            </Show>
        </AuthFrame>
    }
}

#[component]
pub fn ResetPassword() -> impl IntoView {
    let query = use_query_map();
    let token = query.with_untracked(|q| q.get("token")).unwrap_or_default();
    let password = RwSignal::new(String::new());
    let pending = RwSignal::new(false);
    let done = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let local = RwSignal::new(None::<String>);
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let new = password.get_untracked();
        local.set(validation::password_length("newPassword", &new, 8).err().map(|e| e.message));
        if local.get_untracked().is_some() {
            return;
        }
        pending.set(true);
        error.set(None);
        let token = token.clone();
        leptos::task::spawn_local(async move {
            match api::run::<ResetPasswordOp>(reset_password::Variables { token, new_password: new }).await {
                Ok(_) => done.set(true),
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    view! {
        <AuthFrame title="Set a new password">
            <Show
                when=move || !done.get()
                fallback=|| view! {
                    <p role="status">"Your password is changed and every session of your account has ended. Sign in with the new password."</p>
                    <p><A href="/sign-in">"Sign in"</A></p>
                }
            >
                <form on:submit=submit.clone() novalidate>
                    <Field id="newPassword" label="New password" kind="password" autocomplete="new-password" value=password required=true
                        hint="At least 8 characters; a long phrase is best."
                        error=Signal::derive(move || field_error(local.get(), &error.get(), "newPassword")) />
                    {move || form_error(error.get(), &["newPassword"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
                    <button type="submit" class="primary" disabled=move || pending.get()>"Set the password"</button>
                </form>
            </Show>
        </AuthFrame>
    }
}
