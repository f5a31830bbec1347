//! The GraphQL client: POSTs a document to the hub and decodes `data` or the first error.

use std::fmt;

use gloo_net::http::Request;
use serde::{Deserialize, de::DeserializeOwned};
use shared::ErrorCode;

/// An error from the hub (with its code) or from the network.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} ({code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<WireError>,
}

#[derive(Deserialize)]
struct WireError {
    message: String,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct Extensions {
    code: Option<String>,
}

fn network(e: impl fmt::Display) -> ApiError {
    ApiError { code: None, message: format!("cannot reach the hub: {e}") }
}

/// Runs a query or mutation against `/graphql`.
pub async fn query<T: DeserializeOwned>(document: &str, variables: Option<serde_json::Value>) -> Result<T, ApiError> {
    let body = serde_json::json!({ "query": document, "variables": variables });
    let response = Request::post("/graphql").json(&body).map_err(network)?.send().await.map_err(network)?;
    let envelope: Envelope<T> = response.json().await.map_err(network)?;
    if let Some(err) = envelope.errors.into_iter().next() {
        let code = err.extensions.and_then(|e| e.code).and_then(|c| ErrorCode::parse(&c));
        return Err(ApiError { code, message: err.message });
    }
    envelope.data.ok_or_else(|| ApiError { code: None, message: "the hub answered without data".into() })
}
