//! Signed access tokens (JWT, HS256 pinned): issued at login, checked on every request and on
//! the WebSocket's connection_init.

use std::{
    io::Write,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Who issues the tokens and for whom they are meant.
pub const ISSUER: &str = "kutanga-hub";
pub const AUDIENCE: &str = "kutanga-api";
/// The `typ` claim of an access token (a refresh token is opaque, never a JWT).
pub const ACCESS_TYPE: &str = "access";
/// Clock skew tolerated between hosts.
const LEEWAY_SECS: u64 = 5;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The session id: checked against the store, so that logout takes effect at once.
    pub sid: i64,
    pub typ: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
}

/// The signing keys and the validation rules.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    /// Signs links that work without a token (charts in alert webhooks); derived from the
    /// secret so that rotating the secret revokes them too.
    link_mac: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// Why a token was refused (all of them are UNAUTHENTICATED to the client).
#[derive(Debug, thiserror::Error)]
#[error("invalid access token: {0}")]
pub struct TokenError(String);

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> anyhow::Result<Self> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            validation,
            ttl,
            link_mac: <Hmac<Sha256> as Mac>::new_from_slice(
                &Sha256::new().chain_update(b"kutanga signed links v1\0").chain_update(secret).finalize(),
            )
            .map_err(|_| anyhow::anyhow!("cannot derive the link key"))?,
        })
    }

    /// Loads the key from config, or from `<data dir>/jwt.key`, generating it once (mode 0600).
    pub fn load(configured: Option<&str>, data_dir: &Path, ttl: Duration) -> anyhow::Result<Self> {
        if let Some(secret) = configured {
            return Self::new(secret.as_bytes(), ttl);
        }
        let path = data_dir.join("jwt.key");
        let secret = match std::fs::read_to_string(&path) {
            Ok(s) if s.trim().len() >= 32 => s.trim().to_owned(),
            Ok(_) => anyhow::bail!("{} is shorter than 32 bytes; delete it to generate a new key", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::create_dir_all(data_dir)?;
                let secret = super::random_secret() + &super::random_secret();
                let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
                file.write_all(secret.as_bytes())?;
                file.sync_all()?;
                tracing::info!(path = %path.display(), "generated a new token signing key");
                secret
            }
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        };
        Self::new(secret.as_bytes(), ttl)
    }

    /// The signature of a link's canonical text (hex HMAC-SHA256).
    pub fn sign_link(&self, text: &str) -> String {
        hex::encode(self.link_mac(text).finalize().into_bytes())
    }

    /// Whether `signature` is the link's (compared in constant time).
    pub fn verify_link(&self, text: &str, signature: &str) -> bool {
        hex::decode(signature).is_ok_and(|sig| self.link_mac(text).verify_slice(&sig).is_ok())
    }

    fn link_mac(&self, text: &str) -> Hmac<Sha256> {
        let mut mac = self.link_mac.clone();
        mac.update(text.as_bytes());
        mac
    }

    /// Issues an access token for a user's session; returns it with its expiry.
    pub fn issue(&self, user_id: i64, session_id: i64) -> anyhow::Result<(String, DateTime<Utc>)> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let exp = now + self.ttl.as_secs();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user_id.to_string(),
            sid: session_id,
            typ: ACCESS_TYPE.into(),
            iat: now,
            nbf: now,
            exp,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        let expires = DateTime::from_timestamp(exp as i64, 0).unwrap_or_else(Utc::now);
        Ok((token, expires))
    }

    /// Checks the signature, algorithm, time window, audience, issuer and type.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| TokenError(e.to_string()))?;
        if data.claims.typ != ACCESS_TYPE {
            return Err(TokenError("not an access token".into()));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// Property tests: `cargo xtask fuzz` runs them with more cases.
    mod fuzz {
        use super::*;

        proptest::proptest! {
            /// Any text offered as a token is refused, never a panic: random text, and JWT-shaped
            /// text (three base64url parts) with random content.
            #[test]
            fn any_text_is_not_a_token(text in "\\PC{0,200}", parts in proptest::collection::vec("[A-Za-z0-9_-]{0,80}", 3)) {
                proptest::prop_assert!(keys().verify(&text).is_err());
                proptest::prop_assert!(keys().verify(&parts.join(".")).is_err());
            }
        }
    }

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET, Duration::from_secs(900)).unwrap()
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    fn claims() -> Claims {
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "1".into(),
            sid: 1,
            typ: ACCESS_TYPE.into(),
            iat: now(),
            nbf: now(),
            exp: now() + 60,
        }
    }

    fn sign(c: &Claims) -> String {
        encode(&Header::new(Algorithm::HS256), c, &EncodingKey::from_secret(SECRET).unwrap()).unwrap()
    }

    #[test]
    fn an_issued_token_verifies() {
        let (token, _) = keys().issue(7, 3).unwrap();
        let c = keys().verify(&token).unwrap();
        assert_eq!((c.sub.as_str(), c.sid), ("7", 3));
    }

    #[test]
    fn bad_tokens_are_refused() {
        let k = keys();
        let mut expired = claims();
        expired.exp = now() - 30;
        let mut early = claims();
        early.nbf = now() + 60;
        let mut aud = claims();
        aud.aud = "someone-else".into();
        let mut iss = claims();
        iss.iss = "evil".into();
        let mut typ = claims();
        typ.typ = "refresh".into();
        for c in [expired, early, aud, iss, typ] {
            assert!(k.verify(&sign(&c)).is_err(), "{c:?}");
        }
        // Tampered signature: change one character inside it (the last one carries padding bits, and
        // replacing it by a fixed letter was a no-op one time in sixteen).
        let t = sign(&claims());
        let at = t.rfind('.').unwrap() + 5;
        let swapped = if t.as_bytes()[at] == b'A' { "B" } else { "A" };
        let tampered = format!("{}{swapped}{}", &t[..at], &t[at + 1..]);
        assert_ne!(tampered, t);
        assert!(k.verify(&tampered).is_err());
        // alg "none".
        let header = base64_url(r#"{"alg":"none","typ":"JWT"}"#);
        let body = base64_url(&serde_json::to_string(&claims()).unwrap());
        assert!(k.verify(&format!("{header}.{body}.")).is_err());
        // Another HMAC algorithm with the same key: the algorithm is pinned.
        let other =
            encode(&Header::new(Algorithm::HS512), &claims(), &EncodingKey::from_secret(SECRET).unwrap()).unwrap();
        assert!(k.verify(&other).is_err());
    }

    fn base64_url(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let b = s.as_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn signed_links_verify_only_unchanged() {
        let k = keys();
        let sig = k.sign_link("/charts/host/cpu.percent.png|1|2");
        assert!(k.verify_link("/charts/host/cpu.percent.png|1|2", &sig));
        assert!(!k.verify_link("/charts/host/cpu.percent.png|1|3", &sig));
        assert!(!k.verify_link("/charts/host/cpu.percent.png|1|2", "00"));
        assert!(!k.verify_link("/charts/host/cpu.percent.png|1|2", "not hex"));
        let other = TokenKeys::new(b"another secret of at least thirty-two bytes!", Duration::from_secs(60)).unwrap();
        assert!(!other.verify_link("/charts/host/cpu.percent.png|1|2", &sig));
    }

    #[test]
    fn the_key_file_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = TokenKeys::load(None, dir.path(), Duration::from_secs(60)).unwrap();
        let mode = std::fs::metadata(dir.path().join("jwt.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = TokenKeys::load(None, dir.path(), Duration::from_secs(60)).unwrap();
        let (token, _) = a.issue(1, 1).unwrap();
        assert!(b.verify(&token).is_ok());
    }
}
