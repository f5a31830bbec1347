//! A server's state badge and its power buttons, shown by permission and disabled while an
//! action is in flight or the state does not allow it.

use leptos::prelude::*;
use shared::{Permission, ServerState};

use crate::{
    api::{
        self, ApiError,
        ops::{
            KillServer, RestartServer, StartServer, StopServer, kill_server, restart_server, start_server, stop_server,
        },
    },
    live,
};

#[component]
pub fn StateBadge(#[prop(into)] state: Signal<ServerState>) -> impl IntoView {
    view! {
        <span class=move || format!("badge state-{}", state.get().as_str().to_lowercase()) data-testid="state">
            {move || state.get().as_str()}
        </span>
    }
}

/// What a power button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Start,
    Stop,
    Restart,
    Kill,
}

impl Power {
    fn label(self) -> &'static str {
        match self {
            Self::Start => "Start",
            Self::Stop => "Stop",
            Self::Restart => "Restart",
            Self::Kill => "Kill",
        }
    }

    fn permission(self) -> Permission {
        match self {
            Self::Start | Self::Restart => Permission::ServerStart,
            Self::Stop | Self::Kill => Permission::ServerStop,
        }
    }

    /// Whether the action makes sense in a state (the hub checks again).
    pub fn allowed_in(self, state: ServerState) -> bool {
        use ServerState::*;
        match self {
            Self::Start => matches!(state, Offline | Crashed),
            Self::Stop | Self::Restart => matches!(state, Starting | Running),
            Self::Kill => matches!(state, Starting | Running | Stopping),
        }
    }

    async fn run(self, id: String) -> Result<ServerState, ApiError> {
        Ok(match self {
            Self::Start => api::run::<StartServer>(start_server::Variables { id }).await?.start_server.state,
            Self::Stop => api::run::<StopServer>(stop_server::Variables { id }).await?.stop_server.state,
            Self::Restart => api::run::<RestartServer>(restart_server::Variables { id }).await?.restart_server.state,
            Self::Kill => api::run::<KillServer>(kill_server::Variables { id }).await?.kill_server.state,
        })
    }
}

/// The buttons for `actions` that the caller's keys on this server allow. `state` is updated
/// with the answer unless a live event told a later state first.
#[component]
pub fn PowerButtons(
    id: String,
    #[prop(into)] name: Signal<String>,
    state: RwSignal<ServerState>,
    #[prop(into)] keys: Signal<Vec<String>>,
    actions: &'static [Power],
    #[prop(default = false)] small: bool,
) -> impl IntoView {
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let buttons = actions
        .iter()
        .map(|&action| {
            let id = id.clone();
            let held = move || keys.with(|k| k.iter().any(|k| k == action.permission().key()));
            let click = move |_| {
                if busy.get_untracked() {
                    return;
                }
                busy.set(true);
                error.set(None);
                let id = id.clone();
                let asked = live::order::mark();
                leptos::task::spawn_local(async move {
                    let server = id.parse().unwrap_or_default();
                    match action.run(id).await {
                        // The live events may have told a later state already (a stop that
                        // ends before its answer arrives sends OFFLINE first).
                        Ok(s) if live::order::current(server, asked) => state.set(s),
                        Ok(_) => {}
                        // A CONFLICT (someone else got there first) says so; the live state
                        // shows where the server is.
                        Err(e) => error.set(Some(e)),
                    }
                    busy.set(false);
                });
            };
            let label = move || format!("{} {}", action.label(), name.get());
            view! {
                <Show when=held>
                    <button
                        type="button"
                        class=if action == Power::Kill { "danger" } else { "" }
                        class:small=small
                        aria-label=label
                        data-action=action.label().to_lowercase()
                        disabled=move || busy.get() || !action.allowed_in(state.get())
                        on:click=click.clone()
                    >
                        {action.label()}
                    </button>
                </Show>
            }
        })
        .collect_view();
    view! {
        <span class="power" aria-busy=move || busy.get().to_string()>
            {buttons}
            {move || error.get().map(|e| view! { <span class="field-error" role="alert">{e.words()}</span> })}
        </span>
    }
}
