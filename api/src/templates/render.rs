//! Variables in, argv out: values are checked against their rules, then substituted into each
//! argument separately. A value is never split, so `30000 --evil`, `; rm -rf /`, `$(id)` or a
//! newline can never become a second argument, an option or a shell command (there is no shell).

use std::{collections::BTreeMap, path::Path};

use super::{
    Definition, Rule,
    definition::{RuleCheck, placeholders},
};
use crate::error::ApiError;

/// A server's variable values, complete and checked.
pub type Values = BTreeMap<String, String>;

/// The longest value accepted.
const MAX_VALUE_CHARS: usize = 1024;

/// What the supervisor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Files to write on install: a path relative to the server's folder, and the content.
    pub files: Vec<(String, String)>,
    pub stop_command: Option<String>,
    pub ready_patterns: Vec<String>,
    /// Relative to the server's folder.
    pub working_dir: Option<String>,
}

/// Merges the values given with the stored ones and the defaults, and checks them all.
/// `privileged`: whether the caller may set variables marked `privileged`.
pub fn resolve_values(
    def: &Definition,
    given: &[(String, String)],
    stored: Option<&Values>,
    privileged: bool,
) -> Result<Values, ApiError> {
    let field = |key: &str| format!("variables.{key}");
    let mut values = Values::new();
    for (key, value) in given {
        let var = def
            .variable(key)
            .ok_or_else(|| ApiError::bad_input(field(key), format!("the template has no variable `{key}`")))?;
        if values.contains_key(key) {
            return Err(ApiError::bad_input(field(key), "given twice"));
        }
        if !var.editable && Some(value) != var.default.as_ref() {
            return Err(ApiError::bad_input(field(key), "this variable cannot be changed"));
        }
        let unchanged = stored.and_then(|s| s.get(key)) == Some(value);
        if var.privileged && !privileged && !unchanged {
            return Err(ApiError::Forbidden("template.manage".into()));
        }
        values.insert(key.clone(), value.clone());
    }
    for var in &def.variables {
        if values.contains_key(&var.key) {
            continue;
        }
        if let Some(v) = stored.and_then(|s| s.get(&var.key)).or(var.default.as_ref()) {
            values.insert(var.key.clone(), v.clone());
        }
    }
    for var in &def.variables {
        let key = &var.key;
        let value = values.get(key).map(String::as_str).unwrap_or_default();
        if value.is_empty() {
            if var.required {
                return Err(ApiError::bad_input(field(key), format!("`{key}` is required")));
            }
            values.insert(key.clone(), String::new());
            continue;
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(ApiError::bad_input(field(key), format!("a value has at most {MAX_VALUE_CHARS} characters")));
        }
        if value.chars().any(char::is_control) {
            return Err(ApiError::bad_input(field(key), "a value cannot contain newlines or control characters"));
        }
        if let Some(rule) = &var.rule {
            rule.check(value)
                .map_err(|expected| ApiError::bad_input(field(key), format!("`{key}` must be {expected}")))?;
        }
    }
    Ok(values)
}

/// The server a template is rendered for.
#[derive(Debug, Clone)]
pub struct ServerContext<'a> {
    pub dir: &'a Path,
    pub id: i64,
    pub name: &'a str,
}

fn lookup<'a>(key: &str, values: &'a Values, ctx: &'a ServerContext<'_>, id: &'a str, dir: &'a str) -> &'a str {
    match key {
        "SERVER_DIR" => dir,
        "SERVER_ID" => id,
        "SERVER_NAME" => ctx.name,
        _ => values.get(key).map(String::as_str).unwrap_or_default(),
    }
}

fn substitute(text: &str, values: &Values, ctx: &ServerContext<'_>) -> String {
    let (id, dir) = (ctx.id.to_string(), ctx.dir.display().to_string());
    let mut out = text.to_owned();
    for (key, _) in placeholders(text) {
        out = out.replace(&format!("{{{{{key}}}}}"), lookup(&key, values, ctx, &id, &dir));
    }
    out
}

