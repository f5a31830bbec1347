//! A server's live console: the kept lines, then new ones as they come; it follows the output
//! unless the reader scrolled up; search, clear, and a command line with history on the arrow
//! keys. ANSI colours become styled spans; nothing in a line is ever read as HTML.

use std::collections::VecDeque;

use leptos::{html, prelude::*};

use crate::{
    ansi,
    api::{
        self, ApiError,
        ops::{
            SendServerCommand, ServerConsole, ServerConsoleTail, send_server_command, server_console,
            server_console_tail,
        },
    },
    live,
};

/// The most lines the console keeps in the page.
const KEEP: usize = 2000;

#[derive(Debug, Clone, PartialEq)]
struct Line {
    seq: u64,
    at: String,
    stream: String,
    text: String,
}

/// The lines on screen, each with a number of its own (the list's keys).
#[derive(Default)]
struct Lines {
    next: u64,
    list: VecDeque<Line>,
}

impl Lines {
    fn push(&mut self, at: String, stream: String, text: String) {
        self.list.push_back(Line { seq: self.next, at, stream, text });
        self.next += 1;
        while self.list.len() > KEEP {
            self.list.pop_front();
        }
    }
}

/// Updates do nothing once the console is gone (an answer that arrives after the page changed
/// must not touch it).
#[derive(Clone, Copy)]
struct Buffer {
    lines: RwSignal<Lines>,
}

impl Buffer {
    fn push(&self, at: String, stream: String, text: String) {
        self.lines.update(|l| l.push(at, stream, text));
    }

    /// Replaces the buffer with the hub's kept lines plus those that arrived after them.
    fn fill(&self, tail: Vec<(String, String, String)>) {
        let last = tail.last().map(|(at, _, _)| at.clone());
        self.lines.update(|lines| {
            let arrived: Vec<Line> = lines.list.drain(..).collect();
            for (at, stream, text) in tail {
                lines.push(at, stream, text);
            }
            for l in arrived {
                if last.as_ref().is_none_or(|last| l.at > *last) {
                    lines.push(l.at, l.stream, l.text);
                }
            }
        });
    }

    fn clear(&self) {
        self.lines.update(|l| l.list.clear());
    }
}

