//! Users: search and page through accounts, create one (its password generated here and shown
//! once), rename, disable and enable, give and take roles (only those the caller may grant),
//! end an account's sessions, delete it after typing its address; invitations made, copied,
//! revoked and seen used.

use std::collections::BTreeSet;

use leptos::prelude::*;
use shared::Permission;

use crate::{
    api::{
        self, ApiError,
        ops::{
            CreateInvitation, CreateUser, DeleteUser, EndUserSessions, Invitations, RevokeInvitation, SetUserRoles,
            UpdateUser, UserList, UserSessions, create_invitation, create_user, delete_user, end_user_sessions,
            invitations, revoke_invitation, set_user_roles, update_user, user_list, user_sessions,
        },
    },
    app::ctx,
    collect,
    components::{
        form::{Confirm, Field, ShownOnce, field_error, form_error},
        status::{ErrorNote, Require},
        table::{Column, Table},
    },
    time,
};

type UserRow = user_list::UserListUsers;
type RoleRow = user_list::UserListRoles;
type InvitationRow = invitations::InvitationsInvitations;

const PAGE: i64 = 50;

/// What the rows' panels share with the page.
#[derive(Clone, Copy)]
struct Shared {
    roles: RwSignal<Vec<RoleRow>>,
    reload: Callback<()>,
    /// The last change's word and whose row it was (the reload rebuilds the row's panel).
    notice: RwSignal<Option<(String, &'static str)>>,
}

/// The roles the caller may hand out: those whose every key the caller holds (the API's rule).
pub fn grantable<'a>(roles: &'a [RoleRow], mine: &[String]) -> Vec<&'a RoleRow> {
    roles.iter().filter(|r| r.permissions.iter().all(|k| mine.contains(k))).collect()
}

/// A password for a new account: 20 characters from 57 unambiguous letters and digits
/// (about 117 bits), from the browser's cryptographic generator.
/// None where the browser has no `crypto.getRandomValues`.
pub fn generate_password() -> Option<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 64];
    let crypto = web_sys::window()?.crypto().ok()?;
    crypto.get_random_values_with_u8_array(&mut bytes).ok()?;
    Some(password_from(&bytes, ALPHABET, 20))
}

/// `len` characters of `alphabet` from random bytes, without modulo bias (bytes at or above the
/// largest multiple of the alphabet's size are skipped).
pub fn password_from(bytes: &[u8], alphabet: &[u8], len: usize) -> String {
    let limit = 256 - 256 % alphabet.len();
    bytes
        .iter()
        .filter(|&&b| usize::from(b) < limit)
        .take(len)
        .map(|&b| alphabet[usize::from(b) % alphabet.len()] as char)
        .collect()
}

#[component]
pub fn Users() -> impl IntoView {
    view! {
        <Require permission=Permission::UserRead>
            <UsersPage />
        </Require>
    }
}

