//! Input rules that the hub enforces and the web app checks before it sends.
//!
//! Each check returns the normalised value or an [`InvalidField`] naming the field and what is
//! wrong with it, in words a user can act on.

use std::fmt;

/// The longest email address accepted (RFC 5321's path limit).
pub const EMAIL_MAX_LEN: usize = 254;
/// The longest display name accepted, in characters.
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;
/// The shortest password accepted by default (ASVS 5.0: at least 8).
pub const PASSWORD_MIN_CHARS: usize = 8;
/// The longest password accepted, in characters (ASVS asks for at least 64; 128 must be allowed).
pub const PASSWORD_MAX_CHARS: usize = 256;

/// A field whose value breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// The input field at fault, as the API names it.
    pub field: &'static str,
    /// What is wrong, for a person to read.
    pub message: String,
}

impl InvalidField {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for InvalidField {}

/// Normalises an email address (trimmed, lower-cased) and checks its shape.
///
/// The check is deliberately plain: one `@`, a non-empty local part, a domain with a dot, no
/// whitespace or control characters, at most [`EMAIL_MAX_LEN`] bytes. Unicode letters are allowed
/// (internationalised addresses exist); control and format characters are not.
pub fn normalize_email(raw: &str) -> Result<String, InvalidField> {
    let email = raw.trim().to_lowercase();
    let bad = |msg: &str| Err(InvalidField::new("email", msg));
    if email.is_empty() {
        return bad("an email address is required");
    }
    if email.len() > EMAIL_MAX_LEN {
        return bad("an email address has at most 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control() || is_invisible(c)) {
        return bad("an email address cannot contain spaces or control characters");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return bad("an email address needs an @");
    };
    if local.is_empty() || domain.contains('@') {
        return bad("an email address has the form name@example.org");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return bad("the domain of an email address needs a dot, as in example.org");
    }
    if email.chars().any(|c| matches!(c, '<' | '>' | '(' | ')' | '[' | ']' | ',' | ';' | ':' | '\\' | '"')) {
        return bad("an email address cannot contain <>()[],;:\\\"");
    }
    Ok(email)
}

/// Checks a display name: trimmed, 1 to [`DISPLAY_NAME_MAX_CHARS`] characters, no control
/// characters. Markup is allowed as text: the web app never renders it as HTML.
pub fn display_name(raw: &str) -> Result<String, InvalidField> {
    let name = raw.trim();
    let bad = |msg: String| Err(InvalidField::new("displayName", msg));
    if name.is_empty() {
        return bad("a display name cannot be empty".into());
    }
    if name.chars().count() > DISPLAY_NAME_MAX_CHARS {
        return bad(format!("a display name has at most {DISPLAY_NAME_MAX_CHARS} characters"));
    }
    if name.chars().any(|c| c.is_control() || is_invisible(c)) {
        return bad("a display name cannot contain control characters".into());
    }
    Ok(name.to_owned())
}

/// Checks a password's length (in characters, not bytes). Strength rules live on the server.
pub fn password_length(field: &'static str, raw: &str, min_chars: usize) -> Result<(), InvalidField> {
    let n = raw.chars().count();
    if n < min_chars {
        return Err(InvalidField::new(field, format!("a password has at least {min_chars} characters")));
    }
    if n > PASSWORD_MAX_CHARS {
        return Err(InvalidField::new(field, format!("a password has at most {PASSWORD_MAX_CHARS} characters")));
    }
    Ok(())
}

/// Zero-width and bidirectional format characters that make two names look alike.
/// Zero-width and bidirectional formatting characters: invisible, and able to make a name read
/// as another (`admin\u{202E}gpj.exe` shows as "adminexe.jpg").
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Whether a one-line name holds a control or an invisible character.
pub fn has_hidden(text: &str) -> bool {
    text.chars().any(|c| c.is_control() || is_invisible(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(normalize_email("  Ada@Example.ORG ").as_deref(), Ok("ada@example.org"));
        assert_eq!(normalize_email("jürgen@bücher.de").as_deref(), Ok("jürgen@bücher.de"));
    }

    #[test]
    fn bad_emails_name_the_field() {
        for raw in [
            "",
            "plain",
            "@example.org",
            "a@b",
            "a@@b.org",
            "a b@c.org",
            "a\u{0}@c.org",
            "a\u{200B}@c.org",
            "<script>@x.org",
            "a@b..org",
        ] {
            let err = normalize_email(raw).unwrap_err();
            assert_eq!(err.field, "email", "{raw:?}");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
    }

    #[test]
    fn hidden_characters_are_found() {
        for hidden in ["a\u{202e}b", "a\u{2067}b", "a\u{200b}b", "a\u{feff}", "a\nb", "a\u{0}"] {
            assert!(has_hidden(hidden), "{hidden:?}");
        }
        assert!(!has_hidden("Ünïcode 名前 <b>ok</b>"));
    }

    #[test]
    fn display_names_keep_markup_as_text_but_refuse_controls() {
        assert_eq!(display_name(" <b>Ada</b> ").as_deref(), Ok("<b>Ada</b>"));
        assert_eq!(display_name("Robert'); DROP TABLE users;--").as_deref(), Ok("Robert'); DROP TABLE users;--"));
        assert!(display_name("a\u{7}b").is_err());
        assert!(display_name("   ").is_err());
        assert!(display_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn password_length_counts_characters() {
        assert!(password_length("password", "ñññññññ", 8).is_err());
        assert!(password_length("password", "ññññññññ", 8).is_ok());
        assert!(password_length("password", &"x".repeat(128), 8).is_ok());
        assert!(password_length("password", &"x".repeat(10_000), 8).is_err());
    }
}
