//! Templates: the kinds of game server, their files checked and rendered without saving
//! (`checkTemplate`, for editors), and their changes.

use std::{collections::BTreeMap, path::Path};

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use entity::template;
use sea_orm::{EntityTrait, QueryOrder};
use shared::Permission as Key;

use super::{
    guard::{Need, SignedIn, caller, client, services},
    servers::{ServerVariableInput, pairs},
    users::parse_arg,
};
use crate::{
    error::{ApiError, GqlResult, IntoGql},
    templates::{
        CrashPolicy, Definition, FileDef, MAX_TEMPLATE_BYTES, ProbeDef, ProbeKind, Problem, ReadyDef, Rule,
        ServerContext, StopDef, VariableDef, render, resolve_values,
        service::{self as template_service, definition_of},
    },
};

/// A kind of game server.
pub struct Template(template::Model);

impl From<template::Model> for Template {
    fn from(t: template::Model) -> Self {
        Self(t)
    }
}

/// A kind of game server, written as a template file (TOML): what runs, with which variables,
/// and how it is stopped, seen ready and restarted.
#[Object]
impl Template {
    /// The template's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// e.g. "Luanti (Minetest)", "Custom command".
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the template is for; null when it has no description.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The variables a server of this template sets.
    async fn variables(&self) -> GqlResult<Vec<TemplateVariable>> {
        Ok(variables_of(definition_of(&self.0).gql()?))
    }
    /// What would work but is probably not meant, such as a program that is not installed on
    /// this host (servers from the template could not start). Empty when all is well. Needs
    /// `template.manage` (it looks at the host's files).
    #[graphql(guard = "Need(Key::TemplateManage)")]
    async fn warnings(&self) -> GqlResult<Vec<String>> {
        warnings_of(definition_of(&self.0).gql()?).await
    }
    /// The template file's text (TOML).
    async fn definition(&self) -> &str {
        &self.0.definition
    }
    /// Shipped with the hub; read-only.
    async fn built_in(&self) -> bool {
        self.0.built_in
    }
}

/// A variable of a template.
#[derive(SimpleObject)]
pub struct TemplateVariable {
    /// e.g. PORT
    key: String,
    /// What the variable is for; null when it has no description.
    description: Option<String>,
    /// The value a server gets when it gives none; null: empty.
    default: Option<String>,
    /// Whether a server must have a value that is not empty.
    required: bool,
    /// Whether server owners may change it.
    editable: bool,
    /// Only holders of `template.manage` may set it.
    privileged: bool,
    /// The validation rule in words, e.g. "port (1024-65535)".
    rule: Option<String>,
    /// The same rule in parts, for clients that check values before they send them.
    rule_spec: Option<VariableRule>,
}

/// A variable's rule in parts.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "VariableRuleInput")]
pub struct VariableRule {
    /// The kind of rule, which says which of the other fields it uses.
    kind: shared::template::RuleKind,
    /// The lowest value allowed, for INTEGER.
    min: Option<i64>,
    /// The highest value allowed, for INTEGER.
    max: Option<i64>,
    /// The values allowed, for ONE_OF.
    options: Option<Vec<String>>,
    /// The regular expression a whole value must match, for PATTERN.
    pattern: Option<String>,
}

impl From<&Rule> for VariableRule {
    fn from(rule: &Rule) -> Self {
        let plain = Self { kind: rule.kind(), min: None, max: None, options: None, pattern: None };
        match rule {
            Rule::Integer { min, max } => Self { min: Some(*min), max: Some(*max), ..plain },
            Rule::OneOf(options) => Self { options: Some(options.clone()), ..plain },
            Rule::Pattern(p) => Self { pattern: Some(p.clone()), ..plain },
            Rule::Port | Rule::Args => plain,
        }
    }
}

fn variables_of(def: Definition) -> Vec<TemplateVariable> {
    def.variables
        .into_iter()
        .map(|v| TemplateVariable {
            rule: v.rule.as_ref().map(|r| r.describe()),
            rule_spec: v.rule.as_ref().map(VariableRule::from),
            key: v.key,
            description: v.description,
            default: v.default,
            required: v.required,
            editable: v.editable,
            privileged: v.privileged,
        })
        .collect()
}

