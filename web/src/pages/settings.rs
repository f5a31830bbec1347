//! The hub at a glance for whoever runs it (`settings.manage`): version, database, data folder
//! and its size, registration mode, counts, and every option as it was set, secrets hidden.

use leptos::prelude::*;
use shared::{Permission, metric::format_bytes};

use crate::{
    api::{
        self, ApiError,
        ops::{HubOverview, hub_overview},
    },
    components::{
        status::{ErrorNote, Loading, Require},
        table::{Column, Table},
    },
};

type Overview = hub_overview::HubOverviewHubOverview;
type Option_ = hub_overview::HubOverviewHubOverviewConfiguration;

#[component]
pub fn Settings() -> impl IntoView {
    view! {
        <Require permission=Permission::SettingsManage>
            <SettingsPage />
        </Require>
    }
}

#[component]
fn SettingsPage() -> impl IntoView {
    let overview = RwSignal::new(None::<Overview>);
    let error = RwSignal::new(None::<ApiError>);
    let filter = RwSignal::new(String::new());
    leptos::task::spawn_local(async move {
        match api::run::<HubOverview>(hub_overview::Variables {}).await {
            Ok(data) => overview.set(Some(data.hub_overview)),
            Err(e) => error.set(Some(e)),
        }
    });
    let options = Signal::derive(move || {
        let needle = filter.get().to_lowercase();
        overview.with(|o| {
            o.as_ref().map(|o| {
                o.configuration
                    .iter()
                    .filter(|c| {
                        needle.is_empty() || c.key.contains(&needle) || c.value.to_lowercase().contains(&needle)
                    })
                    .cloned()
                    .collect::<Vec<_>>()
            })
        })
    });
    let columns = vec![
        Column::new("Option", |c: &Option_| view! { <code>{c.key.clone()}</code> }.into_any())
            .sorted(|a, b| a.key.cmp(&b.key)),
        Column::new("Value", |c: &Option_| {
            match c.secret {
            true => view! { <span class="muted" title="A secret: only whether it is set is shown">{format!("{} (secret)", c.value)}</span> }.into_any(),
            false => view! { <code>{c.value.clone()}</code> }.into_any(),
        }
        }),
        Column::new("Set by", |c: &Option_| c.source.clone().into_any()).sorted(|a, b| a.source.cmp(&b.source)),
    ];
    view! {
        <h1>"Settings"</h1>
        <ErrorNote error=error />
        {move || match overview.get() {
            None => view! { <Loading what="the hub's overview" /> }.into_any(),
            Some(o) => view! {
                <section class="card" aria-labelledby="hub-facts">
                    <h2 id="hub-facts">{o.name.clone()}</h2>
                    <dl class="facts" data-testid="hub-facts">
                        <dt>"Version"</dt><dd>{o.version.clone()}</dd>
                        <dt>"Database"</dt><dd>{o.database.clone()}</dd>
                        <dt>"Data folder"</dt><dd><code>{o.data_dir.clone()}</code> " · " {format_bytes(o.data_dir_bytes)}</dd>
                        <dt>"Registration"</dt><dd>{match o.registration.as_str() {
                            "open" => "open: anyone may register",
                            "invite" => "by invitation",
                            _ => "closed: admins create accounts",
                        }}</dd>
                        <dt>"Users"</dt><dd>{o.users}</dd>
                        <dt>"Servers"</dt><dd>{format!("{} running of {}", o.servers_running, o.servers)}</dd>
                        <dt>"Live subscriptions"</dt><dd>{o.open_subscriptions}</dd>
                    </dl>
                </section>
            }.into_any(),
        }}
        <h2>"Configuration"</h2>
        <p class="muted">"As the hub started: each option from a flag, a KUTANGA_* variable, the TOML file or its default. Change them there and restart the hub."</p>
        <div class="filters">
            <label>"Filter " <input type="search" placeholder="Option or value" prop:value=move || filter.get() on:input=move |e| filter.set(event_target_value(&e)) /></label>
        </div>
        <Table rows=options columns=columns key=|c: &Option_| c.key.clone() empty="No option matches." label="Configuration" page_size=100 />
    }
}
