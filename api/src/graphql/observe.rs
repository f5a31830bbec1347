//! How GraphQL operations are counted for `/metrics` (by the engine): by type, by the root fields
//! they select (the schema's once the operation ran; `invalid` otherwise) and by outcome (`ok` or
//! the first error's code).

use async_graphql::{
    Request, Response,
    parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection},
};

/// (type, root fields) of an operation.
pub type Label = (&'static str, String);

/// The label of the operation a request runs (by its name, or the document's only one); None
/// when the document does not parse or names no such operation.
pub fn label(request: &mut Request) -> Option<Label> {
    operation(request).map(|(_, op)| label_of(op))
}

/// The document of a request and the operation it runs (by its name, or the document's only
/// one); None when the document does not parse or names no such operation.
pub fn operation(request: &mut Request) -> Option<(&ExecutableDocument, &OperationDefinition)> {
    let name = request.operation_name.clone();
    let doc = request.parsed_query().ok()?;
    let op = match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name.as_str())?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    Some((doc, &op.node))
}

fn label_of(op: &OperationDefinition) -> Label {
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
pub fn outcome(response: &Response) -> String {
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