/// A template checked without saving it. `error` is null when it is a valid template; then
/// `parts` says what it declares and `argv` what a server of it would run.
#[derive(SimpleObject, Default)]
pub struct TemplateCheck {
    /// Why it is not a valid template (a TOML syntax error names its line and column).
    error: Option<String>,
    /// Where the mistake is, as a path into `parts` (`executable`, `variables.2.default`,
    /// `stop.signal`); null when it concerns the whole text.
    error_at: Option<String>,
    /// What would work but is probably not meant (see `Template.warnings`); empty when all is
    /// well.
    warnings: Vec<String>,
    /// The template file's text: as given, or written from the parts given (comments are not
    /// kept; parts at their default are left out). Null only when the parts cannot be written.
    definition: Option<String>,
    /// The template in parts, for a form (null when it is not valid).
    parts: Option<TemplateParts>,
    /// Its variables, with their rules in words.
    variables: Vec<TemplateVariable>,
    /// The program and its arguments, one entry each, as a server with `values` (the defaults
    /// for the rest) would run them; null when the values do not pass.
    argv: Option<Vec<String>>,
    /// Why the values do not pass, naming the variable.
    values_error: Option<String>,
}

impl TemplateCheck {
    fn failed(problem: Problem, definition: Option<String>) -> Self {
        Self { error: Some(problem.message), error_at: problem.at, definition, ..Self::default() }
    }
}

/// A template in parts, as a form holds it: `checkTemplate(parts:)` writes the template file
/// from it, `TemplateCheck.parts` reads one back. Left-out parts take the file format's defaults.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "TemplatePartsInput")]
pub struct TemplateParts {
    /// The template's name, shown to users: 1 to 128 characters, unique among templates.
    name: String,
    /// What the template is for.
    description: Option<String>,
    /// An absolute path, or a placeholder of a privileged variable.
    executable: String,
    /// One entry per argument, with placeholders; `{{KEY...}}` spreads an `args` variable.
    #[graphql(default)]
    args: Vec<String>,
    /// The variable (with rule PORT) that holds the server's port.
    port_variable: Option<String>,
    /// Relative to the server's folder.
    working_dir: Option<String>,
    /// The variables a server of it sets.
    #[graphql(default)]
    variables: Vec<VariableParts>,
    /// Environment variables of the game's process.
    #[graphql(default)]
    env: Vec<EnvPart>,
    /// Files written into the server's folder on install.
    #[graphql(default)]
    files: Vec<FilePart>,
    /// How a server of it stops.
    #[graphql(default)]
    stop: StopParts,
    /// Absent: ready as soon as the process runs.
    ready: Option<ReadyParts>,
    /// Absent: no check once ready.
    probe: Option<ProbeKind>,
    /// What the hub does when a server of it exits unasked.
    #[graphql(default)]
    crash: CrashParts,
}

/// A variable of a template in parts.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "VariablePartsInput")]
pub struct VariableParts {
    /// 1 to 32 upper-case letters, digits and `_`, starting with a letter, as in `{{PORT}}`.
    key: String,
    /// What the variable is for.
    description: Option<String>,
    /// The value a server gets when it gives none.
    default: Option<String>,
    /// Whether a server must have a value that is not empty.
    #[graphql(default)]
    required: bool,
    /// Whether server owners may change it (false: the default always applies).
    #[graphql(default = true)]
    editable: bool,
    /// Only holders of `template.manage` may set it.
    #[graphql(default)]
    privileged: bool,
    /// What a value must look like; null: no rule.
    rule: Option<VariableRule>,
}

/// An environment variable of a template (its value may hold placeholders).
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "EnvPartInput")]
pub struct EnvPart {
    /// The variable's name.
    key: String,
    /// Its value, with placeholders.
    value: String,
}

/// A file written into the server's folder on install.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "FilePartInput")]
pub struct FilePart {
    /// Relative to the server's folder.
    path: String,
    /// With placeholders.
    content: String,
}

/// How a server stops: the command on its console, then the signal, then SIGKILL.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "StopPartsInput")]
pub struct StopParts {
    /// Written to the server's console (stdin) first; null: none, the signal comes first.
    command: Option<String>,
    /// Seconds the command has before the signal.
    command_timeout: i64,
    /// SIGTERM, SIGINT, SIGHUP or SIGQUIT.
    signal: String,
    /// Seconds the signal has before SIGKILL.
    signal_timeout: i64,
}

impl Default for StopParts {
    fn default() -> Self {
        StopDef::default().into()
    }
}

/// How the hub tells a server is ready: a console line.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "ReadyPartsInput")]
pub struct ReadyParts {
    /// Text a line contains.
    #[graphql(default)]
    patterns: Vec<String>,
    /// Regular expressions a line matches.
    #[graphql(default)]
    regex: Vec<String>,
    /// Seconds to wait for it.
    timeout: i64,
}

/// What the hub does when a server exits unasked.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "CrashPartsInput")]
pub struct CrashParts {
    /// Whether a crashed server is restarted (the server's own `autoRestart` must allow it too).
    auto_restart: bool,
    /// At most this many restarts within `windowSeconds`.
    max_restarts: i64,
    /// The span, in seconds, in which `maxRestarts` counts restarts.
    window_seconds: i64,
    /// The first restart waits this long, each next one twice as long.
    backoff_seconds: i64,
}

