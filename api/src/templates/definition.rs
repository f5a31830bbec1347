//! The template file format.

use std::{collections::BTreeMap, path::Component};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// A template file. Its fields are in the order [`Definition::to_toml`] writes them (plain values
/// before tables); what is left at its default is not written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Shown to users, unique among templates.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The program: an absolute path, or a placeholder such as `{{COMMAND}}`.
    pub executable: String,
    /// Its arguments, each one argument after substitution (never split, never a shell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The variable that holds the server's port, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_variable: Option<String>,
    /// Where the game runs, relative to the server's folder (default: the folder itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<VariableDef>,
    /// Environment variables, with placeholders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Files written into the server's folder on install, with placeholders in their content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileDef>,
    #[serde(default, skip_serializing_if = "StopDef::is_default")]
    pub stop: StopDef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<ReadyDef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeDef>,
    #[serde(default, skip_serializing_if = "CrashPolicy::is_default")]
    pub crash: CrashPolicy,
}

/// A variable a server sets.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDef {
    /// Upper-case letters, digits and `_`, as in `{{PORT}}`.
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Whether server owners may change it (false: the default always applies).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub editable: bool,
    /// Only holders of `template.manage` may set it (it decides what runs).
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn is_false(b: &bool) -> bool {
    !*b
}

pub use shared::template::Rule;

/// Checks values against a rule, with patterns compiled by the `regex` crate.
pub trait RuleCheck {
    fn check(&self, value: &str) -> Result<(), String>;
}

impl RuleCheck for Rule {
    fn check(&self, value: &str) -> Result<(), String> {
        self.check_with(value, |pattern, value| {
            Regex::new(&format!("^(?:{pattern})$")).map(|re| re.is_match(value)).map_err(|e| e.to_string())
        })
    }
}

/// A file written into the server's folder on install.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileDef {
    /// Relative to the server's folder; never absolute, never `..`.
    pub path: String,
    pub content: String,
}

/// How to stop: a console command, then a signal, then SIGKILL, each after its timeout.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StopDef {
    /// Written to the server's stdin first (empty or absent: skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default = "fifteen")]
    pub command_timeout: u64,
    /// SIGTERM, SIGINT, SIGHUP or SIGQUIT.
    #[serde(default = "sigterm")]
    pub signal: String,
    #[serde(default = "ten")]
    pub signal_timeout: u64,
}

impl Default for StopDef {
    fn default() -> Self {
        Self { command: None, command_timeout: fifteen(), signal: sigterm(), signal_timeout: ten() }
    }
}

impl StopDef {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn fifteen() -> u64 {
    15
}
fn ten() -> u64 {
    10
}
fn sigterm() -> String {
    "SIGTERM".into()
}

/// How to tell the server is ready: a line of output (ANSI codes stripped) that contains one of
/// `patterns` or matches one of `regex`, within `timeout` seconds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyDef {
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub regex: Vec<String>,
    #[serde(default = "sixty")]
    pub timeout: u64,
}

fn sixty() -> u64 {
    60
}

/// A check, every status interval once the server is ready, that it still serves; three
/// failures in a row kill it (and the crash policy restarts it).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeDef {
    pub kind: ProbeKind,
}

/// How the hub checks, every status interval, that a ready server still serves; three failures in
/// a row kill it (and its crash policy restarts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, async_graphql::Enum)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// A TCP connection to the port: the strongest check, but many games log each connection.
    Tcp,
    /// A datagram to the port, failing on "port unreachable".
    Udp,
    /// No network at all: the game's process must be alive and neither stopped nor a zombie.
    /// Quiet on every game's console; it misses a game that runs but no longer serves.
    Process,
}

/// What to do when the server exits unasked.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrashPolicy {
    #[serde(default = "yes")]
    pub auto_restart: bool,
    /// At most this many restarts within `window_seconds`; then it stays CRASHED.
    #[serde(default = "three")]
    pub max_restarts: u32,
    #[serde(default = "five_minutes")]
    pub window_seconds: u64,
    /// The first restart waits this long; each next one twice as long.
    #[serde(default = "two")]
    pub backoff_seconds: u64,
}

