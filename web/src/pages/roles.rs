//! Roles: each with its permissions as a checklist grouped by area (with each permission's
//! description), custom roles made, renamed, changed and deleted, the built-in ones marked and
//! protected as the API protects them, and a matrix of roles against permissions.

use std::collections::BTreeSet;

use leptos::prelude::*;
use shared::Permission;

use crate::{
    api::{
        self, ApiError,
        ops::{
            CreateRole, DeleteRole, RolesAndPermissions, UpdateRole, create_role, delete_role, roles_and_permissions,
            update_role,
        },
    },
    app::ctx,
    collect,
    components::{
        form::{Field, field_error, form_error},
        status::{ErrorNote, Loading, Require},
    },
};

type Role = roles_and_permissions::RolesAndPermissionsRoles;
type Key = roles_and_permissions::RolesAndPermissionsPermissions;

/// The area of a permission key: the part before the dot (`server.start` → `server`).
pub fn area(key: &str) -> &str {
    key.split_once('.').map_or(key, |(a, _)| a)
}

/// The keys grouped by area, in the catalogue's order.
pub fn by_area(keys: &[Key]) -> Vec<(String, Vec<Key>)> {
    let mut out: Vec<(String, Vec<Key>)> = Vec::new();
    for k in keys {
        let a = area(&k.key).to_owned();
        match out.iter_mut().find(|(name, _)| *name == a) {
            Some((_, list)) => list.push(k.clone()),
            None => out.push((a, vec![k.clone()])),
        }
    }
    out
}

#[component]
pub fn Roles() -> impl IntoView {
    view! {
        <Require permission=Permission::RoleRead>
            <RolesPage />
        </Require>
    }
}

#[derive(Clone, Copy)]
struct Catalogue {
    roles: RwSignal<Option<Vec<Role>>>,
    keys: RwSignal<Vec<Key>>,
    reload: Callback<()>,
}

