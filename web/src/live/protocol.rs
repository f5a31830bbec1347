//! The graphql-transport-ws messages (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md)
//! and the hub's close codes, free of any browser type so that they are tested natively.

use serde::Serialize;
use serde_json::Value;

/// The subprotocol the hub speaks.
pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// A message to the hub.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outgoing {
    ConnectionInit {
        payload: Value,
    },
    Subscribe {
        id: String,
        payload: Request,
    },
    Complete {
        id: String,
    },
    /// The hub reads a fresh `authorization` in a ping's payload and keeps the socket open.
    Ping {
        payload: Value,
    },
    Pong {},
}

/// An operation as the protocol carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub query: String,
    pub variables: Value,
    pub operation_name: String,
}

/// A message from the hub.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    ConnectionAck {
        payload: Option<Value>,
    },
    /// `payload` is a GraphQL response: `data` and maybe `errors`.
    Next {
        id: String,
        payload: Value,
    },
    /// The operation failed before it ran (validation, permission): its errors.
    Error {
        id: String,
        payload: Value,
    },
    Complete {
        id: String,
    },
    Ping {
        payload: Option<Value>,
    },
    Pong {
        payload: Option<Value>,
    },
}

impl Outgoing {
    pub fn init(token: &str) -> Self {
        Self::ConnectionInit { payload: authorization(token) }
    }

    /// A ping that hands the hub a fresh access token for this socket.
    pub fn renew(token: &str) -> Self {
        Self::Ping { payload: authorization(token) }
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn authorization(token: &str) -> Value {
    serde_json::json!({ "authorization": format!("Bearer {token}") })
}

impl Incoming {
    /// A message, or None for anything that is not one (read by hand from a JSON value: a
    /// derived internally tagged enum weighs 16 KB of WASM).
    pub fn parse(text: &str) -> Option<Self> {
        let Value::Object(mut message) = serde_json::from_str::<Value>(text).ok()? else { return None };
        let payload = message.remove("payload").filter(|p| !p.is_null());
        let id = || message.get("id").and_then(Value::as_str).map(str::to_owned);
        Some(match message.get("type")?.as_str()? {
            "connection_ack" => Self::ConnectionAck { payload },
            "next" => Self::Next { id: id()?, payload: payload? },
            "error" => Self::Error { id: id()?, payload: payload? },
            "complete" => Self::Complete { id: id()? },
            "ping" => Self::Ping { payload },
            "pong" => Self::Pong { payload },
            _ => return None,
        })
    }
}

/// What a closed socket means for the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// 4403: the session ended (signed out elsewhere, disabled, revoked): sign in again.
    SessionEnded,
    /// 4401: the access token expired: reconnect at once with a fresh one.
    TokenExpired,
    /// 4429 / 4409 / 4400 and every other code: the network or the hub went away; reconnect
    /// after a pause.
    Lost,
}

impl Closed {
    pub fn from_code(code: u16) -> Self {
        match code {
            4403 => Self::SessionEnded,
            4401 => Self::TokenExpired,
            _ => Self::Lost,
        }
    }
}

/// The pause before reconnect attempt `attempt` (0 first): exponential from half a second to 30
/// seconds, with "equal jitter" (half fixed, half random) so that tabs and clients that lost the
/// hub together do not come back in step. `random` is in [0, 1).
pub fn backoff_ms(attempt: u32, random: f64) -> u32 {
    let ceiling = (500u64 << attempt.min(6)).min(30_000) as f64;
    let half = ceiling / 2.0;
    (half + half * random.clamp(0.0, 1.0)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_what_the_protocol_says() {
        assert_eq!(
            Outgoing::init("t").to_text(),
            r#"{"type":"connection_init","payload":{"authorization":"Bearer t"}}"#
        );
        let sub = Outgoing::Subscribe {
            id: "7".into(),
            payload: Request {
                query: "subscription S { a }".into(),
                variables: Value::Null,
                operation_name: "S".into(),
            },
        };
        assert_eq!(
            sub.to_text(),
            r#"{"type":"subscribe","id":"7","payload":{"query":"subscription S { a }","variables":null,"operationName":"S"}}"#
        );
        assert_eq!(Outgoing::Complete { id: "7".into() }.to_text(), r#"{"type":"complete","id":"7"}"#);
        assert_eq!(Outgoing::Pong {}.to_text(), r#"{"type":"pong"}"#);
        assert_eq!(Outgoing::renew("n").to_text(), r#"{"type":"ping","payload":{"authorization":"Bearer n"}}"#);
    }

    #[test]
    fn the_hubs_messages_parse() {
        assert_eq!(Incoming::parse(r#"{"type":"connection_ack"}"#), Some(Incoming::ConnectionAck { payload: None }));
        assert_eq!(
            Incoming::parse(r#"{"type":"next","id":"1","payload":{"data":{"a":1}}}"#),
            Some(Incoming::Next { id: "1".into(), payload: serde_json::json!({"data":{"a":1}}) })
        );
        assert!(matches!(
            Incoming::parse(r#"{"type":"error","id":"1","payload":[{"message":"no"}]}"#),
            Some(Incoming::Error { .. })
        ));
        assert!(matches!(
            Incoming::parse(r#"{"type":"pong","payload":{"expiresAt":"x"}}"#),
            Some(Incoming::Pong { .. })
        ));
        assert_eq!(Incoming::parse(r#"{"type":"ping"}"#), Some(Incoming::Ping { payload: None }));
        assert_eq!(Incoming::parse("not json"), None);
        assert_eq!(Incoming::parse(r#"{"type":"next"}"#), None, "a next without its id is dropped");
        assert_eq!(Incoming::parse(r#"{"type":"next","id":"1"}"#), None, "a next without its payload is dropped");
        assert_eq!(Incoming::parse(r#"{"type":"whatever","id":"1"}"#), None);
        assert_eq!(Incoming::parse("[1,2]"), None);
        assert_eq!(Incoming::parse(r#"{"type":"complete","id":"9"}"#), Some(Incoming::Complete { id: "9".into() }));
    }

    #[test]
    fn close_codes_decide_what_comes_next() {
        assert_eq!(Closed::from_code(4403), Closed::SessionEnded);
        assert_eq!(Closed::from_code(4401), Closed::TokenExpired);
        for code in [1000, 1001, 1006, 4400, 4429, 4500] {
            assert_eq!(Closed::from_code(code), Closed::Lost);
        }
    }

    #[test]
    fn backoff_grows_to_a_ceiling_with_jitter() {
        assert_eq!(backoff_ms(0, 0.0), 250);
        assert_eq!(backoff_ms(0, 0.999_999), 499);
        assert_eq!(backoff_ms(3, 0.0), 2_000);
        assert_eq!(backoff_ms(6, 1.0), 30_000);
        assert_eq!(backoff_ms(60, 0.5), 22_500, "no overflow, capped at 30 s");
        let spread: std::collections::BTreeSet<u32> = (0..10).map(|i| backoff_ms(4, f64::from(i) / 10.0)).collect();
        assert_eq!(spread.len(), 10, "jitter spreads clients apart");
    }
}