impl Default for CrashParts {
    fn default() -> Self {
        CrashPolicy::default().into()
    }
}

/// Seconds as the API carries them: whole numbers, any sign, so that a form's mistake comes back
/// as a message on its field rather than as a refused request.
fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

/// A number of the parts as the file holds it; a negative one is a mistake at `at`.
fn whole<T: TryFrom<i64>>(value: i64, at: &str) -> Result<T, Problem> {
    T::try_from(value)
        .map_err(|_| Problem { at: Some(at.to_owned()), message: format!("{at} is out of range: {value}") })
}

impl From<StopDef> for StopParts {
    fn from(s: StopDef) -> Self {
        Self {
            command: s.command,
            command_timeout: secs(s.command_timeout),
            signal: s.signal,
            signal_timeout: secs(s.signal_timeout),
        }
    }
}

impl From<CrashPolicy> for CrashParts {
    fn from(c: CrashPolicy) -> Self {
        Self {
            auto_restart: c.auto_restart,
            max_restarts: c.max_restarts.into(),
            window_seconds: secs(c.window_seconds),
            backoff_seconds: secs(c.backoff_seconds),
        }
    }
}

impl From<Definition> for TemplateParts {
    fn from(d: Definition) -> Self {
        Self {
            name: d.name,
            description: d.description,
            executable: d.executable,
            args: d.args,
            port_variable: d.port_variable,
            working_dir: d.working_dir,
            variables: d
                .variables
                .into_iter()
                .map(|v| VariableParts {
                    rule: v.rule.as_ref().map(VariableRule::from),
                    key: v.key,
                    description: v.description,
                    default: v.default,
                    required: v.required,
                    editable: v.editable,
                    privileged: v.privileged,
                })
                .collect(),
            env: d.env.into_iter().map(|(key, value)| EnvPart { key, value }).collect(),
            files: d.files.into_iter().map(|f| FilePart { path: f.path, content: f.content }).collect(),
            stop: d.stop.into(),
            ready: d.ready.map(|r| ReadyParts { patterns: r.patterns, regex: r.regex, timeout: secs(r.timeout) }),
            probe: d.probe.map(|p| p.kind),
            crash: d.crash.into(),
        }
    }
}

impl TryFrom<TemplateParts> for Definition {
    type Error = Problem;

    /// The template the parts describe, unchecked (the caller checks it as a file).
    fn try_from(p: TemplateParts) -> Result<Self, Problem> {
        let mut env = BTreeMap::new();
        for (i, e) in p.env.into_iter().enumerate() {
            if env.insert(e.key.clone(), e.value).is_some() {
                return Err(Problem {
                    at: Some(format!("env.{i}.key")),
                    message: format!("env: `{}` is set twice", e.key),
                });
            }
        }
        let mut variables = Vec::with_capacity(p.variables.len());
        for (i, v) in p.variables.into_iter().enumerate() {
            let rule = match v.rule {
                None => None,
                Some(r) => {
                    Some(Rule::from_parts(r.kind, r.min, r.max, r.options, r.pattern).ok_or_else(|| Problem {
                        at: Some(format!("variables.{i}.rule")),
                        message: format!("variable `{}`: the rule misses its min and max, options or pattern", v.key),
                    })?)
                }
            };
            variables.push(VariableDef {
                key: v.key,
                description: v.description,
                default: v.default,
                required: v.required,
                editable: v.editable,
                privileged: v.privileged,
                rule,
            });
        }
        Ok(Self {
            name: p.name,
            description: p.description,
            executable: p.executable,
            args: p.args,
            port_variable: p.port_variable,
            working_dir: p.working_dir,
            variables,
            env,
            files: p.files.into_iter().map(|f| FileDef { path: f.path, content: f.content }).collect(),
            stop: StopDef {
                command: p.stop.command,
                command_timeout: whole(p.stop.command_timeout, "stop.commandTimeout")?,
                signal: p.stop.signal,
                signal_timeout: whole(p.stop.signal_timeout, "stop.signalTimeout")?,
            },
            ready: match p.ready {
                None => None,
                Some(r) => {
                    Some(ReadyDef { patterns: r.patterns, regex: r.regex, timeout: whole(r.timeout, "ready.timeout")? })
                }
            },
            probe: p.probe.map(|kind| ProbeDef { kind }),
            crash: CrashPolicy {
                auto_restart: p.crash.auto_restart,
                max_restarts: whole(p.crash.max_restarts, "crash.maxRestarts")?,
                window_seconds: whole(p.crash.window_seconds, "crash.windowSeconds")?,
                backoff_seconds: whole(p.crash.backoff_seconds, "crash.backoffSeconds")?,
            },
        })
    }
}