impl Default for CrashPolicy {
    fn default() -> Self {
        Self { auto_restart: true, max_restarts: three(), window_seconds: five_minutes(), backoff_seconds: two() }
    }
}

impl CrashPolicy {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn three() -> u32 {
    3
}
fn five_minutes() -> u64 {
    300
}
fn two() -> u64 {
    2
}

/// The most a template file may hold.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// Placeholders every template may use.
pub const BUILT_IN_PLACEHOLDERS: [&str; 3] = ["SERVER_DIR", "SERVER_ID", "SERVER_NAME"];

/// Why a template is not valid, and where: `at` is the place in the template's parts as the API
/// names them (`executable`, `variables.2.default`, `stop.signal`), absent for the file as a
/// whole (a TOML syntax error names its line and column in the message instead).
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub at: Option<String>,
    pub message: String,
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError::bad_input("definition", p.message)
    }
}

fn bad_at(at: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { at: Some(at.into()), message: message.into() }
}

fn bad(message: impl Into<String>) -> Problem {
    Problem { at: None, message: message.into() }
}

/// The keys named by `{{KEY}}` or `{{KEY...}}` in a text.
pub fn placeholders(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let inner = &after[..end];
        let (key, spread) = match inner.strip_suffix("...") {
            Some(k) => (k, true),
            None => (inner, false),
        };
        out.push((key.to_owned(), spread));
        rest = &after[end + 2..];
    }
    out
}