#[component]
pub fn Console(
    server_id: i64,
    #[prop(into)] can_send: Signal<bool>,
    #[prop(into)] name: Signal<String>,
) -> impl IntoView {
    let buffer = Buffer { lines: RwSignal::new(Lines::default()) };
    let error = RwSignal::new(None::<ApiError>);
    let loaded = RwSignal::new(false);
    let follow = RwSignal::new(true);
    let search = RwSignal::new(String::new());
    let log = NodeRef::<html::Div>::new();

    let load_tail = move || {
        leptos::task::spawn_local(async move {
            match api::run::<ServerConsoleTail>(server_console_tail::Variables { id: server_id.to_string() }).await {
                Ok(data) => {
                    let tail = data
                        .server
                        .map(|s| s.console_tail.into_iter().map(|l| (l.at, l.stream, l.line)).collect())
                        .unwrap_or_default();
                    buffer.fill(tail);
                    loaded.set(true);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let id = live::subscribe::<ServerConsole>(
        server_console::Variables { server_id: server_id.to_string() },
        move |event| match event {
            Ok(data) => {
                let l = data.server_console;
                buffer.push(l.at, l.stream, l.line);
            }
            Err(e) => error.set(Some(e)),
        },
        Some(Box::new(load_tail)),
    );
    on_cleanup(move || live::unsubscribe(id));
    load_tail();

    // Follow the output: after each change, scroll to the end unless the reader scrolled up.
    Effect::new(move |_| {
        buffer.lines.track();
        search.track();
        if follow.get_untracked()
            && let Some(el) = log.get()
        {
            el.set_scroll_top(el.scroll_height());
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = log.get_untracked() {
            follow.set(el.scroll_top() + el.client_height() >= el.scroll_height() - 8);
        }
    };

    let shown = move || {
        let needle = search.get().to_lowercase();
        buffer.lines.with(|lines| {
            lines
                .list
                .iter()
                .filter(|l| needle.is_empty() || ansi::plain(&l.text).to_lowercase().contains(&needle))
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let matches = move || {
        let needle = search.get();
        (!needle.is_empty()).then(|| {
            let n = shown().len();
            format!("{n} matching line{}", if n == 1 { "" } else { "s" })
        })
    };

    view! {
        <section class="console-panel" aria-label="Console">
            <div class="console-tools">
                <label class="search">
                    <span class="sr-only">"Search the console"</span>
                    <input type="search" placeholder="Search the console" prop:value=move || search.get() on:input=move |e| search.set(event_target_value(&e)) />
                </label>
                <span class="muted">{matches}</span>
                <Show when=move || !follow.get()>
                    <button type="button" class="small" on:click=move |_| {
                        follow.set(true);
                        if let Some(el) = log.get_untracked() {
                            el.set_scroll_top(el.scroll_height());
                        }
                    }>"Follow output"</button>
                </Show>
                <button type="button" class="small" on:click=move |_| buffer.clear()>"Clear"</button>
            </div>
            <div class="console" node_ref=log role="log" aria-label=move || format!("Console of {}", name.get()) tabindex="0" on:scroll=on_scroll data-testid="console">
                <Show when=move || loaded.get() || !buffer.lines.with(|l| l.list.is_empty()) fallback=|| view! { <p class="muted">"Loading the console…"</p> }>
                    <For each=shown key=|l| l.seq let:line>
                        <div class=format!("line {}", line.stream)>
                            {ansi::parse(&line.text)
                                .into_iter()
                                .map(|s| view! { <span class=s.style.classes() style=s.style.inline()>{s.text}</span> })
                                .collect_view()}
                        </div>
                    </For>
                </Show>
            </div>
            {move || error.get().map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
            <Show when=move || can_send.get()>
                <CommandLine server_id=server_id />
            </Show>
        </section>
    }
}

/// The command line: Enter sends, the arrow keys walk the commands sent before.
#[component]
fn CommandLine(server_id: i64) -> impl IntoView {
    let command = RwSignal::new(String::new());
    let history = StoredValue::new(Vec::<String>::new());
    let cursor = StoredValue::new(0usize);
    let sending = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let send = move || {
        let text = command.get_untracked();
        if text.trim().is_empty() || sending.get_untracked() {
            return;
        }
        sending.set(true);
        leptos::task::spawn_local(async move {
            match api::run::<SendServerCommand>(send_server_command::Variables {
                id: server_id.to_string(),
                command: text.clone(),
            })
            .await
            {
                Ok(_) => {
                    let _ = history.try_update_value(|h| {
                        if h.last() != Some(&text) {
                            h.push(text);
                        }
                        let _ = cursor.try_set_value(h.len());
                    });
                    command.set(String::new());
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
            sending.set(false);
        });
    };
    let on_key = move |e: leptos::ev::KeyboardEvent| match e.key().as_str() {
        "Enter" => {
            e.prevent_default();
            send();
        }
        "ArrowUp" | "ArrowDown" => {
            e.prevent_default();
            let up = e.key() == "ArrowUp";
            history.with_value(|h| {
                let at = cursor.get_value();
                let next = if up { at.saturating_sub(1) } else { (at + 1).min(h.len()) };
                cursor.set_value(next);
                command.set(h.get(next).cloned().unwrap_or_default());
            });
        }
        _ => {}
    };
    view! {
        <div class="command">
            <label for="command" class="sr-only">"Command"</label>
            <span class="prompt" aria-hidden="true">">"</span>
            <input
                id="command"
                type="text"
                autocomplete="off"
                spellcheck="false"
                placeholder="Type a command and press Enter"
                prop:value=move || command.get()
                on:input=move |e| command.set(event_target_value(&e))
                on:keydown=on_key
                disabled=move || sending.get()
            />
            <button type="button" on:click=move |_| send() disabled=move || sending.get()>"Send"</button>
        </div>
        {move || error.get().map(|e| view! { <p class="note error" role="alert">{e.words()}</p> })}
    }
}
