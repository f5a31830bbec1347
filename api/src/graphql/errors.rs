//! Gives every error a code, including those the GraphQL engine raises itself (parse errors,
//! validation, limits): they are the client's fault, so BAD_USER_INPUT, with the argument named
//! when the message names one.

use std::sync::Arc;

use async_graphql::{
    Response, ServerError, Value,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextRequest, NextSubscribe},
    futures_util::stream::BoxStream,
};
use futures_util::StreamExt;
use shared::{ErrorCode, Suspicion};

use super::RequestInfo;
use crate::app::Services;

/// The extension factory.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        with_codes(next.run(ctx).await)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = with_codes(next.run(ctx, operation_name).await);
        note_refusal(ctx, &response);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let watcher = ctx.data_opt::<Services>().map(|s| s.alerts.clone());
        let ip = ctx.data_opt::<RequestInfo>().and_then(|r| r.client.ip.clone());
        next.run(ctx, stream)
            .map(move |response| {
                let response = with_codes(response);
                if let Some(alerts) = watcher.as_ref().filter(|_| refused(&response)) {
                    alerts.suspicious(Suspicion::Forbidden, ip.as_deref());
                }
                response
            })
            .boxed()
    }
}

/// Whether an answer holds a FORBIDDEN error (one query refused many times counts once).
fn refused(response: &Response) -> bool {
    response
        .errors
        .iter()
        .any(|e| e.extensions.as_ref().and_then(|x| x.get("code")) == Some(&Value::from(ErrorCode::Forbidden.as_str())))
}

/// Tells the suspicious-activity watcher of a FORBIDDEN answer, with the client's address.
fn note_refusal(ctx: &ExtensionContext<'_>, response: &Response) {
    if refused(response)
        && let Some(s) = ctx.data_opt::<Services>()
    {
        let ip = ctx.data_opt::<RequestInfo>().and_then(|r| r.client.ip.as_deref());
        s.alerts.suspicious(Suspicion::Forbidden, ip);
    }
}

fn with_codes(mut response: Response) -> Response {
    for err in &mut response.errors {
        add_code(err);
    }
    response
}

/// Sets `extensions.code` (and `field`) on an error that has none.
pub fn add_code(err: &mut ServerError) {
    let ext = err.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_some() {
        return;
    }
    ext.set("code", ErrorCode::BadUserInput.as_str());
    if ext.get("field").is_none()
        && let Some(field) = named_argument(&err.message)
    {
        ext.set("field", Value::from(field));
    }
}

/// The argument or field a validation message names, as in `Invalid value for argument "email"`.
fn named_argument(message: &str) -> Option<String> {
    for marker in ["argument \"", "field \""] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            if let Some(end) = rest.find('"') {
                return Some(rest[..end].trim_start_matches('$').to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_name_their_argument() {
        assert_eq!(
            named_argument(r#"Invalid value for argument "email", expected type "String""#).as_deref(),
            Some("email")
        );
        assert_eq!(named_argument("Syntax error"), None);
    }
}
