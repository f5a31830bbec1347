//! The landing page: which hub this is and which version it runs, asked of the API.

use leptos::prelude::*;
use serde::Deserialize;

use crate::api;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HubInfoData {
    hub_info: HubInfo,
}

#[derive(Debug, Clone, Deserialize)]
struct HubInfo {
    name: String,
    version: String,
}

#[component]
pub fn Home() -> impl IntoView {
    let info = LocalResource::new(|| api::query::<HubInfoData>("query HubInfo { hubInfo { name version } }", None));
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Connecting to the hub…"</p> }>
            {move || {
                info.get()
                    .map(|result| match result {
                        Ok(data) => {
                            view! {
                                <h1 id="hub-name">{data.hub_info.name}</h1>
                                <p>
                                    "Hub version "
                                    <span id="hub-version">{data.hub_info.version}</span>
                                    <span class="muted">
                                        " · web app " {shared::VERSION}
                                    </span>
                                </p>
                            }
                                .into_any()
                        }
                        Err(err) => {
                            view! { <p class="error" id="hub-error">{err.to_string()}</p> }.into_any()
                        }
                    })
            }}
        </Suspense>
    }
}
