//! One's own account: display name, a new password (the hub's policy answering while one
//! types), and the signed-in devices with "sign out of this one" and "sign out everywhere".

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::{
    api::{
        self, ApiError,
        ops::{
            ChangePassword, EndSession, LogoutAll, Me, MyProfile, PasswordProblem, UpdateUser, change_password,
            end_session, logout_all, me, my_profile, password_problem, update_user,
        },
        session,
    },
    app::ctx,
    components::{
        form::{Confirm, Field, field_error, form_error},
        status::{ErrorNote, Loading},
        table::{Column, Table},
    },
    time,
};

type SessionRow = my_profile::SessionRow;

/// A user agent in a few words: browser and system ("Firefox on Linux"), else the text cut short.
pub fn device(agent: Option<&str>) -> String {
    let Some(ua) = agent.filter(|a| !a.trim().is_empty()) else { return "unknown device".into() };
    let browser =
        [("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
            .into_iter()
            .find(|(mark, _)| ua.contains(mark))
            .map(|(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        _ => ua.chars().take(60).collect(),
    }
}

#[component]
pub fn Profile() -> impl IntoView {
    let ctx = ctx();
    let navigate = use_navigate();
    let sessions = RwSignal::new(None::<Vec<SessionRow>>);
    let error = RwSignal::new(None::<ApiError>);
    let user_id = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::run::<MyProfile>(my_profile::Variables {}).await {
                Ok(data) => {
                    user_id.set(data.me.id);
                    email.set(data.me.email);
                    name.set(data.me.display_name);
                    sessions.set(Some(data.me.sessions));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    provide_context(Callback::new(move |()| load()));

    let name_error = RwSignal::new(None::<ApiError>);
    let renamed = RwSignal::new(false);
    let rename = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let vars = update_user::Variables {
            id: user_id.get_untracked(),
            display_name: Some(name.get_untracked()),
            disabled: None,
        };
        leptos::task::spawn_local(async move {
            match api::run::<UpdateUser>(vars).await {
                Ok(_) => {
                    name_error.set(None);
                    renamed.set(true);
                    // The top bar shows the new name.
                    if let Ok(data) = api::run::<Me>(me::Variables {}).await {
                        ctx.me.set(Some(data.me));
                    }
                }
                Err(e) => name_error.set(Some(e)),
            }
        });
    };

    let everywhere = {
        let navigate = navigate.clone();
        Callback::new(move |()| {
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                match api::run::<LogoutAll>(logout_all::Variables {}).await {
                    Ok(_) => {
                        ctx.farewell.set(Some("You signed out everywhere."));
                        let _ = session::sign_out().await;
                        navigate("/sign-in", Default::default());
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    let columns = vec![
        Column::new("Device", |s: &SessionRow| {
            let words = device(s.user_agent.as_deref());
            match s.current {
                true => view! { {words} " " <span class="badge">"this device"</span> }.into_any(),
                false => words.into_any(),
            }
        }),
        Column::new("Address", |s: &SessionRow| s.ip.clone().unwrap_or_default().into_any()),
        Column::new("Last used", |s: &SessionRow| time::show(&s.last_used_at).into_any())
            .sorted(|a, b| a.last_used_at.cmp(&b.last_used_at)),
        Column::new("Signed in", |s: &SessionRow| time::show(&s.created_at).into_any())
            .sorted(|a, b| a.created_at.cmp(&b.created_at)),
        Column::new("", |s: &SessionRow| match s.current {
            true => ().into_any(),
            false => view! { <EndSessionButton id=s.id.clone() /> }.into_any(),
        }),
    ];
    view! {
        <h1>"Profile"</h1>
        <ErrorNote error=error />
        <section class="card" aria-labelledby="account">
            <h2 id="account">"Account"</h2>
            {move || match email.get() {
                e if e.is_empty() => view! { <Loading /> }.into_any(),
                e => view! { <p>"Signed in as " <strong>{e}</strong></p> }.into_any(),
            }}
            <form class="inline-form" on:submit=rename>
                <Field id="displayName" label="Display name" value=name error=Signal::derive(move || field_error(None, &name_error.get(), "displayName")) />
                <button type="submit">"Save"</button>
                {move || renamed.get().then(|| view! { <span class="muted" role="status">"Saved."</span> })}
            </form>
            {move || form_error(name_error.get(), &["displayName"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
        </section>
        <NewPassword />
        <section class="card" aria-labelledby="sessions">
            <h2 id="sessions">"Where you are signed in"</h2>
            <Table rows=sessions columns=columns key=|s: &SessionRow| s.id.clone() empty="No sessions." label="Sessions" />
            <Confirm label="Sign out everywhere" question="End every session, this one too? Every device must sign in again." on_confirm=everywhere />
        </section>
    }
}

#[component]
fn EndSessionButton(id: String) -> impl IntoView {
    let reload = expect_context::<Callback<()>>();
    let error = RwSignal::new(None::<ApiError>);
    let pending = RwSignal::new(false);
    let id = StoredValue::new(id);
    let end = move |_| {
        if pending.get_untracked() {
            return;
        }
        pending.set(true);
        leptos::task::spawn_local(async move {
            match api::run::<EndSession>(end_session::Variables { id: id.get_value() }).await {
                Ok(_) => reload.run(()),
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    view! {
        <button type="button" class="small" disabled=move || pending.get() on:click=end>"Sign out of this one"</button>
        <ErrorNote error=error />
    }
}

/// A new password: the hub's policy says what is wrong a moment after typing stops; once changed
/// every session ends (the hub's rule), so this one signs out and asks to sign in again.
#[component]
fn NewPassword() -> impl IntoView {
    let ctx = ctx();
    let navigate = use_navigate();
    let current = RwSignal::new(String::new());
    let fresh = RwSignal::new(String::new());
    let again = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<ApiError>);
    let pending = RwSignal::new(false);
    let typed = RwSignal::new(0u32);
    Effect::new(move |_| {
        let text = fresh.get();
        let n = typed.get_untracked().wrapping_add(1);
        typed.update_untracked(|t| *t = n);
        if text.is_empty() {
            problem.set(None);
            return;
        }
        leptos::task::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(400).await;
            if typed.get_untracked() != n {
                return; // typed on: only the last text is asked about
            }
            if let Ok(data) = api::run::<PasswordProblem>(password_problem::Variables { password: text }).await
                && typed.get_untracked() == n
            {
                problem.set(data.password_problem);
            }
        });
    });
    let mismatch = move || {
        let (a, b) = (fresh.get(), again.get());
        (!b.is_empty() && a != b).then(|| "The two new passwords differ.".to_owned())
    };
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        if pending.get_untracked() || mismatch().is_some() {
            return;
        }
        pending.set(true);
        let navigate = navigate.clone();
        let vars = change_password::Variables {
            current_password: current.get_untracked(),
            new_password: fresh.get_untracked(),
        };
        leptos::task::spawn_local(async move {
            match api::run::<ChangePassword>(vars).await {
                Ok(_) => {
                    // The hub ended every session; the socket may have signed this tab out already.
                    ctx.farewell
                        .set(Some("Your password was changed and every session ended: sign in with the new one."));
                    let _ = session::sign_out().await;
                    navigate("/sign-in", Default::default());
                }
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    view! {
        <section class="card" aria-labelledby="password">
            <h2 id="password">"Password"</h2>
            <form on:submit=submit>
                <Field id="currentPassword" label="Current password" kind="password" autocomplete="current-password" value=current required=true
                    error=Signal::derive(move || field_error(None, &error.get(), "currentPassword")) />
                <Field id="newPassword" label="New password" kind="password" autocomplete="new-password" value=fresh required=true
                    hint="At least 8 characters; a long phrase is best. Every session ends when it changes."
                    error=Signal::derive(move || field_error(problem.get(), &error.get(), "newPassword")) />
                <Field id="newPasswordAgain" label="New password again" kind="password" autocomplete="new-password" value=again required=true
                    error=Signal::derive(mismatch) />
                {move || form_error(error.get(), &["currentPassword", "newPassword"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
                <button type="submit" class="primary" disabled=move || pending.get()>"Change password"</button>
            </form>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn devices_in_words() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(device(Some(chrome)), "Chrome on Linux");
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0";
        assert_eq!(device(Some(firefox)), "Firefox on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device(Some(safari)), "Safari on iOS");
        assert_eq!(device(Some("curl/8.5.0")), "curl/8.5.0");
        assert_eq!(device(None), "unknown device");
    }
}