/// Renders a template for a server: each argument stays one argument.
pub fn render(def: &Definition, values: &Values, ctx: &ServerContext<'_>) -> Launch {
    let mut args = Vec::new();
    for arg in &def.args {
        match placeholders(arg).first() {
            Some((key, true)) => {
                let list: Vec<String> = values.get(key).and_then(|v| serde_json::from_str(v).ok()).unwrap_or_default();
                args.extend(list);
            }
            _ => args.push(substitute(arg, values, ctx)),
        }
    }
    let is_args_var = |key: &str| def.variable(key).is_some_and(|v| v.rule == Some(Rule::Args));
    debug_assert!(!placeholders(&def.executable).iter().any(|(k, _)| is_args_var(k)));
    Launch {
        program: substitute(&def.executable, values, ctx),
        args,
        env: def.env.iter().map(|(k, v)| (k.clone(), substitute(v, values, ctx))).collect(),
        files: def.files.iter().map(|f| (f.path.clone(), substitute(&f.content, values, ctx))).collect(),
        stop_command: def.stop.command.as_ref().map(|c| substitute(c, values, ctx)).filter(|c| !c.is_empty()),
        ready_patterns: def
            .ready
            .as_ref()
            .map(|r| r.patterns.iter().map(|p| substitute(p, values, ctx)).filter(|p| !p.is_empty()).collect())
            .unwrap_or_default(),
        working_dir: def.working_dir.clone(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const TEMPLATE: &str = r#"
name = "Echo"
executable = "/bin/echo"
args = ["--port", "{{PORT}}", "--name={{NAME}}", "{{NAME}}", "{{EXTRA...}}"]
[[variables]]
key = "PORT"
default = "30000"
rule = "port"
[[variables]]
key = "NAME"
default = "x"
[[variables]]
key = "EXTRA"
default = "[]"
rule = "args"
"#;

    fn ctx() -> ServerContext<'static> {
        ServerContext { dir: Path::new("/srv/1"), id: 1, name: "one" }
    }

    #[test]
    fn hostile_port_values_are_refused() {
        let def = Definition::parse(TEMPLATE).unwrap();
        for v in ["30000 --evil", "; rm -rf /", "$(id)", "30000\n--evil", "80"] {
            let err = resolve_values(&def, &[("PORT".into(), v.into())], None, false).unwrap_err();
            assert!(matches!(err, ApiError::BadInput { ref field, .. } if field == "variables.PORT"), "{v}: {err:?}");
        }
        let err = resolve_values(&def, &[("NAME".into(), "a\nb".into())], None, false).unwrap_err();
        assert!(err.to_string().contains("newlines"));
        let err = resolve_values(&def, &[("NOPE".into(), "1".into())], None, false).unwrap_err();
        assert!(err.to_string().contains("no variable"));
    }

    /// Property tests: `cargo xtask fuzz` runs them with more cases.
    mod fuzz {
        use super::*;

        proptest! {
            /// Whatever a free-text value holds, the argv has the same shape: each placeholder
            /// becomes exactly the value, inside exactly one argument.
            #[test]
            fn a_value_never_becomes_another_argument(name in "[^\\p{Cc}]{1,60}") {
                let def = Definition::parse(TEMPLATE).unwrap();
                let values = resolve_values(&def, &[("NAME".into(), name.clone())], None, false).unwrap();
                let launch = render(&def, &values, &ctx());
                prop_assert_eq!(launch.program.as_str(), "/bin/echo");
                prop_assert_eq!(launch.args, vec!["--port".to_owned(), "30000".to_owned(), format!("--name={name}"), name.clone()]);
            }

            /// A list variable spreads into exactly its items, and nothing else splits.
            #[test]
            fn a_list_spreads_into_its_items_only(items in proptest::collection::vec("[^\\p{Cc}]{0,20}", 0..6)) {
                let def = Definition::parse(TEMPLATE).unwrap();
                let json = serde_json::to_string(&items).unwrap();
                let values = resolve_values(&def, &[("EXTRA".into(), json)], None, false).unwrap();
                let launch = render(&def, &values, &ctx());
                prop_assert_eq!(&launch.args[4..], &items[..]);
            }
        }
    }
}
