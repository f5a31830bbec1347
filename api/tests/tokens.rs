//! Forged and broken access tokens through the real HTTP API: each one is UNAUTHENTICATED.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Backend, Store, TestHub, code};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

const SECRET: &str = "a test secret that is long enough for HS256 signing";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

async fn forged_tokens_are_refused(backend: Backend) {
    let hub = TestHub::start_with(Store::new(backend).await, &["--jwt-secret", SECRET]).await;
    let good = hub.admin_token().await;
    assert!(hub.gql(Some(&good), "{ me { id } }", json!({})).await["errors"].is_null());
    // The genuine claims, to alter one at a time.
    let body: Value = {
        let part = good.split('.').nth(1).unwrap();
        let bytes = decode_b64(part);
        serde_json::from_slice(&bytes).unwrap()
    };
    let sign = |claims: &Value, alg: Algorithm, key: &[u8]| {
        encode(&Header::new(alg), claims, &EncodingKey::from_secret(key).unwrap()).unwrap()
    };
    let with = |k: &str, v: Value| {
        let mut c = body.clone();
        c[k] = v;
        c
    };
    let mut cases: Vec<(&str, String)> = vec![
        ("expired", sign(&with("exp", json!(now() - 60)), Algorithm::HS256, SECRET.as_bytes())),
        ("not yet valid", sign(&with("nbf", json!(now() + 600)), Algorithm::HS256, SECRET.as_bytes())),
        ("wrong audience", sign(&with("aud", json!("another-api")), Algorithm::HS256, SECRET.as_bytes())),
        ("wrong issuer", sign(&with("iss", json!("evil")), Algorithm::HS256, SECRET.as_bytes())),
        ("wrong type", sign(&with("typ", json!("refresh")), Algorithm::HS256, SECRET.as_bytes())),
        ("another subject", sign(&with("sub", json!("999")), Algorithm::HS256, SECRET.as_bytes())),
        ("another key", sign(&body, Algorithm::HS256, b"some other secret of enough length!!")),
        ("HS512 with the right key", sign(&body, Algorithm::HS512, SECRET.as_bytes())),
    ];
    // alg "none": no signature at all.
    cases
        .push(("alg none", format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(body.to_string().as_bytes()))));
    // HS/RS confusion: a header claiming RS256, "signed" with the HMAC key.
    let rs_header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = b64(body.to_string().as_bytes());
    let hs_sig = good.split('.').nth(2).unwrap();
    cases.push(("RS256 header on an HMAC signature", format!("{rs_header}.{payload}.{hs_sig}")));
    // A tampered payload with the original signature.
    let tampered = b64(with("sub", json!("2")).to_string().as_bytes());
    let parts: Vec<&str> = good.split('.').collect();
    cases.push(("tampered payload", format!("{}.{tampered}.{}", parts[0], parts[2])));
    cases.push(("garbage", "not.a.jwt".into()));

    for (what, token) in cases {
        let res = hub.gql(Some(&token), "{ me { id } }", json!({})).await;
        assert_eq!(code(&res), "UNAUTHENTICATED", "{what}: {res}");
    }
    hub.stop().await;
}

fn decode_b64(s: &str) -> Vec<u8> {
    const T: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let vals: Vec<u32> = s.chars().map(|c| T.find(c).unwrap() as u32).collect();
    let mut out = Vec::new();
    for chunk in vals.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &v)| acc | (v << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

on_both!(forged_tokens_are_refused);
