//! Limits on what a document may cost before and while it is parsed and validated.
//!
//! - **Nesting**: the parser recurses on every bracket of a value (lists, objects) as well as on
//!   selection sets, and a few kilobytes of `[[[[...` overflow its stack and abort the process.
//!   Documents (and variables) nested deeper than the limit are refused before they reach it.
//! - **Fragments**: a fragment that spreads another twice, forty deep, selects 2^40 fields; the
//!   engine's validation walks every one of them (a 4 KB document held a core for minutes).
//!   Once parsed, a document whose operations would select more fields than the complexity
//!   limit with every spread expanded is refused, counted without expanding anything.
//! - **Batches**: the complexity limit holds for a batch as a whole, not for each of its
//!   operations (the HTTP handler also caps how many operations a batch holds).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_graphql::{
    Request, ServerError, ServerResult, ValidationResult, Value,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation},
    parser::types::ExecutableDocument,
};

use crate::error::ApiError;

/// How deeply brackets (`{`, `[`, `(`) nest in a GraphQL document, ignoring those in strings and
/// comments. Stops counting past `limit` (the answer is then `limit + 1`).
///
/// Where a string does not end as the parser would end it (a block string never closed, a
/// string cut by a line break), the parser may back off and read what follows as code, so from
/// there on every bracket counts, in strings or not: the count may then be too high, never too
/// low.
pub fn nesting(document: &str, limit: usize) -> usize {
    let bytes = document.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    let mut everything_counts = false;
    while i < bytes.len() {
        match bytes[i] {
            b'#' if !everything_counts => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if !everything_counts && bytes[i..].starts_with(b"\"\"\"") => {
                let mut j = i + 3;
                while j < bytes.len() && !bytes[j..].starts_with(b"\"\"\"") {
                    j += if bytes[j..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                if j >= bytes.len() {
                    everything_counts = true;
                } else {
                    i = j + 2;
                }
            }
            b'"' if !everything_counts => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' && bytes[j] != b'\n' && bytes[j] != b'\r' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                if j < bytes.len() && bytes[j] == b'"' {
                    i = j;
                } else {
                    everything_counts = true;
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// How deeply lists and objects nest in a value (a scalar is 0).
pub fn value_nesting(value: &Value) -> usize {
    match value {
        Value::List(items) => 1 + items.iter().map(value_nesting).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(value_nesting).max().unwrap_or(0),
        _ => 0,
    }
}

fn too_deep(what: &str, limit: usize) -> ServerError {
    let verb = if what == "variables" { "nest" } else { "nests" };
    ApiError::bad_input(what, format!("the {what} {verb} brackets deeper than {limit} levels")).server_error()
}

/// The complexity a batch may still spend; every operation of a batch shares one.
#[derive(Debug, Clone)]
pub struct BatchBudget(Arc<AtomicUsize>);

impl BatchBudget {
    pub fn new(complexity: usize) -> Self {
        Self(Arc::new(AtomicUsize::new(complexity)))
    }

    fn spend(&self, cost: usize) -> bool {
        self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(cost)).is_ok()
    }
}

/// Fragments spreading fragments deeper than this are refused outright (the count recurses).
const FRAGMENT_CHAIN: usize = 64;

/// How many fields the document's operations select with every fragment spread expanded, each
/// fragment counted once (memoised), so the count costs the document's size, not the expansion.
/// Stops at `limit + 1`; None when fragments spread each other deeper than [`FRAGMENT_CHAIN`].
pub fn expanded_fields(doc: &ExecutableDocument, limit: usize) -> Option<usize> {
    use std::collections::HashMap;

    use async_graphql::{
        Name,
        parser::types::{Selection, SelectionSet},
    };

    struct Count<'a> {
        doc: &'a ExecutableDocument,
        sizes: HashMap<&'a Name, usize>,
        /// Fragments being counted (a cycle counts nothing; validation refuses it).
        open: Vec<&'a Name>,
        cap: usize,
    }

    impl<'a> Count<'a> {
        fn set(&mut self, set: &'a SelectionSet) -> Option<usize> {
            let mut total = 0usize;
            for item in &set.items {
                let n = match &item.node {
                    Selection::Field(f) => 1 + self.set(&f.node.selection_set.node)?,
                    Selection::InlineFragment(i) => self.set(&i.node.selection_set.node)?,
                    Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node)?,
                };
                total = total.saturating_add(n).min(self.cap);
            }
            Some(total)
        }

        fn fragment(&mut self, name: &'a Name) -> Option<usize> {
            if let Some(n) = self.sizes.get(name) {
                return Some(*n);
            }
            let Some(def) = self.doc.fragments.get(name) else { return Some(0) };
            if self.open.contains(&name) {
                return Some(0);
            }
            if self.open.len() >= FRAGMENT_CHAIN {
                return None;
            }
            self.open.push(name);
            let n = self.set(&def.node.selection_set.node);
            self.open.pop();
            let n = n?;
            self.sizes.insert(name, n);
            Some(n)
        }
    }

    let mut count = Count { doc, sizes: HashMap::new(), open: Vec::new(), cap: limit.saturating_add(1) };
    let mut total = 0usize;
    for (_, op) in doc.operations.iter() {
        total = total.saturating_add(count.set(&op.node.selection_set.node)?).min(count.cap);
    }
    Some(total)
}

/// The limits every document is held to before the engine parses and validates it: `nesting`
/// is the deepest bracket nesting accepted, `fields` the most fields a document may select with
/// its fragments expanded.
#[derive(Debug, Clone, Copy)]
pub struct DocumentLimits {
    pub nesting: usize,
    pub fields: usize,
}

impl DocumentLimits {
    /// The brackets are counted first (the parser recurses on them), then the document is parsed
    /// here, once (the engine takes this parse), and its expanded size counted before the
    /// engine's own depth check walks every spread expanded.
    pub fn check(&self, request: &mut Request) -> ServerResult<()> {
        if nesting(&request.query, self.nesting) > self.nesting {
            return Err(too_deep("query", self.nesting));
        }
        if request.variables.values().any(|v| value_nesting(v) > self.nesting) {
            return Err(too_deep("variables", self.nesting));
        }
        // A document that does not parse is left to the engine, which reports where.
        if let Ok(doc) = request.parsed_query() {
            match expanded_fields(doc, self.fields) {
                Some(n) if n <= self.fields => {}
                Some(_) => {
                    let why =
                        format!("the query selects more than {} fields once its fragments are expanded", self.fields);
                    return Err(ApiError::bad_input("query", why).server_error());
                }
                None => {
                    let why = format!("fragments spread fragments more than {FRAGMENT_CHAIN} deep");
                    return Err(ApiError::bad_input("query", why).server_error());
                }
            }
        }
        Ok(())
    }
}

/// Makes the operations of a batch spend one [`BatchBudget`] (the request's data holds it):
/// the only extension the hub installs, on the schema that runs batches.
pub struct BatchBudgets;

impl ExtensionFactory for BatchBudgets {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(BatchBudgets)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for BatchBudgets {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Some(budget) = ctx.data_opt::<BatchBudget>()
            && !budget.spend(result.complexity)
        {
            let e = ApiError::bad_input("query", "the batch as a whole is more complex than one request may be");
            return Err(vec![e.server_error()]);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        assert_eq!(nesting("{ a { b(x: [1, [2]]) } }", 100), 5);
        assert_eq!(nesting(r#"{ a(s: "[[[[{{{(") }"#, 100), 2);
        assert_eq!(nesting("{ a(s: \"\"\"[[[\\\"\"\"[[[\"\"\") }", 100), 2);
        assert_eq!(nesting("# [[[[[[\n{ a }", 100), 1);
        assert_eq!(nesting(r#"{ a(s: "\"[[[[") }"#, 100), 2);
        assert_eq!(nesting(&"[".repeat(100_000), 32), 33, "stops counting past the limit");
        assert_eq!(nesting("}}}]]]{", 100), 1, "closing more than was opened does not hide an opening");
        // An unterminated block string: the parser backs off and reads `""""` as two empty
        // strings, then the brackets after them as code; so does the count.
        let sneaky = format!("{{f(x:[\"\"\"\"{}{}])}}", "[".repeat(1000), "]".repeat(1000));
        assert!(nesting(&sneaky, 32) > 32, "{}", nesting(&sneaky, 32));
        let cut = format!("{{f(x:\"a\n{})}}", "[".repeat(100));
        assert!(nesting(&cut, 32) > 32);
        assert_eq!(nesting("{ a(s: \"\"\"ok\"\"\") { b } }", 100), 2, "a closed block string is skipped");
    }

    #[test]
    fn values_nest_as_their_lists_and_objects() {
        let v = Value::from_json(serde_json::json!({ "a": [[1], {"b": [2]}] })).unwrap();
        assert_eq!(value_nesting(&v), 4);
        assert_eq!(value_nesting(&Value::from(1)), 0);
    }

    fn fields(doc: &str) -> Option<usize> {
        expanded_fields(&async_graphql::parser::parse_query(doc).unwrap(), 1000)
    }

    #[test]
    fn fragments_are_counted_expanded_without_expanding_them() {
        assert_eq!(fields("{ me { id email } servers { id } }"), Some(5));
        assert_eq!(fields("{ ...A ...A } fragment A on Query { me { id } }"), Some(4));
        assert_eq!(fields("{ ... on Query { me { id } } }"), Some(2));
        // Forty levels of two spreads each: 2^40 fields, counted at once and capped.
        let mut bomb = String::from("{ ...B40 } fragment B0 on Query { me { id } }");
        for i in 1..=40 {
            bomb += &format!(" fragment B{i} on Query {{ ...B{} ...B{} }}", i - 1, i - 1);
        }
        assert_eq!(fields(&bomb), Some(1001));
        assert_eq!(fields("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A me { id } }"), Some(2));
        let mut chain = String::from("{ ...C0 }");
        for i in 0..100 {
            chain += &format!(" fragment C{i} on Query {{ ...C{} }}", i + 1);
        }
        assert_eq!(fields(&chain), None, "a chain too long to follow");
    }

    #[test]
    fn a_budget_is_shared() {
        let budget = BatchBudget::new(10);
        assert!(budget.clone().spend(6));
        assert!(!budget.spend(5));
        assert!(budget.spend(4));
    }
}
