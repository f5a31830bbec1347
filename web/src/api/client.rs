//! Runs typed GraphQL operations against `/graphql` with the session's access token: refreshed
//! before it expires, and once more when the hub answers UNAUTHENTICATED.

use gloo_net::http::Request;
use graphql_client::{GraphQLQuery, QueryBody, Response};
use serde::de::DeserializeOwned;
use shared::ErrorCode;

use super::{error::ApiError, session};

/// Runs a query or mutation.
pub async fn run<Q: GraphQLQuery>(variables: Q::Variables) -> Result<Q::ResponseData, ApiError> {
    let body = Q::build_query(variables);
    let token = session::token().await;
    match send::<Q::Variables, Q::ResponseData>(&body, token.as_deref()).await {
        Err(e) if e.is(ErrorCode::Unauthenticated) && token.is_some() => {
            let fresh = session::refresh().await?;
            send(&body, Some(&fresh)).await
        }
        other => other,
    }
}

async fn send<V: serde::Serialize, T: DeserializeOwned>(
    body: &QueryBody<V>,
    token: Option<&str>,
) -> Result<T, ApiError> {
    let mut request = Request::post("/graphql").header("Accept", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let response = request.json(body).map_err(ApiError::network)?.send().await.map_err(ApiError::network)?;
    let status = response.status();
    let text = response.text().await.map_err(ApiError::network)?;
    decode(&text).ok_or_else(|| ApiError::network(format!("HTTP {status} without a GraphQL answer")))?
}

/// A GraphQL answer: its data, or its first error. None when the text is not an answer.
pub fn decode<T: DeserializeOwned>(text: &str) -> Option<Result<T, ApiError>> {
    let response: Response<T> = serde_json::from_str(text).ok()?;
    if let Some(e) = response.errors.as_ref().and_then(|errors| errors.first()) {
        let ext = e.extensions.as_ref();
        return Some(Err(ApiError::from_graphql(&e.message, |key| ext.and_then(|x| x.get(key)))));
    }
    Some(response.data.ok_or_else(|| ApiError::network("an answer without data")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Data {
        a: i32,
    }

    #[test]
    fn answers_decode_to_data_or_their_first_error() {
        assert_eq!(decode::<Data>(r#"{"data":{"a":1}}"#), Some(Ok(Data { a: 1 })));
        let e = decode::<Data>(
            r#"{"data":null,"errors":[{"message":"server not found","extensions":{"code":"NOT_FOUND"}},{"message":"x"}]}"#,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(e.code, Some(ErrorCode::NotFound));
        assert_eq!(decode::<Data>("<html>bad gateway</html>"), None);
        assert!(decode::<Data>(r#"{"data":null}"#).unwrap().is_err());
    }
}
