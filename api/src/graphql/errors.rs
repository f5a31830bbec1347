//! Gives every error a code, including those the GraphQL engine raises itself (parse errors,
//! validation, limits): they are the client's fault, so BAD_USER_INPUT, with the argument named
//! when the message names one.

use async_graphql::{Response, ServerError, Value};
use shared::ErrorCode;

/// Whether an answer holds a FORBIDDEN error (one query refused many times counts once).
pub(super) fn refused(response: &Response) -> bool {
    response
        .errors
        .iter()
        .any(|e| e.extensions.as_ref().and_then(|x| x.get("code")) == Some(&Value::from(ErrorCode::Forbidden.as_str())))
}

/// Every error of an answer with its code.
pub(super) fn with_codes(mut response: Response) -> Response {
    for err in &mut response.errors {
        add_code(err);
    }
    response
}

/// Sets `extensions.code` (and `field`) on an error that has none.
fn add_code(err: &mut ServerError) {
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