/// A template's warnings, found off the async threads (they look at the host's files).
async fn warnings_of(def: Definition) -> GqlResult<Vec<String>> {
    tokio::task::spawn_blocking(move || def.warnings()).await.map_err(ApiError::internal).gql()
}

/// The template a preview renders, whose folder and name stand for a server's.
fn preview(def: &Definition, values: &[(String, String)], data_dir: &Path) -> Result<Vec<String>, ApiError> {
    let values = resolve_values(def, values, None, true)?;
    let dir = data_dir.join("servers").join("<id>");
    let launch = render(def, &values, &ServerContext { dir: &dir, id: 0, name: "<server name>" });
    Ok(std::iter::once(launch.program).chain(launch.args).collect())
}

#[derive(Default)]
pub struct TemplateQuery;

#[Object]
impl TemplateQuery {
    /// The game server templates (any signed-in user may read them).
    #[graphql(guard = "SignedIn")]
    async fn templates(&self, ctx: &Context<'_>) -> GqlResult<Vec<Template>> {
        let s = services(ctx)?;
        let rows = template::Entity::find().order_by_asc(template::Column::Name).all(s.db.conn()).await.gql()?;
        Ok(rows.into_iter().map(Template::from).collect())
    }

    /// Checks a template without saving it, given as its file's text (`definition`) or in parts
    /// (`parts`, as a form holds it; the answer carries the text written from them), and renders
    /// the command line a server of it would run with `values`: for editors, to show errors where
    /// they are and try values. Needs `template.manage`.
    #[graphql(guard = "Need(Key::TemplateManage)")]
    async fn check_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The template file's text (TOML); give this or `parts`.")] definition: Option<String>,
        #[graphql(desc = "The template in parts; give this or `definition`.")] parts: Option<TemplateParts>,
        #[graphql(desc = "Values to try; the others take their defaults.")] values: Option<Vec<ServerVariableInput>>,
    ) -> GqlResult<TemplateCheck> {
        let s = services(ctx)?;
        let text = match (definition, parts) {
            (Some(text), None) => text,
            (None, Some(parts)) => match Definition::try_from(parts) {
                // Not sent back when it is over the file's limit (the check says so).
                Ok(def) => match def.to_toml().gql()? {
                    text if text.len() > MAX_TEMPLATE_BYTES => {
                        let too_big = Problem { at: None, message: "a template has at most 64 KiB".into() };
                        return Ok(TemplateCheck::failed(too_big, None));
                    }
                    text => text,
                },
                Err(problem) => return Ok(TemplateCheck::failed(problem, None)),
            },
            _ => return Err(ApiError::bad_input("definition", "give either `definition` or `parts`")).gql(),
        };
        let def = match Definition::parse_at(&text) {
            Ok(def) => def,
            Err(problem) => return Ok(TemplateCheck::failed(problem, Some(text))),
        };
        let (argv, values_error) = match preview(&def, &pairs(values.unwrap_or_default()), &s.settings.data_dir) {
            Ok(argv) => (Some(argv), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let warnings = warnings_of(def.clone()).await?;
        Ok(TemplateCheck {
            warnings,
            definition: Some(text),
            parts: Some(def.clone().into()),
            variables: variables_of(def),
            argv,
            values_error,
            ..TemplateCheck::default()
        })
    }
}

#[derive(Default)]
pub struct TemplateMutation;

#[Object]
impl TemplateMutation {
    /// Adds a template from its file's text (TOML). Needs `template.manage`.
    #[graphql(guard = "SignedIn")]
    async fn create_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The template file's text (TOML), at most 64 KiB.")] definition: String,
    ) -> GqlResult<Template> {
        template_service::create(services(ctx)?, caller(ctx)?, &definition, client(ctx)).await.map(Template).gql()
    }

    /// Replaces a custom template's text (built-in ones are read-only). Needs `template.manage`.
    #[graphql(guard = "SignedIn")]
    async fn update_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The template's id.")] id: ID,
        #[graphql(desc = "The template file's new text (TOML), at most 64 KiB.")] definition: String,
    ) -> GqlResult<Template> {
        let id = parse_arg("id", &id).gql()?;
        template_service::update(services(ctx)?, caller(ctx)?, id, &definition, client(ctx)).await.map(Template).gql()
    }

    /// Deletes a custom template; CONFLICT while a server uses it. Needs `template.manage`.
    #[graphql(guard = "SignedIn")]
    async fn delete_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The template's id.")] id: ID,
    ) -> GqlResult<bool> {
        let id = parse_arg("id", &id).gql()?;
        template_service::delete(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()
    }
}
