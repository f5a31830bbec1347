//! Runs typed GraphQL operations against `/graphql` with the session's access token: refreshed
//! before it expires, and once more when the hub answers UNAUTHENTICATED.
//!
//! Only the ends are typed (variables in, data out): the request itself is one non-generic
//! function on JSON values, so that the WASM holds one copy of it rather than one per operation.

use gloo_net::http::Request;
use graphql_client::GraphQLQuery;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared::ErrorCode;

use super::{error::ApiError, session};

/// Runs a query or mutation.
pub async fn run<Q: GraphQLQuery>(variables: Q::Variables) -> Result<Q::ResponseData, ApiError> {
    let body = serde_json::to_value(Q::build_query(variables)).map_err(ApiError::network)?;
    typed(request(body).await?)
}

/// Runs an operation whose answer the page reads as JSON (the document is still one of
/// `documents/`, checked against the schema when the app compiles; its typed answer is unused).
pub async fn run_json(query: &str, operation_name: &str, variables: Value) -> Result<Value, ApiError> {
    request(serde_json::json!({ "query": query, "operationName": operation_name, "variables": variables })).await
}

/// Data of the expected shape.
pub fn typed<T: DeserializeOwned>(data: Value) -> Result<T, ApiError> {
    // From a borrowed value: serde_json's `&Value` deserializer needs no drop glue per type, so each
    // response type's derived code is smaller than through `from_value`.
    T::deserialize(&data).map_err(|e| ApiError::network(format!("an answer of an unexpected shape: {e}")))
}

async fn request(body: Value) -> Result<Value, ApiError> {
    let token = session::token().await;
    match send(&body, token.as_deref()).await {
        Err(e) if e.is(ErrorCode::Unauthenticated) && token.is_some() => {
            let fresh = session::refresh().await?;
            send(&body, Some(&fresh)).await
        }
        other => other,
    }
}

async fn send(body: &Value, token: Option<&str>) -> Result<Value, ApiError> {
    let mut request = Request::post("/graphql").header("Accept", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let response = request.json(body).map_err(ApiError::network)?.send().await.map_err(ApiError::network)?;
    let status = response.status();
    let text = response.text().await.map_err(ApiError::network)?;
    let answer: Value = serde_json::from_str(&text)
        .map_err(|_| ApiError::network(format!("HTTP {status} without a GraphQL answer")))?;
    data_of(answer)
}

/// A GraphQL answer's data, or its first error.
pub fn data_of(mut answer: Value) -> Result<Value, ApiError> {
    if let Some(e) = answer.get("errors").and_then(ApiError::first_of) {
        return Err(e);
    }
    match answer.get_mut("data").map(Value::take) {
        Some(data) if !data.is_null() => Ok(data),
        _ => Err(ApiError::network("an answer without data")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Data {
        a: i32,
    }

    #[test]
    fn answers_give_their_data_or_their_first_error() {
        let data = data_of(json!({ "data": { "a": 1 } })).unwrap();
        assert_eq!(typed::<Data>(data), Ok(Data { a: 1 }));
        let e = data_of(json!({
            "data": null,
            "errors": [{ "message": "server not found", "extensions": { "code": "NOT_FOUND" } }, { "message": "x" }]
        }))
        .unwrap_err();
        assert_eq!(e.code, Some(ErrorCode::NotFound));
        assert!(data_of(json!({ "data": null })).is_err());
        assert!(data_of(json!("<html>bad gateway</html>")).is_err());
        let wrong = typed::<Data>(json!({ "b": 2 })).unwrap_err();
        assert!(wrong.message.contains("unexpected shape"), "{wrong:?}");
    }
}
