//! Limits on what a document may cost before and while it is parsed and validated.
//!
//! - **Nesting**: the parser recurses on every bracket of a value (lists, objects) as well as on
//!   selection sets, and a few kilobytes of `[[[[...` overflow its stack and abort the process.
//!   Documents (and variables) nested deeper than the limit are refused before they reach it.
//! - **Batches**: the complexity limit holds for a batch as a whole, not for each of its
//!   operations (the HTTP handler also caps how many operations a batch holds).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_graphql::{
    ServerError, ServerResult, ValidationResult, Value, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation},
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

/// The extension factory: `nesting` is the deepest bracket nesting accepted.
pub struct DocumentLimits {
    pub nesting: usize,
}

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentLimitsExtension { nesting: self.nesting })
    }
}

struct DocumentLimitsExtension {
    nesting: usize,
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentLimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if nesting(query, self.nesting) > self.nesting {
            return Err(too_deep("query", self.nesting));
        }
        if variables.values().any(|v| value_nesting(v) > self.nesting) {
            return Err(too_deep("variables", self.nesting));
        }
        next.run(ctx, query, variables).await
    }

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

    #[test]
    fn a_budget_is_shared() {
        let budget = BatchBudget::new(10);
        assert!(budget.clone().spend(6));
        assert!(!budget.spend(5));
        assert!(budget.spend(4));
    }
}
