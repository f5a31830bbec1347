//! Per-server grants seen across servers: the matrix of who holds which keys where (on the Roles
//! page), and one user's access to every server, given and taken from their row on the Users page.
//! Both need `server.grant` on every server, so they show for holders of the global key.

use std::collections::BTreeSet;

use leptos::prelude::*;
use shared::Permission;

use crate::{
    api::{
        self, ApiError,
        ops::{
            AllGrants, GrantServerAccess, RevokeServerAccess, all_grants, grant_server_access, revoke_server_access,
        },
    },
    collect,
    components::status::{ErrorNote, Loading},
};

type ServerRow = all_grants::AllGrantsServers;

/// The keys a grant can give, in the catalogue's order.
pub fn server_keys() -> impl Iterator<Item = &'static str> {
    Permission::ALL.iter().filter(|p| p.is_server_scoped()).map(|p| p.key())
}

fn load(into: RwSignal<Option<Vec<ServerRow>>>, error: RwSignal<Option<ApiError>>) {
    leptos::task::spawn_local(async move {
        match api::run::<AllGrants>(all_grants::Variables {}).await {
            Ok(data) => {
                into.set(Some(data.servers));
                error.set(None);
            }
            Err(e) => error.set(Some(e)),
        }
    });
}

/// Servers against the users holding grants on them, each cell the keys held.
#[component]
pub fn GrantMatrix() -> impl IntoView {
    let servers = RwSignal::new(None::<Vec<ServerRow>>);
    let error = RwSignal::new(None::<ApiError>);
    load(servers, error);
    move || {
        let Some(list) = servers.get() else {
            return view! { <ErrorNote error=error /> <Loading what="grants" /> }.into_any();
        };
        // Every user holding a grant somewhere, by email.
        let users =
            collect::set(list.iter().flat_map(|s| s.grants.iter().map(|g| (g.user.email.clone(), g.user.id.clone()))));
        if users.is_empty() {
            return view! { <p class="empty">"Nobody holds a per-server grant: access comes from roles alone."</p> }
                .into_any();
        }
        let head = users.iter().map(|(email, _)| view! { <th scope="col">{email.clone()}</th> }).collect_view();
        let rows = list
            .iter()
            .map(|s| {
                let cells = users
                    .iter()
                    .map(|(_, id)| {
                        let keys = s.grants.iter().find(|g| &g.user.id == id).map(|g| {
                            g.permissions.iter().map(|k| k.trim_start_matches("server.")).collect::<Vec<_>>().join(", ")
                        });
                        view! { <td>{keys.unwrap_or_default()}</td> }
                    })
                    .collect_view();
                view! { <tr><th scope="row">{s.name.clone()}</th>{cells}</tr> }
            })
            .collect_view();
        view! {
            <div class="table-scroll">
                <table class="table matrix" aria-label="Grants by server">
                    <thead><tr><th scope="col">"Server"</th>{head}</tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    }
}

/// One user's keys on every server, each server's set saved on its own (an empty set revokes).
#[component]
pub fn UserServerAccess(user_id: String) -> impl IntoView {
    let servers = RwSignal::new(None::<Vec<ServerRow>>);
    let error = RwSignal::new(None::<ApiError>);
    load(servers, error);
    let user_id = StoredValue::new(user_id);
    move || {
        let Some(list) = servers.get() else {
            return view! { <ErrorNote error=error /> <Loading what="server access" /> }.into_any();
        };
        if list.is_empty() {
            return view! { <p class="empty">"There are no servers yet."</p> }.into_any();
        }
        let rows = list
            .into_iter()
            .map(|s| {
                let held: BTreeSet<String> = s
                    .grants
                    .iter()
                    .find(|g| g.user.id == user_id.get_value())
                    .map(|g| collect::set(g.permissions.iter().cloned()))
                    .unwrap_or_default();
                view! { <ServerGrantRow server_id=s.id name=s.name held=held user_id=user_id.get_value() servers=servers error=error /> }
            })
            .collect_view();
        view! {
            <ErrorNote error=error />
            <div class="table-scroll">
                <table class="table" aria-label="Server access">
                    <thead><tr><th scope="col">"Server"</th><th scope="col">"Keys granted"</th><th scope="col"></th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    }
}

#[component]
fn ServerGrantRow(
    server_id: String,
    name: String,
    held: BTreeSet<String>,
    user_id: String,
    servers: RwSignal<Option<Vec<ServerRow>>>,
    error: RwSignal<Option<ApiError>>,
) -> impl IntoView {
    let chosen = RwSignal::new(held.clone());
    let pending = RwSignal::new(false);
    let ids = StoredValue::new((server_id.clone(), user_id));
    let changed = move || chosen.with(|c| *c != held);
    let save = move |_| {
        if pending.get_untracked() {
            return;
        }
        pending.set(true);
        let (server_id, user_id) = ids.get_value();
        let permissions: Vec<String> = chosen.get_untracked().into_iter().collect();
        leptos::task::spawn_local(async move {
            let done = if permissions.is_empty() {
                api::run::<RevokeServerAccess>(revoke_server_access::Variables { server_id, user_id }).await.map(drop)
            } else {
                api::run::<GrantServerAccess>(grant_server_access::Variables { server_id, user_id, permissions })
                    .await
                    .map(drop)
            };
            match done {
                Ok(()) => load(servers, error),
                Err(e) => error.set(Some(e)),
            }
            pending.set(false);
        });
    };
    let boxes = server_keys()
        .map(|k| {
            let input_id = format!("grant-{server_id}-{}", k.replace('.', "-"));
            view! {
                <span class="check">
                    <input type="checkbox" id=input_id.clone() prop:checked=move || chosen.with(|c| c.contains(k))
                        on:change=move |e| {
                            let on = event_target_checked(&e);
                            chosen.update(|c| { if on { c.insert(k.to_owned()); } else { c.remove(k); } });
                        } />
                    <label for=input_id>{k.trim_start_matches("server.")}</label>
                </span>
            }
        })
        .collect_view();
    view! {
        <tr data-server=name.clone()>
            <th scope="row">{name.clone()}</th>
            <td><div class="roles-pick">{boxes}</div></td>
            <td>
                <button type="button" class="small" disabled=move || pending.get() || !changed() on:click=save>
                    {move || if chosen.with(BTreeSet::is_empty) { "Revoke" } else { "Save" }}
                </button>
            </td>
        </tr>
    }
}
