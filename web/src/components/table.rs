//! The one table of the app: sortable columns, pages, loading and empty states, rows that the
//! arrow keys walk and Enter opens (when rows have details).

use std::{any::Any, cmp::Ordering, sync::Arc};

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::collect;

/// A column: its title, how a row shows in it, and how rows sort by it (if they do).
pub struct Column<T> {
    pub title: &'static str,
    pub cell: fn(&T) -> AnyView,
    pub sort: Option<fn(&T, &T) -> Ordering>,
}

impl<T> Column<T> {
    pub fn new(title: &'static str, cell: fn(&T) -> AnyView) -> Self {
        Self { title, cell, sort: None }
    }

    pub fn sorted(mut self, by: fn(&T, &T) -> Ordering) -> Self {
        self.sort = Some(by);
        self
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct SortState {
    column: usize,
    ascending: bool,
}

/// A row with its type erased, so that the table's view code is compiled once for the whole app
/// instead of once per row type.
#[derive(Clone)]
struct Erased {
    key: String,
    value: Arc<dyn Any + Send + Sync>,
}

type Cell = Arc<dyn Fn(&dyn Any) -> AnyView + Send + Sync>;
type Order = Arc<dyn Fn(&dyn Any, &dyn Any) -> Ordering + Send + Sync>;

struct ErasedColumn {
    title: &'static str,
    cell: Cell,
    sort: Option<Order>,
}

/// `rows` is None while loading. `key` names a row (for expanding it).
#[component]
pub fn Table<T>(
    #[prop(into)] rows: Signal<Option<Vec<T>>>,
    columns: Vec<Column<T>>,
    key: fn(&T) -> String,
    #[prop(into)] empty: String,
    #[prop(into)] label: String,
    #[prop(default = 25)] page_size: usize,
    /// A row's details, shown under it when it is opened (click or Enter).
    #[prop(optional)]
    details: Option<fn(&T) -> AnyView>,
) -> impl IntoView
where
    T: Clone + PartialEq + Send + Sync + 'static,
{
    // Only this part is generic: equal lists are not shown again (the memo compares rows), and
    // each column's functions get a shim from `dyn Any` back to the row type.
    let rows = Memo::new(move |_| rows.get());
    let erased = Signal::derive(move || {
        rows.get().map(|list| {
            list.into_iter()
                .map(|r| Erased { key: key(&r), value: Arc::new(r) as Arc<dyn Any + Send + Sync> })
                .collect::<Vec<_>>()
        })
    });
    let columns = columns
        .into_iter()
        .map(|c| {
            let cell = c.cell;
            ErasedColumn {
                title: c.title,
                cell: Arc::new(move |v: &dyn Any| v.downcast_ref::<T>().map_or_else(|| ().into_any(), cell)),
                sort: c.sort.map(|by| {
                    Arc::new(move |a: &dyn Any, b: &dyn Any| match (a.downcast_ref::<T>(), b.downcast_ref::<T>()) {
                        (Some(a), Some(b)) => by(a, b),
                        _ => Ordering::Equal,
                    }) as Order
                }),
            }
        })
        .collect();
    let details =
        details.map(|d| Arc::new(move |v: &dyn Any| v.downcast_ref::<T>().map_or_else(|| ().into_any(), d)) as Cell);
    view! { <ErasedTable rows=erased columns=columns empty=empty label=label page_size=page_size details=details /> }
}

#[component]
fn ErasedTable(
    rows: Signal<Option<Vec<Erased>>>,
    columns: Vec<ErasedColumn>,
    empty: String,
    label: String,
    page_size: usize,
    details: Option<Cell>,
) -> impl IntoView {
    let columns = Arc::new(columns);
    let has_details = details.is_some();
    let sort = RwSignal::new(None::<SortState>);
    let page = RwSignal::new(0usize);
    let open = RwSignal::new(None::<String>);
    let sorted = {
        let columns = columns.clone();
        Signal::derive(move || {
            let mut list = rows.get()?;
            if let Some(s) = sort.get()
                && let Some(by) = columns.get(s.column).and_then(|c| c.sort.clone())
            {
                collect::sort(&mut list, &|a, b| {
                    if s.ascending { by(&*a.value, &*b.value) } else { by(&*b.value, &*a.value) }
                });
            }
            Some(list)
        })
    };
    let pages = move || sorted.with(|r| r.as_ref().map_or(1, |r| r.len().div_ceil(page_size).max(1)));
    // A shorter list (a filter) never leaves the reader past its end.
    Effect::new(move |_| {
        let last = pages() - 1;
        if page.get_untracked() > last {
            page.set(last);
        }
    });
    let head = {
        let columns = columns.clone();
        move || {
            columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let title = c.title;
                let aria = move || match sort.get() {
                    Some(s) if s.column == i && s.ascending => "ascending",
                    Some(s) if s.column == i => "descending",
                    _ => "none",
                };
                match c.sort {
                    Some(_) => view! {
                        <th scope="col" aria-sort=aria>
                            <button type="button" class="sort" on:click=move |_| sort.update(|s| {
                                *s = Some(match *s {
                                    Some(cur) if cur.column == i => SortState { column: i, ascending: !cur.ascending },
                                    _ => SortState { column: i, ascending: true },
                                })
                            })>
                                {title}
                                <span aria-hidden="true">{move || match aria() { "ascending" => " ▲", "descending" => " ▼", _ => "" }}</span>
                            </button>
                        </th>
                    }
                    .into_any(),
                    None => view! { <th scope="col">{title}</th> }.into_any(),
                }
            })
            .collect_view()
        }
    };
    let width = columns.len();
    let body = move || {
        let list = sorted.get().unwrap_or_default();
        let start = page.get() * page_size;
        list.into_iter()
            .skip(start)
            .take(page_size)
            .map(|row| {
                let id = row.key.clone();
                let is_open = {
                    let id = id.clone();
                    move || open.with(|o| o.as_deref() == Some(id.as_str()))
                };
                let toggle = {
                    let id = id.clone();
                    move || {
                        if has_details {
                            open.update(|o| *o = if o.as_deref() == Some(id.as_str()) { None } else { Some(id.clone()) });
                        }
                    }
                };
                let cells = columns.iter().map(|c| view! { <td>{(c.cell)(&*row.value)}</td> }).collect_view();
                // Details are built when opened (they may query the hub), and dropped when closed.
                let extra = details.clone().map(|d| {
                    let (is_open, row) = (is_open.clone(), row.clone());
                    move || {
                        is_open().then(|| {
                            view! {
                                <tr class="details">
                                    <td colspan=width>{d(&*row.value)}</td>
                                </tr>
                            }
                        })
                    }
                });
                let on_key = {
                    let toggle = toggle.clone();
                    move |e: leptos::ev::KeyboardEvent| match e.key().as_str() {
                        "ArrowDown" | "ArrowUp" => {
                            e.prevent_default();
                            let down = e.key() == "ArrowDown";
                            let mut next = e.current_target().and_then(|t| t.dyn_into::<web_sys::Element>().ok());
                            // Skip the details rows.
                            loop {
                                next = next.and_then(|n| if down { n.next_element_sibling() } else { n.previous_element_sibling() });
                                match &next {
                                    Some(n) if n.class_list().contains("details") => continue,
                                    _ => break,
                                }
                            }
                            if let Some(el) = next.and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok()) {
                                let _ = el.focus();
                            }
                        }
                        "Enter" => toggle(),
                        _ => {}
                    }
                };
                view! {
                    <tr tabindex="0" class:openable=has_details aria-expanded=move || has_details.then(|| is_open().to_string())
                        on:keydown=on_key on:click=move |_| toggle()>
                        {cells}
                    </tr>
                    {extra}
                }
            })
            .collect_view()
    };
    view! {
        {move || match sorted.with(|r| r.as_ref().map(Vec::is_empty)) {
            None => view! { <p class="muted" role="status">"Loading…"</p> }.into_any(),
            Some(true) => view! { <p class="empty">{empty.clone()}</p> }.into_any(),
            Some(false) => ().into_any(),
        }}
        <Show when=move || sorted.with(|r| r.as_ref().is_some_and(|r| !r.is_empty()))>
            <div class="table-scroll">
                <table class="table" aria-label=label.clone()>
                    <thead><tr>{head.clone()}</tr></thead>
                    <tbody>{body.clone()}</tbody>
                </table>
            </div>
            <Show when=move || { pages() > 1 }>
                <nav class="pager" aria-label="Pages">
                    <button type="button" class="small" disabled=move || page.get() == 0 on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>"Previous"</button>
                    <span>{move || format!("Page {} of {}", page.get() + 1, pages())}</span>
                    <button type="button" class="small" disabled=move || page.get() + 1 >= pages() on:click=move |_| page.update(|p| *p += 1)>"Next"</button>
                </nav>
            </Show>
        </Show>
    }
}
