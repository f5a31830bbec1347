//! The password policy (ASVS 5.0): a minimum length (8 by default, configurable), at least 128
//! characters allowed, no composition rules; refused when it is one of the common passwords the
//! project ships (`api/data/common-passwords.txt`) or when zxcvbn scores it too weak. The error
//! says why, and the check runs off the async threads.

use std::{collections::HashSet, sync::LazyLock};

use zxcvbn::{Score, zxcvbn};

use crate::error::ApiError;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt").lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect()
});

/// zxcvbn's cost grows with length; the first characters decide whether a password is weak.
const SCORED_PREFIX: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_chars: usize,
}

impl PasswordPolicy {
    /// Checks `password` for the input `field`; `context` holds words the user is known by
    /// (email, display name), which make a password weak.
    pub async fn check(&self, field: &'static str, password: &str, context: &[&str]) -> Result<(), ApiError> {
        shared::validation::password_length(field, password, self.min_chars)?;
        if COMMON.contains(password.to_lowercase().as_str()) {
            return Err(ApiError::bad_input(field, "this is one of the most common passwords; choose another"));
        }
        let scored: String = password.chars().take(SCORED_PREFIX).collect();
        // Whole values and their words: "Ada Lovelace" makes "adalovelace1" weak.
        let mut words: Vec<String> = context.iter().map(|s| s.to_lowercase()).collect();
        for value in context {
            words.extend(value.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2).map(str::to_lowercase));
        }
        words.push("kutanga".into());
        let verdict = tokio::task::spawn_blocking(move || {
            let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
            let entropy = zxcvbn(&scored, &inputs);
            if entropy.score() >= Score::Three {
                return None;
            }
            let mut why = String::from("this password is too easy to guess");
            if let Some(feedback) = entropy.feedback() {
                if let Some(warning) = feedback.warning() {
                    why.push_str(&format!(": {warning}"));
                }
                if let Some(tip) = feedback.suggestions().first() {
                    why.push_str(&format!(" ({tip})"));
                }
            }
            Some(why)
        })
        .await?;
        match verdict {
            None => Ok(()),
            Some(why) => Err(ApiError::bad_input(field, why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy { min_chars: 8 }
    }

    async fn refused(pw: &str) -> String {
        match policy().check("password", pw, &["ada@example.org", "Ada Lovelace"]).await {
            Err(ApiError::BadInput { field, message }) => {
                assert_eq!(field, "password");
                message
            }
            other => panic!("{pw:?} was not refused: {other:?}"),
        }
    }

    #[tokio::test]
    async fn weak_and_common_passwords_are_refused_with_a_reason() {
        assert!(refused("short").await.contains("at least 8"));
        assert!(refused("baseball").await.contains("most common"));
        assert!(refused("Trustno1").await.contains("most common"));
        assert!(refused("Lovelace2024").await.contains("too easy"));
        assert!(refused("qwertyasdf12").await.contains("too easy"));
        assert!(refused("ada@example.org").await.contains("too easy"));
        assert!(refused("aaaaaaaaaaaa").await.contains("too easy"));
        assert!(refused(&"x".repeat(10_000)).await.contains("at most"));
    }

    #[tokio::test]
    async fn long_passphrases_pass_without_composition_rules() {
        for pw in ["correct horse battery staple", "tangerine submarine velvet", &"ünïcødé pässwörd ".repeat(7)] {
            policy().check("password", pw, &["ada@example.org"]).await.unwrap_or_else(|e| panic!("{pw}: {e}"));
        }
        assert!(COMMON.len() >= 9_000);
    }
}
