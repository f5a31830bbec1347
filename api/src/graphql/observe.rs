//! Counts GraphQL operations for `/metrics`: by type, by the root fields they select (known to be
//! the schema's once validation passed; `invalid` otherwise) and by outcome (`ok` or the first
//! error's code), and keeps the open-subscriptions gauge.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use async_graphql::{
    Response, ServerError, ServerResult, ValidationResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest, NextSubscribe,
        NextValidation,
    },
    futures_util::stream::BoxStream,
    parser::types::{ExecutableDocument, OperationType, Selection},
};
use futures_util::StreamExt;

use crate::stats::Stats;

pub struct OperationStats(pub Stats);

impl ExtensionFactory for OperationStats {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationStatsExtension {
            stats: self.0.clone(),
            parsed: Arc::default(),
            valid: Arc::default(),
            chosen: Mutex::default(),
        })
    }
}

/// (type, root fields) of an operation.
type Label = (&'static str, String);

/// A document's operations: (name, label) each.
type Parsed = Arc<Mutex<Vec<(Option<String>, Label)>>>;

struct OperationStatsExtension {
    stats: Stats,
    /// The document's operations by name, as parsed (shared with a subscription's stream, which
    /// parses only once it is polled).
    parsed: Parsed,
    /// Whether the document passed validation (so its root fields are the schema's).
    valid: Arc<AtomicBool>,
    /// The operation that passed validation and runs.
    chosen: Mutex<Option<Label>>,
}

impl OperationStatsExtension {
    fn pick(&self, name: Option<&str>) -> Option<Label> {
        let parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        match name {
            Some(name) => parsed.iter().find(|(n, _)| n.as_deref() == Some(name)).map(|(_, l)| l.clone()),
            None if parsed.len() == 1 => parsed.first().map(|(_, l)| l.clone()),
            None => None,
        }
    }

    fn count(&self, label: Option<Label>, response: &Response) {
        let (kind, operation) = label.unwrap_or(("unknown", "invalid".to_owned()));
        self.stats.graphql_operation(kind, &operation, &outcome(response));
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationStatsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = next.run(ctx).await;
        let chosen = self.chosen.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.count(chosen, &response);
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let ops = doc.operations.iter().map(|(name, op)| (name.map(|n| n.to_string()), label_of(&op.node))).collect();
        *self.parsed.lock().unwrap_or_else(|p| p.into_inner()) = ops;
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        self.valid.store(result.is_ok(), Ordering::Relaxed);
        result
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        // Reached only once the document is valid: its root fields are the schema's.
        *self.chosen.lock().unwrap_or_else(|p| p.into_inner()) = self.pick(operation_name);
        next.run(ctx, operation_name).await
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let guard = self.stats.subscription_opened();
        let (stats, parsed, valid) = (self.stats.clone(), self.parsed.clone(), self.valid.clone());
        let mut first = true;
        next.run(ctx, stream)
            .map(move |response| {
                let _open = &guard;
                if std::mem::take(&mut first) {
                    // A subscription document holds one operation (the engine refuses others).
                    let parsed = parsed.lock().unwrap_or_else(|p| p.into_inner());
                    let (kind, operation) = match parsed.as_slice() {
                        [(_, label)] if valid.load(Ordering::Relaxed) => label.clone(),
                        _ => ("subscription", "invalid".to_owned()),
                    };
                    stats.graphql_operation(kind, &operation, &outcome(&response));
                }
                response
            })
            .boxed()
    }
}

fn label_of(op: &async_graphql::parser::types::OperationDefinition) -> Label {
    let kind = match op.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let mut fields: Vec<String> = op
        .selection_set
        .node
        .items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => f.node.name.node.to_string(),
            _ => "fragment".to_owned(),
        })
        .collect();
    fields.sort();
    fields.dedup();
    (kind, fields.join(","))
}

/// `ok`, or the first error's code in lower case.
fn outcome(response: &Response) -> String {
    match response.errors.first() {
        None => "ok".to_owned(),
        Some(e) => e
            .extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .and_then(|c| match c {
                async_graphql::Value::String(s) => Some(s.to_lowercase()),
                _ => None,
            })
            .unwrap_or_else(|| "bad_user_input".to_owned()),
    }
}