impl Definition {
    /// Parses and checks a template file.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        Ok(Self::parse_at(text)?)
    }

    /// [`Definition::parse`], with the place of a mistake.
    pub fn parse_at(text: &str) -> Result<Self, Problem> {
        let def = Self::read(text)?;
        def.check()?;
        def.check_bounds()?;
        Ok(def)
    }

    /// A template read back from the database: checked as it was when it was stored, so that a
    /// bound added since does not stop an existing template's servers.
    pub fn parse_stored(text: &str) -> Result<Self, ApiError> {
        let def = Self::read(text)?;
        def.check()?;
        Ok(def)
    }

    /// The file's TOML, unchecked; a syntax error names its line and column.
    fn read(text: &str) -> Result<Self, Problem> {
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(bad("a template has at most 64 KiB"));
        }
        toml::from_str(text).map_err(|e| {
            let place = e.span().map(|span| {
                let (line, column) = line_column(text, span.start);
                format!("line {line}, column {column}: ")
            });
            bad(format!("not a valid template: {}{}", place.unwrap_or_default(), e.message()))
        })
    }

    /// The template file's text, as [`Definition::parse`] reads it back: comments and the order
    /// of the original are not kept, values at their default are left out.
    pub fn to_toml(&self) -> Result<String, ApiError> {
        use toml_edit::Item;
        let mut doc = toml_edit::ser::to_document(self).map_err(ApiError::internal)?;
        // The serialiser writes everything inline; a template file, as people write it, has
        // `[stop]` tables and `[[variables]]` lists of tables, and keeps `rule = { ... }` inline.
        for (_, item) in doc.as_table_mut().iter_mut() {
            *item = match std::mem::take(item).into_table() {
                Ok(table) => Item::Table(table),
                Err(item) => item.into_array_of_tables().map_or_else(|item| item, Item::ArrayOfTables),
            };
        }
        Ok(doc.to_string())
    }

    /// What would work but probably is not meant: today, a program that is not on this host.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if placeholders(&self.executable).is_empty() {
            use std::os::unix::fs::PermissionsExt;
            match std::fs::metadata(&self.executable) {
                Err(_) => out.push(format!(
                    "`{}` does not exist on this host: servers from this template cannot start until it is installed",
                    self.executable
                )),
                Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => {
                    out.push(format!("`{}` is not an executable file", self.executable));
                }
                Ok(_) => {}
            }
        }
        out
    }

    /// Checks everything parsing cannot: names, keys, rules, placeholders, paths, bounds.
    pub fn check(&self) -> Result<(), Problem> {
        if self.name.trim().is_empty() || self.name.chars().count() > 128 {
            return Err(bad_at("name", "`name` has 1 to 128 characters"));
        }
        let key_re = Regex::new("^[A-Z][A-Z0-9_]{0,31}$").map_err(|e| bad(e.to_string()))?;
        let mut keys = Vec::new();
        for (i, v) in self.variables.iter().enumerate() {
            let at = |part: &str| format!("variables.{i}.{part}");
            if BUILT_IN_PLACEHOLDERS.contains(&v.key.as_str()) {
                return Err(bad_at(
                    at("key"),
                    format!(
                        "variable `{}`: the hub sets {} itself; choose another key",
                        v.key,
                        BUILT_IN_PLACEHOLDERS.map(|k| format!("{{{{{k}}}}}")).join(", ")
                    ),
                ));
            }
            if !key_re.is_match(&v.key) {
                return Err(bad_at(
                    at("key"),
                    format!(
                        "variable `{}`: keys are 1 to 32 upper-case letters, digits and _, starting with a letter",
                        v.key
                    ),
                ));
            }
            if keys.contains(&v.key) {
                return Err(bad_at(at("key"), format!("variable `{}` is defined twice", v.key)));
            }
            keys.push(v.key.clone());
            if let Some(Rule::Pattern(p)) = &v.rule {
                Regex::new(p).map_err(|e| bad_at(at("rule"), format!("variable `{}`: bad pattern: {e}", v.key)))?;
            }
            if let Some(Rule::Integer { min, max }) = &v.rule
                && min > max
            {
                return Err(bad_at(at("rule"), format!("variable `{}`: min is above max", v.key)));
            }
            if let (Some(default), Some(rule)) = (&v.default, &v.rule)
                && (!default.is_empty() || v.required)
            {
                rule.check(default)
                    .map_err(|e| bad_at(at("default"), format!("variable `{}`: the default is not {e}", v.key)))?;
            }
            if !v.editable && v.default.is_none() {
                return Err(bad_at(
                    at("default"),
                    format!("variable `{}` is not editable, so it needs a default", v.key),
                ));
            }
        }
        let known = |key: &str| keys.iter().any(|k| k == key) || BUILT_IN_PLACEHOLDERS.contains(&key);
        let spreadable = |key: &str| self.variables.iter().any(|v| v.key == key && v.rule == Some(Rule::Args));
        // (where, what the message calls it, the text)
        let mut texts: Vec<(String, &str, &str)> = vec![("executable".into(), "executable", &self.executable)];
        texts.extend(self.env.values().map(|v| ("env".into(), "env", v.as_str())));
        texts.extend(
            self.files.iter().enumerate().map(|(i, f)| (format!("files.{i}.content"), "files", f.content.as_str())),
        );
        if let Some(stop) = &self.stop.command {
            texts.push(("stop.command".into(), "stop.command", stop));
        }
        if let Some(ready) = &self.ready {
            texts.extend(ready.patterns.iter().map(|p| ("ready.patterns".into(), "ready.patterns", p.as_str())));
        }
        for (at, place, text) in &texts {
            for (key, spread) in placeholders(text) {
                if !known(&key) || spread {
                    return Err(bad_at(at, format!("{place}: unknown placeholder {{{{{key}}}}}")));
                }
            }
        }
        for arg in &self.args {
            for (key, spread) in placeholders(arg) {
                if !known(&key) {
                    return Err(bad_at("args", format!("args: unknown placeholder {{{{{key}}}}}")));
                }
                if spread && (!spreadable(&key) || arg != &format!("{{{{{key}...}}}}")) {
                    return Err(bad_at(
                        "args",
                        format!("args: {{{{{key}...}}}} must be a whole argument and an `args` variable"),
                    ));
                }
            }
        }
        if !self.executable.starts_with('/') && !self.executable.starts_with("{{") {
            return Err(bad_at("executable", "`executable` is an absolute path or a placeholder"));
        }
        // Whoever sets a value used in the program's path chooses the program: only holders of
        // template.manage may (privileged variables), never a server's name or owner.
        for (key, _) in placeholders(&self.executable) {
            let privileged = self.variables.iter().any(|v| v.key == key && v.privileged);
            if !privileged && key != "SERVER_DIR" && key != "SERVER_ID" {
                return Err(bad_at(
                    "executable",
                    format!(
                        "`executable` uses {{{{{key}}}}}: a placeholder in the program's path must be a variable with \
                         `privileged = true` (only template.manage may set it)"
                    ),
                ));
            }
        }
        if let Some(port) = &self.port_variable
            && !self.variables.iter().any(|v| &v.key == port && v.rule == Some(Rule::Port))
        {
            return Err(bad_at(
                "portVariable",
                format!("`port_variable` names `{port}`, which is not a variable with rule \"port\""),
            ));
        }
        for (i, f) in self.files.iter().enumerate() {
            let at = format!("files.{i}.path");
            safe_relative(&f.path).map_err(|e| bad_at(&at, format!("files: `{}` {e}", f.path)))?;
            if !placeholders(&f.path).is_empty() {
                return Err(bad_at(at, format!("files: `{}`: a path holds no placeholders", f.path)));
            }
        }
        if let Some(wd) = &self.working_dir {
            safe_relative(wd).map_err(|e| bad_at("workingDir", format!("working_dir: `{wd}` {e}")))?;
            if !placeholders(wd).is_empty() {
                return Err(bad_at("workingDir", format!("working_dir: `{wd}`: a path holds no placeholders")));
            }
        }
        for key in self.env.keys() {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Err(bad_at("env", format!("env: `{key}` is not a variable name")));
            }
        }
        if !["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"].contains(&self.stop.signal.as_str()) {
            return Err(bad_at("stop.signal", "stop.signal is SIGTERM, SIGINT, SIGHUP or SIGQUIT"));
        }
        if let Some(ready) = &self.ready {
            for r in &ready.regex {
                Regex::new(r).map_err(|e| bad_at("ready.regex", format!("ready.regex: {e}")))?;
            }
            if ready.timeout == 0 || ready.timeout > HOUR {
                return Err(bad_at("ready.timeout", "ready.timeout is 1 to 3600 seconds"));
            }
        }
        if self.probe.as_ref().is_some_and(|p| p.kind != ProbeKind::Process) && self.port_variable.is_none() {
            return Err(bad_at("probe", "a tcp or udp probe needs `port_variable` (the process probe needs none)"));
        }
        Ok(())
    }

    /// Bounds added after templates were first stored (2026-11-30): checked on every new or
    /// changed template, not on those already in the database, which keep working.
    fn check_bounds(&self) -> Result<(), Problem> {
        for (i, v) in self.variables.iter().enumerate() {
            let at = |part: &str| format!("variables.{i}.{part}");
            if let Some(Rule::OneOf(options)) = &v.rule
                && options.is_empty()
            {
                return Err(bad_at(at("rule"), format!("variable `{}`: one_of needs at least one option", v.key)));
            }
        }
        for (at, value) in
            [("stop.commandTimeout", self.stop.command_timeout), ("stop.signalTimeout", self.stop.signal_timeout)]
        {
            if value > HOUR {
                return Err(bad_at(at, format!("{} is 0 to 3600 seconds", snake(at))));
            }
        }
        let crash = &self.crash;
        if crash.max_restarts > 100 {
            return Err(bad_at("crash.maxRestarts", "crash.max_restarts is 0 to 100"));
        }
        if crash.window_seconds == 0 || crash.window_seconds > 24 * HOUR {
            return Err(bad_at("crash.windowSeconds", "crash.window_seconds is 1 to 86400 seconds"));
        }
        if crash.backoff_seconds > HOUR {
            return Err(bad_at("crash.backoffSeconds", "crash.backoff_seconds is 0 to 3600 seconds"));
        }
        Ok(())
    }

    /// The variable named `key`.
    pub fn variable(&self, key: &str) -> Option<&VariableDef> {
        self.variables.iter().find(|v| v.key == key)
    }
}

