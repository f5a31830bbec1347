//! One server: its state and transitions, power buttons, the live console, its CPU and memory
//! charts, its settings and, for holders of `server.grant`, who else may use it.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};
use shared::{ErrorCode, Permission, ServerState};

use crate::{
    api::{
        self, ApiError,
        ops::{
            FindUsers, GrantServerAccess, RevokeServerAccess, Server, ServerGrants, ServerStates, find_users,
            grant_server_access, revoke_server_access, server, server_grants, server_states,
        },
    },
    app::ctx,
    charts::{
        Chart,
        feed::{Source, feed},
    },
    components::{
        console::Console,
        power::{Power, PowerButtons, StateBadge},
        status::{ErrorNote, Loading},
    },
    live, time,
};

#[component]
pub fn ServerDetail() -> impl IntoView {
    let params = use_params_map();
    move || {
        let id = params.with(|p| p.get("id")).and_then(|id| id.parse::<i64>().ok());
        match id {
            Some(id) => view! { <Detail id=id /> }.into_any(),
            None => view! { <p class="note error">"This is not a server's address."</p> }.into_any(),
        }
    }
}

#[component]
fn Detail(id: i64) -> impl IntoView {
    let loaded = RwSignal::new(None::<server::ServerServer>);
    let error = RwSignal::new(None::<ApiError>);
    let state = RwSignal::new(ServerState::Offline);
    let history = RwSignal::new(Vec::<(ServerState, String, Option<String>)>::new());
    let load = move || {
        let asked = live::order::mark();
        leptos::task::spawn_local(async move {
            match api::run::<Server>(server::Variables { id: id.to_string() }).await {
                Ok(data) => match data.server {
                    Some(s) => {
                        // A state event that came after the question wins.
                        if live::order::current(id, asked) {
                            state.set(s.state);
                        }
                        history
                            .set(s.state_history.iter().map(|h| (h.state, h.at.clone(), h.message.clone())).collect());
                        loaded.set(Some(s));
                        error.set(None);
                    }
                    None => error.set(Some(ApiError::coded(ErrorCode::NotFound, "server not found"))),
                },
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    let sub = live::subscribe::<ServerStates>(
        server_states::Variables {},
        move |event| match event {
            Ok(data) => {
                let e = data.server_state;
                if e.server_id == id.to_string() {
                    live::order::event(id);
                    state.set(e.state);
                    history.update(|h| {
                        h.insert(0, (e.state, e.at, e.message));
                        h.truncate(20);
                    });
                }
            }
            Err(e) => error.set(Some(e)),
        },
        Some(Box::new(load)),
    );
    on_cleanup(move || live::unsubscribe(sub));

    let keys =
        Signal::derive(move || loaded.with(|s| s.as_ref().map(|s| s.my_permissions.clone()).unwrap_or_default()));
    let holds = move |key: Permission| keys.with(|k| k.iter().any(|k| k == key.key()));
    let name = Signal::derive(move || loaded.with(|s| s.as_ref().map(|s| s.name.clone()).unwrap_or_default()));

    view! {
        <ErrorNote error=error />
        <Show when=move || loaded.with(Option::is_some) fallback=move || view! { <Show when=move || error.with(Option::is_none)><Loading what="the server" /></Show> }>
            <div class="page-head">
                <h1>{name}</h1>
                <StateBadge state=state />
                <span class="grow"></span>
                <PowerButtons id=id.to_string() name=name state=state keys=keys actions=&[Power::Start, Power::Stop, Power::Restart, Power::Kill] />
                <Show when=move || holds(Permission::ServerUpdate) || holds(Permission::ServerDelete)>
                    <A href=format!("/servers/{id}/edit") attr:class="button">"Settings"</A>
                </Show>
            </div>
            <div class="detail-grid">
                <section class="card console-card" aria-labelledby="console-title">
                    <h2 id="console-title">"Console"</h2>
                    <Console server_id=id name=name can_send=Signal::derive(move || holds(Permission::ServerConsole)) />
                </section>
                <section class="card" aria-labelledby="usage-title">
                    <h2 id="usage-title">"Usage"</h2>
                    <ServerCharts id=id />
                </section>
                <section class="card" aria-labelledby="about-title">
                    <h2 id="about-title">"About"</h2>
                    {move || loaded.get().map(|s| view! { <About server=s /> })}
                    <h3>"Latest changes of state"</h3>
                    <ol class="transitions">
                        {move || history.get().into_iter().map(|(s, at, message)| view! {
                            <li><StateBadge state=s /> " " <time datetime=at.clone()>{time::show(&at)}</time>
                                {message.map(|m| view! { <span class="muted">{format!(" — {m}")}</span> })}</li>
                        }).collect_view()}
                    </ol>
                </section>
                <Show when=move || holds(Permission::ServerGrant)>
                    <section class="card" aria-labelledby="access-title">
                        <h2 id="access-title">"Access"</h2>
                        <Grants id=id />
                    </section>
                </Show>
            </div>
        </Show>
    }
}

#[component]
fn About(server: server::ServerServer) -> impl IntoView {
    let rows = [
        ("Template", server.template.name.clone()),
        ("Port", server.port.map(|p| p.to_string()).unwrap_or_else(|| "–".into())),
        ("Process", server.pid.map(|p| format!("pid {p}")).unwrap_or_else(|| "not running".into())),
        ("Started", server.started_at.as_deref().map(time::show).unwrap_or_else(|| "–".into())),
        ("Last exit code", server.last_exit_code.map(|c| c.to_string()).unwrap_or_else(|| "–".into())),
        ("Restarts after a crash", if server.auto_restart { "yes".into() } else { "no".into() }),
        ("Created", time::show(&server.created_at)),
    ];
    view! {
        <dl class="facts">
            {rows.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
            {server.variables.into_iter().map(|v| view! { <dt><code>{v.key}</code></dt><dd><code>{v.value}</code></dd> }).collect_view()}
        </dl>
    }
}

/// CPU and memory of the server: live, or over a range.
#[component]
pub fn ServerCharts(id: i64) -> impl IntoView {
    let range = RwSignal::new(crate::pages::resources::RangeChoice::Live);
    view! {
        <crate::pages::resources::RangePicker choice=range />
        {move || {
            let span = range.get().span();
            let feed = feed(Source::Server(id), &["cpu.percent", "memory.used_bytes"], span);
            view! {
                <ErrorNote error=feed.error />
                <Chart title="CPU" unit="%" series=feed.pick(&[("cpu.percent", "CPU")]) range=feed.range height=180 />
                <Chart title="Memory" unit="bytes" series=feed.pick(&[("memory.used_bytes", "memory")]) range=feed.range height=180 />
            }
        }}
    }
}

/// Who holds grants on the server; grant and revoke.
#[component]
fn Grants(id: i64) -> impl IntoView {
    let ctx = ctx();
    let grants = RwSignal::new(None::<Vec<server_grants::ServerGrantsServerGrants>>);
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::run::<ServerGrants>(server_grants::Variables { id: id.to_string() }).await {
                Ok(data) => grants.set(Some(data.server.map(|s| s.grants).unwrap_or_default())),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    let revoke = move |user_id: String| {
        leptos::task::spawn_local(async move {
            match api::run::<RevokeServerAccess>(revoke_server_access::Variables { server_id: id.to_string(), user_id })
                .await
            {
                Ok(_) => load(),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let search = RwSignal::new(String::new());
    let found = RwSignal::new(Vec::<find_users::FindUsersUsers>::new());
    let picked = RwSignal::new(String::new());
    let keys = RwSignal::new(vec!["server.read".to_owned(), "server.start".to_owned(), "server.stop".to_owned()]);
    let find = move |_| {
        let text = search.get_untracked();
        leptos::task::spawn_local(async move {
            match api::run::<FindUsers>(find_users::Variables { search: Some(text) }).await {
                Ok(data) => found.set(data.users),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let grant = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let user_id = picked.get_untracked();
        if user_id.is_empty() {
            return;
        }
        let permissions = keys.get_untracked();
        leptos::task::spawn_local(async move {
            match api::run::<GrantServerAccess>(grant_server_access::Variables {
                server_id: id.to_string(),
                user_id,
                permissions,
            })
            .await
            {
                Ok(_) => {
                    error.set(None);
                    load();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let server_keys = [
        "server.read",
        "server.start",
        "server.stop",
        "server.console",
        "server.update",
        "server.delete",
        "server.grant",
    ];
    view! {
        <ErrorNote error=error />
        {move || match grants.get() {
            None => view! { <Loading what="grants" /> }.into_any(),
            Some(list) if list.is_empty() => view! { <p class="empty">"Nobody holds a grant on this server."</p> }.into_any(),
            Some(list) => view! {
                <ul class="grants">
                    {list.into_iter().map(|g| {
                        let uid = g.user.id.clone();
                        view! {
                            <li>
                                <strong>{g.user.display_name.clone()}</strong> " " <span class="muted">{g.user.email.clone()}</span>
                                <div class="keys">{g.permissions.join(", ")}</div>
                                <button type="button" class="small" aria-label=format!("Revoke the access of {}", g.user.email) on:click=move |_| revoke(uid.clone())>"Revoke"</button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }.into_any(),
        }}
        <Show when=move || ctx.can(Permission::UserRead) fallback=|| view! { <p class="muted">"Granting access to another user needs user.read to find them."</p> }>
            <form class="grant-form" on:submit=grant>
                <h3>"Grant access"</h3>
                <div class="inline">
                    <label for="user-search" class="sr-only">"Find a user"</label>
                    <input id="user-search" type="search" placeholder="Email or name" prop:value=move || search.get() on:input=move |e| search.set(event_target_value(&e)) />
                    <button type="button" on:click=find>"Find"</button>
                </div>
                <label for="user-pick">"User"</label>
                <select id="user-pick" on:change=move |e| picked.set(event_target_value(&e))>
                    <option value="">"Choose"</option>
                    {move || found.get().into_iter().map(|u| view! { <option value=u.id.clone()>{format!("{} <{}>", u.display_name, u.email)}</option> }).collect_view()}
                </select>
                <fieldset>
                    <legend>"Keys"</legend>
                    {server_keys.into_iter().map(|k| {
                        let checked = move || keys.with(|ks| ks.iter().any(|x| x == k));
                        view! {
                            <label class="check">
                                <input type="checkbox" prop:checked=checked on:change=move |e| {
                                    let on = event_target_checked(&e);
                                    keys.update(|ks| { ks.retain(|x| x != k); if on { ks.push(k.to_owned()); } });
                                } />
                                " " {k}
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
                <button type="submit" disabled=move || picked.get().is_empty()>"Grant"</button>
            </form>
        </Show>
    }
}
