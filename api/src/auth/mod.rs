//! Who the caller is: passwords, access tokens, sessions and the permission check.
//!
//! Never logs a password, a token or a hash.

pub mod cache;
pub mod caller;
pub mod limits;
pub mod password;
pub mod policy;
pub mod reset;
pub mod sessions;
pub mod token;

pub use caller::{Caller, Who};
pub use sessions::{ClientInfo, SessionPolicy};
pub use token::TokenKeys;

/// A random secret of 32 bytes, hex-encoded (refresh tokens, generated passwords, keys).
pub fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The SHA-256 of a secret, hex-encoded: how refresh and reset tokens are stored.
pub fn digest(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}