const HOUR: u64 = 3600;

/// `stop.commandTimeout` as the file writes it: `stop.command_timeout`.
fn snake(at: &str) -> String {
    at.chars().fold(String::new(), |mut out, c| {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
        out
    })
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Checks that a path stays inside the folder it is relative to: relative, no `..`, no root.
pub fn safe_relative(path: &str) -> Result<(), &'static str> {
    let p = std::path::Path::new(path);
    if path.is_empty() || path.contains('\0') {
        return Err("is empty");
    }
    for c in p.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => return Err("must stay inside the server's folder (relative, without ..)"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra: &str) -> String {
        format!("name = \"T\"\nexecutable = \"/bin/true\"\n{extra}")
    }

    #[test]
    fn the_built_in_templates_parse() {
        for (slug, text) in super::super::builtin::BUILT_IN {
            Definition::parse(text).unwrap_or_else(|e| panic!("{slug}: {e}"));
        }
    }

    #[test]
    fn mistakes_are_named() {
        for (text, why) in [
            (minimal("colour = 1"), "unknown field"),
            (minimal("args = [\"{{NOPE}}\"]"), "unknown placeholder"),
            (minimal("[[files]]\npath = \"../x\"\ncontent = \"\""), "inside the server's folder"),
            (minimal("[[files]]\npath = \"/etc/x\"\ncontent = \"\""), "inside the server's folder"),
            (minimal("[[variables]]\nkey = \"P\"\ndefault = \"80\"\nrule = \"port\""), "default is not"),
            (minimal("[[variables]]\nkey = \"lower\""), "upper-case"),
            (
                minimal("[[variables]]\nkey = \"SERVER_NAME\""),
                "the hub sets {{SERVER_DIR}}, {{SERVER_ID}}, {{SERVER_NAME}} itself",
            ),
            (minimal("[probe]\nkind = \"tcp\""), "needs `port_variable`"),
            (minimal("args = [\"a\",\n  \"b\"\n[stop]"), "line 5, column 1: missing comma"),
            ("name = \"T\"\nexecutable = \"/bin/true\"\nname = \"again\"".into(), "line 3, column 1"),
            (minimal("[stop]\nsignal = \"SIGKILL\""), "stop.signal"),
            (minimal("working_dir = \"../..\""), "working_dir"),
            ("name = \"T\"\nexecutable = \"true\"".into(), "absolute path"),
            (minimal("[[variables]]\nkey = \"A\"\nargs_x = 1"), "unknown field"),
            (minimal("args = [\"x{{A...}}\"]\n[[variables]]\nkey = \"A\"\nrule = \"args\""), "whole argument"),
            ("name = \"T\"\nexecutable = \"{{PROG}}\"\n[[variables]]\nkey = \"PROG\"".into(), "privileged = true"),
            ("name = \"T\"\nexecutable = \"/usr/games/{{N}}\"\n[[variables]]\nkey = \"N\"".into(), "privileged = true"),
            ("name = \"T\"\nexecutable = \"/usr/games/{{SERVER_NAME}}\"".into(), "privileged = true"),
            (minimal("[[files]]\npath = \"{{A}}/x\"\ncontent = \"\"\n[[variables]]\nkey = \"A\""), "no placeholders"),
            (minimal("working_dir = \"w/{{A}}\"\n[[variables]]\nkey = \"A\""), "no placeholders"),
        ] {
            let err = Definition::parse(&text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}\n=> {err}");
        }
    }

    /// The form view of the web app writes templates with `to_toml`: whatever it writes reads
    /// back as the same template, for each built-in one and one that uses every part.
    #[test]
    fn written_templates_read_back_the_same() {
        let every_part = r#"name = "Every part"
description = "quotes \" and 'apostrophes', unicode: été"
executable = "{{PROG}}"
args = ["--port", "{{PORT}}", "{{EXTRA...}}", "--name={{SERVER_NAME}}"]
port_variable = "PORT"
working_dir = "game/bin"
[[variables]]
key = "PROG"
default = "/usr/games/x"
privileged = true
editable = false
[[variables]]
key = "PORT"
default = "30000"
rule = "port"
required = true
[[variables]]
key = "EXTRA"
rule = "args"
[[variables]]
key = "SLOTS"
rule = { integer = { min = 1, max = 64 } }
[[variables]]
key = "MODE"
rule = { one_of = ["a", "b c"] }
[[variables]]
key = "WORD"
rule = { pattern = "[a-z]+" }
[env]
HOME = "{{SERVER_DIR}}"
"odd key" = "x"
[[files]]
path = "conf/game.cfg"
content = """
line one {{PORT}}
  ''' triple \""" quotes
"""
[stop]
command = "/quit"
command_timeout = 5
signal = "SIGINT"
signal_timeout = 0
[ready]
patterns = ["up on {{PORT}}"]
regex = ["^ready\\b"]
timeout = 30
[probe]
kind = "udp"
[crash]
auto_restart = false
max_restarts = 0
window_seconds = 60
backoff_seconds = 0
"#;
        let texts = super::super::builtin::BUILT_IN.iter().map(|(_, t)| *t).chain([every_part]);
        for text in texts {
            let def = Definition::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let written = def.to_toml().unwrap();
            let again = Definition::parse(&written).unwrap_or_else(|e| panic!("{e}\n{written}"));
            assert_eq!(again, def, "{written}");
        }
        let minimal = Definition::parse(&minimal("")).unwrap().to_toml().unwrap();
        assert_eq!(minimal, "name = \"T\"\nexecutable = \"/bin/true\"\n", "defaults are left out");
    }

    use proptest::{collection, option, prelude::*};

    /// Any text at all: read or refused with a reason, never a panic.
    fn texts() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            // TOML-shaped: keys of the format with odd values, tables, placeholders.
            collection::vec(
                prop_oneof![
                    Just("name = ".to_owned()),
                    Just("executable = ".to_owned()),
                    Just("args = [".to_owned()),
                    Just("[[variables]]\nkey = ".to_owned()),
                    Just("rule = { integer = { min = ".to_owned()),
                    Just("[stop]\nsignal_timeout = ".to_owned()),
                    Just("{{".to_owned()),
                    Just("...}}".to_owned()),
                    Just("\"".to_owned()),
                    Just("'''".to_owned()),
                    Just("\n".to_owned()),
                    "[ -~]{0,12}",
                ],
                0..24,
            )
            .prop_map(|parts| parts.concat()),
        ]
    }

    /// Any short text, control characters, quotes and line breaks included.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof!["\\PC{0,24}", any::<String>().prop_map(|s| s.chars().take(24).collect()), "[\"'\\\\\n\r\t{}.]{0,8}",]
    }

    /// Templates of any content (valid or not): what the writer must write faithfully.
    fn definitions() -> impl Strategy<Value = Definition> {
        let variable = (any_text(), option::of(any_text()), option::of(any_text()), any::<(bool, bool, bool)>())
            .prop_map(|(key, description, default, (required, editable, privileged))| VariableDef {
                key,
                description,
                default,
                required,
                editable,
                privileged,
                rule: None,
            });
        (
            (any_text(), option::of(any_text()), any_text(), collection::vec(any_text(), 0..4)),
            collection::vec(variable, 0..3),
            collection::btree_map(any_text(), any_text(), 0..3),
            collection::vec((any_text(), any_text()), 0..2),
            (option::of(any_text()), 0u64..5000, option::of(collection::vec(any_text(), 0..3))),
        )
            .prop_map(
                |((name, description, executable, args), variables, env, files, (stop, timeout, ready))| Definition {
                    name,
                    description,
                    executable,
                    args,
                    port_variable: None,
                    working_dir: None,
                    variables,
                    env,
                    files: files.into_iter().map(|(path, content)| FileDef { path, content }).collect(),
                    stop: StopDef { command: stop, signal_timeout: timeout, ..StopDef::default() },
                    ready: ready.map(|patterns| ReadyDef { patterns, regex: Vec::new(), timeout }),
                    probe: None,
                    crash: CrashPolicy::default(),
                },
            )
    }

    /// Property tests: `cargo xtask fuzz` runs them with more cases.
    mod fuzz {
        use super::*;

        proptest! {
            /// A template file of any content is read or refused with a reason; it never panics.
            #[test]
            fn any_text_is_read_or_refused(text in texts()) {
                match Definition::parse_at(&text) {
                    Ok(def) => prop_assert!(def.check().is_ok()),
                    Err(problem) => prop_assert!(!problem.message.is_empty()),
                }
            }

            /// Whatever a template holds (quotes, line breaks, control characters, `'''`), the file
            /// written from it reads back as the same template.
            #[test]
            fn any_template_is_written_faithfully(def in definitions()) {
                let written = def.to_toml().unwrap();
                let back: Definition = toml::from_str(&written).map_err(|e| TestCaseError::fail(format!("{e}\n{written}")))?;
                prop_assert_eq!(back, def, "{}", written);
            }
        }
    }

    #[test]
    fn mistakes_name_their_place() {
        for (text, at) in [
            (minimal("[[variables]]\nkey = \"A\"\n[[variables]]\nkey = \"lower\""), Some("variables.1.key")),
            (minimal("[[variables]]\nkey = \"P\"\ndefault = \"80\"\nrule = \"port\""), Some("variables.0.default")),
            (
                minimal("[[files]]\npath = \"a\"\ncontent = \"\"\n[[files]]\npath = \"/b\"\ncontent = \"\""),
                Some("files.1.path"),
            ),
            (minimal("[stop]\nsignal_timeout = 4000"), Some("stop.signalTimeout")),
            (minimal("[crash]\nwindow_seconds = 0"), Some("crash.windowSeconds")),
            (minimal("port_variable = \"P\""), Some("portVariable")),
            (minimal("args = [1"), None),
        ] {
            assert_eq!(Definition::parse_at(&text).unwrap_err().at.as_deref(), at, "{text}");
        }
        let e = Definition::parse_at(&minimal("[stop]\ncommand_timeout = 4000")).unwrap_err();
        assert_eq!(e.message, "stop.command_timeout is 0 to 3600 seconds");
        // A template stored before the bounds existed still reads (its servers keep working).
        let old = minimal("[crash]\nwindow_seconds = 0\n[stop]\nsignal_timeout = 7200");
        assert!(Definition::parse(&old).is_err() && Definition::parse_stored(&old).is_ok());
    }

    #[test]
    fn a_missing_program_is_a_warning_not_an_error() {
        let def = Definition::parse("name = \"T\"\nexecutable = \"/nonexistent/game-server\"").unwrap();
        let warnings = def.warnings();
        assert!(warnings.len() == 1 && warnings[0].contains("does not exist on this host"), "{warnings:?}");
        assert!(Definition::parse(&minimal("")).unwrap().warnings().is_empty(), "/bin/true exists");
        let not_a_program = Definition::parse("name = \"T\"\nexecutable = \"/etc/passwd\"").unwrap();
        assert!(not_a_program.warnings()[0].contains("not an executable"), "{:?}", not_a_program.warnings());
        let placeholder = "name = \"T\"\nexecutable = \"{{P}}\"\n[[variables]]\nkey = \"P\"\nprivileged = true";
        assert!(Definition::parse(placeholder).unwrap().warnings().is_empty(), "unknown until a server sets it");
        assert!(Definition::parse(&minimal("[probe]\nkind = \"process\"")).is_ok(), "needs no port");
        assert_eq!(line_column("ab\ncdé\nx", 7), (2, 4));
    }

    #[test]
    fn rules_check_values() {
        assert!(Rule::Port.check("30000").is_ok());
        for v in ["80", "70000", "30000 --evil", "", "3e4"] {
            assert!(Rule::Port.check(v).is_err(), "{v}");
        }
        let r = Rule::Integer { min: 1, max: 8 };
        assert!(r.check("8").is_ok() && r.check("9").is_err() && r.check("1; rm").is_err());
        let r = Rule::Pattern("[a-z]+".into());
        assert!(r.check("abc").is_ok() && r.check("abc\n").is_err() && r.check("$(id)").is_err());
        assert!(Rule::Args.check("[\"-x\", \"two words\"]").is_ok() && Rule::Args.check("-x").is_err());
    }
}