#[component]
fn RolesPage() -> impl IntoView {
    let ctx = ctx();
    let roles = RwSignal::new(None::<Vec<Role>>);
    let keys = RwSignal::new(Vec::<Key>::new());
    let error = RwSignal::new(None::<ApiError>);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::run::<RolesAndPermissions>(roles_and_permissions::Variables {}).await {
                Ok(data) => {
                    keys.set(data.permissions);
                    roles.set(Some(data.roles));
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    let catalogue = Catalogue { roles, keys, reload: Callback::new(move |()| load()) };
    let manage = Signal::derive(move || ctx.can(Permission::RoleManage));
    // The cards are built once and kept across reloads (they hold what the user ticked).
    let loaded = Memo::new(move |_| roles.with(Option::is_some));
    view! {
        <h1>"Roles"</h1>
        <ErrorNote error=error />
        {move || match loaded.get() {
            false => view! { <Loading what="roles" /> }.into_any(),
            true => view! {
                <div class="cards roles">
                    <For each=move || roles.get().unwrap_or_default() key=|r| r.id.clone() let:role>
                        <RoleCard role=role catalogue=catalogue manage=manage />
                    </For>
                </div>
            }.into_any(),
        }}
        <Show when=move || manage.get()>
            <NewRole catalogue=catalogue />
        </Show>
        <h2>"Who can do what"</h2>
        <Matrix catalogue=catalogue />
        <Show when=move || ctx.can(Permission::ServerGrant)>
            <h2>"Per-server grants"</h2>
            <crate::pages::access::GrantMatrix />
        </Show>
    }
}

/// The checklist of keys, grouped by area; `chosen` holds the ticked ones.
#[component]
fn Checklist(
    catalogue: Catalogue,
    chosen: RwSignal<BTreeSet<String>>,
    #[prop(into)] locked: Signal<bool>,
    id: String,
) -> impl IntoView {
    move || {
        by_area(&catalogue.keys.get())
            .into_iter()
            .map(|(area, list)| {
                let id = id.clone();
                view! {
                    <fieldset class="area">
                        <legend>{area}</legend>
                        {list.into_iter().map(|k| {
                            let key = k.key.clone();
                            let input_id = format!("{id}-{}", key.replace('.', "-"));
                            let checked = { let key = key.clone(); move || chosen.with(|c| c.contains(&key)) };
                            let toggle = { let key = key.clone(); move |e: leptos::ev::Event| {
                                let on = event_target_checked(&e);
                                chosen.update(|c| { if on { c.insert(key.clone()); } else { c.remove(&key); } });
                            }};
                            view! {
                                <div class="check">
                                    <input type="checkbox" id=input_id.clone() prop:checked=checked disabled=move || locked.get() on:change=toggle />
                                    <label for=input_id><code>{key.clone()}</code> " " <span class="muted">{k.description.clone()}</span></label>
                                </div>
                            }
                        }).collect_view()}
                    </fieldset>
                }
            })
            .collect_view()
    }
}

#[component]
fn RoleCard(role: Role, catalogue: Catalogue, #[prop(into)] manage: Signal<bool>) -> impl IntoView {
    let chosen = RwSignal::new(collect::set(role.permissions.iter().cloned()));
    let name = RwSignal::new(role.name.clone());
    let error = RwSignal::new(None::<ApiError>);
    let saved = RwSignal::new(false);
    let confirming = RwSignal::new(false);
    let built_in = role.built_in;
    let id = StoredValue::new(role.id.clone());
    let save = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let permissions: Vec<String> = chosen.get_untracked().into_iter().collect();
        let new_name = (!built_in).then(|| name.get_untracked().trim().to_owned());
        leptos::task::spawn_local(async move {
            let vars = update_role::Variables {
                id: id.get_value(),
                name: new_name,
                description: None,
                permissions: Some(permissions),
            };
            match api::run::<UpdateRole>(vars).await {
                Ok(_) => {
                    error.set(None);
                    saved.set(true);
                    catalogue.reload.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let delete = move |_| {
        leptos::task::spawn_local(async move {
            match api::run::<DeleteRole>(delete_role::Variables { id: id.get_value() }).await {
                Ok(_) => catalogue.reload.run(()),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let title = role.name.clone();
    view! {
        <form class="card role" on:submit=save data-role=title.clone()>
            <header>
                <h2>{title.clone()}</h2>
                {built_in.then(|| view! { <span class="badge" title="Shipped with the hub: it keeps its name and cannot be deleted">"built-in"</span> })}
            </header>
            {role.description.clone().map(|d| view! { <p class="muted">{d}</p> })}
            <Show when=move || manage.get() && !built_in>
                <Field id="role-name" label="Name" value=name error=Signal::derive(move || field_error(None, &error.get(), "name")) />
            </Show>
            <Checklist catalogue=catalogue chosen=chosen locked=Signal::derive(move || !manage.get()) id=format!("role-{}", id.get_value()) />
            {move || form_error(error.get(), &["name"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
            <Show when=move || manage.get()>
                <div class="actions">
                    <button type="submit" class="primary">"Save"</button>
                    {move || saved.get().then(|| view! { <span class="muted" role="status">"Saved."</span> })}
                    <Show when=move || !built_in>
                        <Show when=move || confirming.get() fallback=move || view! {
                            <button type="button" class="danger" on:click=move |_| confirming.set(true)>"Delete"</button>
                        }>
                            <button type="button" class="danger" on:click=delete>"Delete the role"</button>
                            <button type="button" on:click=move |_| confirming.set(false)>"Keep it"</button>
                        </Show>
                    </Show>
                </div>
            </Show>
        </form>
    }
}

#[component]
fn NewRole(catalogue: Catalogue) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let chosen = RwSignal::new(BTreeSet::<String>::new());
    let error = RwSignal::new(None::<ApiError>);
    let local = RwSignal::new(None::<String>);
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let n = name.get_untracked().trim().to_owned();
        local.set(n.is_empty().then(|| "a role needs a name".to_owned()));
        if n.is_empty() {
            return;
        }
        let d = description.get_untracked().trim().to_owned();
        let permissions: Vec<String> = chosen.get_untracked().into_iter().collect();
        leptos::task::spawn_local(async move {
            match api::run::<CreateRole>(create_role::Variables {
                name: n,
                description: Some(d).filter(|d| !d.is_empty()),
                permissions,
            })
            .await
            {
                Ok(_) => {
                    name.set(String::new());
                    description.set(String::new());
                    chosen.set(BTreeSet::new());
                    error.set(None);
                    catalogue.reload.run(());
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <form class="card form" on:submit=submit novalidate>
            <h2>"New role"</h2>
            <Field id="new-role-name" label="Name" value=name required=true error=Signal::derive(move || field_error(local.get(), &error.get(), "name")) />
            <Field id="new-role-description" label="Description (optional)" value=description error=Signal::derive(move || field_error(None, &error.get(), "description")) />
            <Checklist catalogue=catalogue chosen=chosen locked=false id="new-role".to_owned() />
            {move || form_error(error.get(), &["name", "description"]).map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
            <button type="submit" class="primary">"Create the role"</button>
        </form>
    }
}

/// Roles against permissions.
#[component]
fn Matrix(catalogue: Catalogue) -> impl IntoView {
    move || {
        let roles = catalogue.roles.get().unwrap_or_default();
        let keys = catalogue.keys.get();
        view! {
            <div class="table-scroll">
                <table class="table matrix" aria-label="Roles against permissions">
                    <thead>
                        <tr>
                            <th scope="col">"Permission"</th>
                            {roles.iter().map(|r| view! { <th scope="col">{r.name.clone()}</th> }).collect_view()}
                        </tr>
                    </thead>
                    <tbody>
                        {keys.iter().map(|k| view! {
                            <tr>
                                <th scope="row" title=k.description.clone()><code>{k.key.clone()}</code></th>
                                {roles.iter().map(|r| {
                                    let has = r.permissions.contains(&k.key);
                                    view! { <td class:yes=has>{if has { "✓" } else { "" }}<span class="sr-only">{if has { "yes" } else { "no" }}</span></td> }
                                }).collect_view()}
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_group_by_their_area_in_catalogue_order() {
        let k = |key: &str| Key { key: key.into(), description: String::new() };
        let groups = by_area(&[k("user.read"), k("server.start"), k("user.manage"), k("audit.read")]);
        let names: Vec<(&str, usize)> = groups.iter().map(|(a, l)| (a.as_str(), l.len())).collect();
        assert_eq!(names, [("user", 2), ("server", 1), ("audit", 1)]);
        assert_eq!(area("settings"), "settings");
    }
}
