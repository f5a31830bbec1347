//! What a template variable's value must look like, checked by the hub and, before it sends a
//! form, by the web app.

use serde::{Deserialize, Serialize};

/// A variable's rule, as a template file writes it (`rule = "port"`, `rule = { integer = { min
/// = 1, max = 8 } }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// A port number from 1024 to 65535.
    Port,
    /// An integer in a range.
    Integer { min: i64, max: i64 },
    /// One of a list.
    OneOf(Vec<String>),
    /// A regular expression the whole value must match.
    Pattern(String),
    /// A JSON array of strings, expanded into several arguments by `{{KEY...}}`.
    Args,
}

/// The kinds of rules, as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(async_graphql::Enum), graphql(name = "VariableRuleKind"))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleKind {
    /// A port number from 1024 to 65535.
    Port,
    /// A whole number from `min` to `max`.
    Integer,
    /// One of `options`.
    OneOf,
    /// Text that matches `pattern` as a whole (a regular expression).
    Pattern,
    /// A JSON array of strings.
    Args,
}

/// The most arguments an `args` variable may hold.
pub const MAX_ARGS: usize = 64;

impl Rule {
    pub fn kind(&self) -> RuleKind {
        match self {
            Self::Port => RuleKind::Port,
            Self::Integer { .. } => RuleKind::Integer,
            Self::OneOf(_) => RuleKind::OneOf,
            Self::Pattern(_) => RuleKind::Pattern,
            Self::Args => RuleKind::Args,
        }
    }

    /// A rule from the API's parts; None when a part its kind needs is missing.
    pub fn from_parts(
        kind: RuleKind,
        min: Option<i64>,
        max: Option<i64>,
        options: Option<Vec<String>>,
        pattern: Option<String>,
    ) -> Option<Self> {
        Some(match kind {
            RuleKind::Port => Self::Port,
            RuleKind::Integer => Self::Integer { min: min?, max: max? },
            RuleKind::OneOf => Self::OneOf(options?),
            RuleKind::Pattern => Self::Pattern(pattern?),
            RuleKind::Args => Self::Args,
        })
    }

    /// The rule in words, for the API.
    pub fn describe(&self) -> String {
        match self {
            Self::Port => "port (1024-65535)".into(),
            Self::Integer { min, max } => format!("integer {min}..{max}"),
            Self::OneOf(options) => format!("one of: {}", options.join(", ")),
            Self::Pattern(p) => format!("pattern {p}"),
            Self::Args => "JSON array of strings".into(),
        }
    }

    /// Checks a value against the rule; the message says what is expected. `matches(pattern,
    /// value)` tells whether the whole value matches a pattern: the hub answers with the `regex`
    /// crate, the browser with its own RegExp.
    pub fn check_with(
        &self,
        value: &str,
        matches: impl FnOnce(&str, &str) -> Result<bool, String>,
    ) -> Result<(), String> {
        match self {
            Self::Port => match value.parse::<u16>() {
                Ok(p) if p >= 1024 && !value.starts_with('+') => Ok(()),
                _ => Err("a port number from 1024 to 65535".into()),
            },
            Self::Integer { min, max } => match value.parse::<i64>() {
                Ok(n) if (*min..=*max).contains(&n) => Ok(()),
                _ => Err(format!("a whole number from {min} to {max}")),
            },
            Self::OneOf(options) => {
                if options.iter().any(|o| o == value) {
                    Ok(())
                } else {
                    Err(format!("one of {}", options.join(", ")))
                }
            }
            Self::Pattern(p) => {
                if matches(p, value)? {
                    Ok(())
                } else {
                    Err(format!("text matching {p}"))
                }
            }
            Self::Args => match serde_json::from_str::<Vec<String>>(value) {
                Ok(args) if args.iter().all(|a| !a.contains('\0')) && args.len() <= MAX_ARGS => Ok(()),
                _ => Err(format!("a JSON array of at most {MAX_ARGS} strings, such as [\"--port\", \"7777\"]")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_pattern(_: &str, _: &str) -> Result<bool, String> {
        Err("no patterns here".into())
    }

    #[test]
    fn rules_check_values() {
        assert!(Rule::Port.check_with("30000", no_pattern).is_ok());
        for v in ["80", "70000", "30000 --evil", "", "3e4", "+3000"] {
            assert!(Rule::Port.check_with(v, no_pattern).is_err(), "{v}");
        }
        let r = Rule::Integer { min: 1, max: 8 };
        assert!(r.check_with("8", no_pattern).is_ok());
        assert_eq!(r.check_with("9", no_pattern).unwrap_err(), "a whole number from 1 to 8");
        let r = Rule::OneOf(vec!["a".into(), "b".into()]);
        assert!(r.check_with("b", no_pattern).is_ok() && r.check_with("c", no_pattern).is_err());
        assert!(Rule::Args.check_with("[\"-x\", \"two words\"]", no_pattern).is_ok());
        assert!(Rule::Args.check_with("-x", no_pattern).is_err());
        let many = serde_json::to_string(&vec!["a"; MAX_ARGS + 1]).unwrap();
        assert!(Rule::Args.check_with(&many, no_pattern).is_err());
        let r = Rule::Pattern("[a-z]+".into());
        assert!(r.check_with("abc", |p, v| Ok(p == "[a-z]+" && v == "abc")).is_ok());
        assert_eq!(r.check_with("ABC", |_, _| Ok(false)).unwrap_err(), "text matching [a-z]+");
    }

    #[test]
    fn rules_round_trip_through_their_parts() {
        for rule in [
            Rule::Port,
            Rule::Integer { min: 1, max: 8 },
            Rule::OneOf(vec!["a".into()]),
            Rule::Pattern("x+".into()),
            Rule::Args,
        ] {
            let (min, max) = match &rule {
                Rule::Integer { min, max } => (Some(*min), Some(*max)),
                _ => (None, None),
            };
            let options = if let Rule::OneOf(o) = &rule { Some(o.clone()) } else { None };
            let pattern = if let Rule::Pattern(p) = &rule { Some(p.clone()) } else { None };
            assert_eq!(Rule::from_parts(rule.kind(), min, max, options, pattern), Some(rule));
        }
        assert_eq!(Rule::from_parts(RuleKind::Integer, Some(1), None, None, None), None);
    }

    #[test]
    fn rules_read_as_template_files_write_them() {
        let r: Rule = serde_json::from_str(r#"{"integer":{"min":1,"max":8}}"#).unwrap();
        assert_eq!(r, Rule::Integer { min: 1, max: 8 });
        let r: Rule = serde_json::from_str(r#""port""#).unwrap();
        assert_eq!(r, Rule::Port);
    }
}
