//! Sorting, maps and sets, compiled once for the whole app. The standard stable sort is compiled
//! once per item type and comparator (about 3 KB of WASM each), and `BTreeMap::from_iter` and
//! `BTreeSet::from_iter` use it too (the app had ten copies): here every sort goes through one
//! non-generic index sort, and maps and sets are built by inserting one by one.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet},
};

/// Sorts `list` stably by `cmp`. The sort itself is compiled once for the whole app (it orders
/// indices through a `dyn` comparator) instead of once per row type and comparator: each
/// instantiation of the standard sort weighs about 2 KB of WASM.
pub fn sort<T>(list: &mut Vec<T>, cmp: &dyn Fn(&T, &T) -> Ordering) {
    let order = {
        let rows: &[T] = list;
        sorted_indices(rows.len(), &|a, b| cmp(&rows[a], &rows[b]))
    };
    let mut slots: Vec<Option<T>> = std::mem::take(list).into_iter().map(Some).collect();
    list.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

#[inline(never)]
fn sorted_indices(len: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| cmp(a, b));
    order
}

pub fn map<K: Ord, V>(items: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut out = BTreeMap::new();
    for (key, value) in items {
        out.insert(key, value);
    }
    out
}

pub fn set<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut out = BTreeSet::new();
    for item in items {
        out.insert(item);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_sort_stably_through_indices() {
        let mut rows = vec![(2, 'a'), (1, 'b'), (2, 'c'), (0, 'd'), (1, 'e')];
        super::sort(&mut rows, &|a, b| a.0.cmp(&b.0));
        assert_eq!(rows, [(0, 'd'), (1, 'b'), (1, 'e'), (2, 'a'), (2, 'c')]);
        let mut empty: Vec<u8> = Vec::new();
        super::sort(&mut empty, &|a, b| a.cmp(b));
        assert!(empty.is_empty());
    }

    #[test]
    fn they_hold_what_collect_would() {
        let pairs = [(2, "b"), (1, "a"), (2, "c")];
        assert_eq!(super::map(pairs), pairs.into_iter().collect(), "the last of a key wins, as with collect");
        assert_eq!(super::set([3, 1, 3]), [1, 3].into_iter().collect());
    }
}