#[component]
fn UsersPage() -> impl IntoView {
    let ctx = ctx();
    let rows = RwSignal::new(None::<Vec<UserRow>>);
    let roles = RwSignal::new(Vec::<RoleRow>::new());
    let error = RwSignal::new(None::<ApiError>);
    let search = RwSignal::new(String::new());
    // The `after` of each page seen, to go back; the last is the current page's.
    let cursors = RwSignal::new(vec![None::<String>]);
    let more = RwSignal::new(false);
    let load = move || {
        let after = cursors.with_untracked(|c| c.last().cloned().flatten());
        let term = Some(search.get_untracked().trim().to_owned()).filter(|s| !s.is_empty());
        leptos::task::spawn_local(async move {
            match api::run::<UserList>(user_list::Variables { search: term, first: Some(PAGE), after }).await {
                Ok(data) => {
                    more.set(data.users.len() as i64 == PAGE);
                    rows.set(Some(data.users));
                    roles.set(data.roles);
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    provide_context(Shared { roles, reload: Callback::new(move |()| load()), notice: RwSignal::new(None) });
    // A new search starts from the first page, a moment after the typing stops.
    let typed = RwSignal::new(0u32);
    let on_search = move |e: leptos::ev::Event| {
        search.set(event_target_value(&e));
        let n = typed.get_untracked().wrapping_add(1);
        typed.set(n);
        leptos::task::spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(300).await;
            if typed.get_untracked() == n {
                cursors.set(vec![None]);
                load();
            }
        });
    };
    let next = move |_| {
        let last = rows.with_untracked(|r| r.as_ref().and_then(|r| r.last()).map(|u| u.id.clone()));
        if let Some(last) = last {
            cursors.update(|c| c.push(Some(last)));
            load();
        }
    };
    let previous = move |_| {
        cursors.update(|c| {
            if c.len() > 1 {
                c.pop();
            }
        });
        load();
    };
    let columns = vec![
        Column::new("Name", |u: &UserRow| {
            view! { <strong>{u.display_name.clone()}</strong> <br /> <span class="muted">{u.email.clone()}</span> }
                .into_any()
        })
        .sorted(|a, b| a.display_name.to_lowercase().cmp(&b.display_name.to_lowercase())),
        Column::new("Roles", |u: &UserRow| {
            u.roles.iter().map(|r| r.name.clone()).collect::<Vec<_>>().join(", ").into_any()
        }),
        Column::new("State", |u: &UserRow| {
            if u.disabled {
                view! { <span class="badge state-crashed">"disabled"</span> }.into_any()
            } else {
                view! { <span class="badge state-running">"active"</span> }.into_any()
            }
        })
        .sorted(|a, b| a.disabled.cmp(&b.disabled)),
        Column::new("Last sign-in", |u: &UserRow| {
            u.last_login_at.as_deref().map_or_else(|| "never".to_owned(), time::show).into_any()
        })
        .sorted(|a, b| a.last_login_at.cmp(&b.last_login_at)),
        Column::new("Created", |u: &UserRow| time::show(&u.created_at).into_any())
            .sorted(|a, b| a.created_at.cmp(&b.created_at)),
    ];
    view! {
        <h1>"Users"</h1>
        <ErrorNote error=error />
        <div class="filters">
            <label>
                "Search "
                <input type="search" placeholder="Email or name" prop:value=move || search.get() on:input=on_search />
            </label>
        </div>
        <Table rows=rows columns=columns key=|u: &UserRow| u.id.clone() empty="No account matches." label="Users"
            page_size=PAGE as usize details=|u: &UserRow| view! { <UserPanel user=u.clone() /> }.into_any() />
        <Show when=move || cursors.with(|c| c.len() > 1) || more.get()>
            <nav class="pager" aria-label="Pages of users">
                <button type="button" class="small" disabled=move || cursors.with(|c| c.len() <= 1) on:click=previous>"Previous"</button>
                <button type="button" class="small" disabled=move || !more.get() on:click=next>"Next"</button>
            </nav>
        </Show>
        <Show when=move || ctx.can(Permission::UserManage)>
            <NewUser />
            <InvitationsSection />
        </Show>
    }
}

/// Role checkboxes: the grantable ones enabled, the others shown but locked.
#[component]
fn RolePicker(chosen: RwSignal<BTreeSet<String>>, id: String) -> impl IntoView {
    let ctx = ctx();
    let shared = expect_context::<Shared>();
    move || {
        let mine = ctx.me.with(|m| m.as_ref().map(|m| m.permissions.clone()).unwrap_or_default());
        shared.roles.with(|roles| {
            let allowed: Vec<String> = grantable(roles, &mine).into_iter().map(|r| r.id.clone()).collect();
            roles
                .iter()
                .map(|r| {
                    let rid = r.id.clone();
                    let locked = !allowed.contains(&rid);
                    let input_id = format!("{id}-role-{rid}");
                    let checked = { let rid = rid.clone(); move || chosen.with(|c| c.contains(&rid)) };
                    let toggle = move |e: leptos::ev::Event| {
                        let on = event_target_checked(&e);
                        chosen.update(|c| { if on { c.insert(rid.clone()); } else { c.remove(&rid); } });
                    };
                    view! {
                        <span class="check" title=locked.then_some("You do not hold every permission of this role")>
                            <input type="checkbox" id=input_id.clone() prop:checked=checked disabled=locked on:change=toggle />
                            <label for=input_id>{r.name.clone()}</label>
                        </span>
                    }
                })
                .collect_view()
        })
    }
}

/// One account's panel, opened from its row.
#[component]
fn UserPanel(user: UserRow) -> impl IntoView {
    let ctx = ctx();
    let shared = expect_context::<Shared>();
    let id = StoredValue::new(user.id.clone());
    let error = RwSignal::new(None::<ApiError>);
    let pending = RwSignal::new(false);
    let name = RwSignal::new(user.display_name.clone());
    let chosen = RwSignal::new(collect::set(user.roles.iter().map(|r| r.id.clone())));
    let sessions = RwSignal::new(None::<usize>);
    let manage = move || ctx.can(Permission::UserManage);
    if ctx.can(Permission::UserManage) {
        leptos::task::spawn_local(async move {
            if let Ok(data) = api::run::<UserSessions>(user_sessions::Variables { id: id.get_value() }).await {
                sessions.set(data.user.map(|u| u.sessions.len()));
            }
        });
    }
    // Runs one change; the list reloads after it (the row shows the result).
    let act = move |what: &'static str,
                    run: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>>>>| {
        if pending.get_untracked() {
            return;
        }
        pending.set(true);
        shared.notice.set(None);
        leptos::task::spawn_local(async move {
            match run.await {
                Ok(()) => {
                    error.set(None);
                    shared.notice.set(Some((id.get_value(), what)));
                    shared.reload.run(());
                }
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    let rename = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let vars =
            update_user::Variables { id: id.get_value(), display_name: Some(name.get_untracked()), disabled: None };
        act("Renamed.", Box::pin(async move { api::run::<UpdateUser>(vars).await.map(drop) }));
    };
    let save_roles = move |_| {
        let vars = set_user_roles::Variables {
            user_id: id.get_value(),
            role_ids: chosen.get_untracked().into_iter().collect(),
        };
        act("Roles saved.", Box::pin(async move { api::run::<SetUserRoles>(vars).await.map(drop) }));
    };
    let disabled = user.disabled;
    let toggle_disabled = move |_| {
        let vars = update_user::Variables { id: id.get_value(), display_name: None, disabled: Some(!disabled) };
        act(
            if disabled { "Enabled." } else { "Disabled: their sessions ended." },
            Box::pin(async move { api::run::<UpdateUser>(vars).await.map(drop) }),
        );
    };
    let end_sessions = move |_| {
        let vars = end_user_sessions::Variables { user_id: id.get_value() };
        act(
            "Every session of theirs ended.",
            Box::pin(async move { api::run::<EndUserSessions>(vars).await.map(|_| sessions.set(Some(0))) }),
        );
    };
    let delete = Callback::new(move |()| {
        let vars = delete_user::Variables { id: id.get_value() };
        act("Deleted.", Box::pin(async move { api::run::<DeleteUser>(vars).await.map(drop) }));
    });
    let email = user.email.clone();
    let question = format!("Delete {email}? Their audit entries stay; this cannot be undone.");
    view! {
        <div class="user-panel" data-user=email.clone()>
            <Show when=manage>
                <form class="inline-form" on:submit=rename>
                    <Field id="displayName" label="Display name" value=name error=Signal::derive(move || field_error(None, &error.get(), "displayName")) />
                    <button type="submit" disabled=move || pending.get()>"Rename"</button>
                </form>
            </Show>
            <Show when=move || ctx.can(Permission::RoleManage)>
                <fieldset class="roles-pick">
                    <legend>"Roles"</legend>
                    <RolePicker chosen=chosen id=id.get_value() />
                    <button type="button" on:click=save_roles disabled=move || pending.get()>"Save roles"</button>
                </fieldset>
            </Show>
            <Show when=manage>
                <div class="actions">
                    <button type="button" on:click=toggle_disabled disabled=move || pending.get()>
                        {if disabled { "Enable" } else { "Disable" }}
                    </button>
                    <button type="button" on:click=end_sessions disabled=move || pending.get() || sessions.get() == Some(0)>
                        {move || match sessions.get() {
                            Some(1) => "End their 1 session".to_owned(),
                            Some(n) => format!("End their {n} sessions"),
                            None => "End their sessions".to_owned(),
                        }}
                    </button>
                    <Confirm label="Delete" question=question.clone()
                        typed=user.email.clone() on_confirm=delete />
                </div>
            </Show>
            <Show when=move || ctx.can(Permission::ServerGrant)>
                <h3>"Server access"</h3>
                <crate::pages::access::UserServerAccess user_id=id.get_value() />
            </Show>
            {move || shared.notice.get().filter(|(who, _)| *who == id.get_value()).map(|(_, n)| view! { <p class="muted" role="status">{n}</p> })}
            {move || form_error(error.get(), &["displayName"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
        </div>
    }
}

/// A new account: its password is made here and shown once.
#[component]
fn NewUser() -> impl IntoView {
    let shared = expect_context::<Shared>();
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let chosen = RwSignal::new(BTreeSet::<String>::new());
    let error = RwSignal::new(None::<ApiError>);
    let pending = RwSignal::new(false);
    let made = RwSignal::new(None::<(String, String)>);
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        if pending.get_untracked() {
            return;
        }
        let Some(password) = generate_password() else {
            error.set(Some(ApiError::coded(
                shared::ErrorCode::BadUserInput,
                "this browser cannot make a safe password (it lacks crypto.getRandomValues); use another",
            )));
            return;
        };
        pending.set(true);
        let address = email.get_untracked().trim().to_owned();
        let vars = create_user::Variables {
            email: address.clone(),
            password: password.clone(),
            display_name: Some(name.get_untracked().trim().to_owned()).filter(|n| !n.is_empty()),
            role_ids: Some(chosen.get_untracked().into_iter().collect()),
        };
        leptos::task::spawn_local(async move {
            match api::run::<CreateUser>(vars).await {
                Ok(_) => {
                    error.set(None);
                    made.set(Some((address, password)));
                    email.set(String::new());
                    name.set(String::new());
                    chosen.set(BTreeSet::new());
                    shared.reload.run(());
                }
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    view! {
        <section class="card" aria-labelledby="new-user">
            <h2 id="new-user">"New user"</h2>
            <form on:submit=submit>
                <Field id="email" label="Email" kind="email" value=email required=true error=Signal::derive(move || field_error(None, &error.get(), "email")) />
                <Field id="new-display-name" label="Display name (optional)" value=name error=Signal::derive(move || field_error(None, &error.get(), "displayName")) />
                <fieldset class="roles-pick">
                    <legend>"Roles"</legend>
                    <RolePicker chosen=chosen id="new-user".to_owned() />
                </fieldset>
                {move || form_error(error.get(), &["email", "displayName"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
                <button type="submit" class="primary" disabled=move || pending.get()>"Create user"</button>
            </form>
            {move || made.get().map(|(who, password)| view! {
                <ShownOnce label=format!("Password for {who} (give it to them; they can change it on their profile)") value=password />
            })}
        </section>
    }
}

/// Invitations: made for anyone or one address, with a role; the link shown once; revoked while
/// unused; used ones show who registered.
#[component]
fn InvitationsSection() -> impl IntoView {
    let ctx = ctx();
    let shared = expect_context::<Shared>();
    let list = RwSignal::new(None::<Vec<InvitationRow>>);
    let error = RwSignal::new(None::<ApiError>);
    let email = RwSignal::new(String::new());
    let role = RwSignal::new(String::new());
    let link = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::run::<Invitations>(invitations::Variables {}).await {
                Ok(data) => list.set(Some(data.invitations)),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        if pending.get_untracked() {
            return;
        }
        pending.set(true);
        let vars = create_invitation::Variables {
            email: Some(email.get_untracked().trim().to_owned()).filter(|e| !e.is_empty()),
            role_id: Some(role.get_untracked()).filter(|r| !r.is_empty()),
        };
        leptos::task::spawn_local(async move {
            match api::run::<CreateInvitation>(vars).await {
                Ok(data) => {
                    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
                    let token = data.create_invitation.token.unwrap_or_default();
                    link.set(Some(format!("{origin}/register?invitation={}", js_sys::encode_uri_component(&token))));
                    email.set(String::new());
                    error.set(None);
                    load();
                }
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    provide_context(Callback::new(move |()| load()));
    let columns = vec![
        Column::new("For", |i: &InvitationRow| {
            i.email.clone().unwrap_or_else(|| "anyone with the link".into()).into_any()
        }),
        Column::new("Role", |i: &InvitationRow| i.role_name.clone().unwrap_or_else(|| "User".into()).into_any()),
        Column::new("Made", |i: &InvitationRow| time::show(&i.created_at).into_any())
            .sorted(|a, b| a.created_at.cmp(&b.created_at)),
        Column::new("State", |i: &InvitationRow| match (&i.used_at, &i.used_by) {
            (Some(at), by) => {
                format!("used {} by {}", time::show(at), by.as_ref().map_or("a deleted account", |b| b.email.as_str()))
                    .into_any()
            }
            (None, _) => format!("open until {}", time::show(&i.expires_at)).into_any(),
        }),
        Column::new("", |i: &InvitationRow| match i.used_at {
            Some(_) => ().into_any(),
            None => view! { <RevokeInvitationButton id=i.id.clone() /> }.into_any(),
        }),
    ];
    view! {
        <section class="card" aria-labelledby="invitations">
            <h2 id="invitations">"Invitations"</h2>
            {move || ctx.hub.with(|h| h.as_ref().is_some_and(|h| h.registration_open)).then(|| view! {
                <p class="muted">"Registration is open on this hub: anyone may register without an invitation; one still chooses the role."</p>
            })}
            <form class="inline-form" on:submit=submit>
                <Field id="invite-email" label="Email (optional: anyone with the link)" kind="email" value=email error=Signal::derive(move || field_error(None, &error.get(), "email")) />
                <label>
                    "Role"
                    <select on:change=move |e| role.set(event_target_value(&e))>
                        <option value="">"User"</option>
                        {move || {
                            let mine = ctx.me.with(|m| m.as_ref().map(|m| m.permissions.clone()).unwrap_or_default());
                            shared.roles.with(|roles| grantable(roles, &mine).into_iter().filter(|r| r.name != "User")
                                .map(|r| view! { <option value=r.id.clone()>{r.name.clone()}</option> }).collect_view())
                        }}
                    </select>
                </label>
                <button type="submit" class="primary" disabled=move || pending.get()>"Invite"</button>
            </form>
            {move || form_error(error.get(), &["email"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
            {move || link.get().map(|l| view! { <ShownOnce label="Invitation link (valid 7 days)" value=l /> })}
            <Table rows=list columns=columns key=|i: &InvitationRow| i.id.clone() empty="No open or used invitations." label="Invitations" />
        </section>
    }
}

#[component]
fn RevokeInvitationButton(id: String) -> impl IntoView {
    let reload = expect_context::<Callback<()>>();
    let error = RwSignal::new(None::<ApiError>);
    let id = StoredValue::new(id);
    let revoke = Callback::new(move |()| {
        leptos::task::spawn_local(async move {
            match api::run::<RevokeInvitation>(revoke_invitation::Variables { id: id.get_value() }).await {
                Ok(_) => reload.run(()),
                Err(e) => error.set(Some(e)),
            }
        });
    });
    view! {
        <Confirm label="Revoke" question="Revoke this invitation? Its link stops working." on_confirm=revoke />
        <ErrorNote error=error />
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(id: &str, keys: &[&str]) -> RoleRow {
        RoleRow { id: id.into(), name: id.into(), permissions: keys.iter().map(|k| (*k).to_owned()).collect() }
    }

    #[test]
    fn only_roles_within_the_callers_keys_are_grantable() {
        let roles = [role("a", &["server.read"]), role("b", &["server.read", "user.manage"]), role("c", &[])];
        let mine = vec!["server.read".to_owned()];
        let ids: Vec<&str> = grantable(&roles, &mine).into_iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
    }

    #[test]
    fn generated_passwords_use_the_whole_alphabet_without_bias() {
        let alphabet = b"abc";
        // 255 is at or over the largest multiple of 3 below 256 (255): skipped.
        assert_eq!(password_from(&[0, 1, 2, 255, 3, 4], alphabet, 5), "abcab");
        let bytes: Vec<u8> = (0..=255).collect();
        let pw = password_from(&bytes, b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", 200);
        assert_eq!(pw.len(), 200, "228 of the 256 bytes are used");
        assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
