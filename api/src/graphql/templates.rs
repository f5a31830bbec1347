//! Templates: the kinds of game server, their files checked and rendered without saving
//! (`checkTemplate`, for editors), and their changes.

use std::path::Path;

use async_graphql::{Context, ID, Object, SimpleObject};
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
        Definition, Rule, ServerContext, render, resolve_values,
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

#[Object]
impl Template {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// e.g. "Luanti (Minetest)", "Custom command".
    async fn name(&self) -> &str {
        &self.0.name
    }
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
        let def = definition_of(&self.0).gql()?;
        tokio::task::spawn_blocking(move || def.warnings()).await.map_err(ApiError::internal).gql()
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
    description: Option<String>,
    default: Option<String>,
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
#[derive(SimpleObject)]
pub struct VariableRule {
    kind: shared::template::RuleKind,
    min: Option<i64>,
    max: Option<i64>,
    options: Option<Vec<String>>,
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

/// A template's text checked without saving it. `error` is null when it is a valid template;
/// then the rest says what it declares and what a server of it would run.
#[derive(SimpleObject, Default)]
pub struct TemplateCheck {
    /// Why it is not a valid template (a TOML syntax error names its line and column).
    error: Option<String>,
    warnings: Vec<String>,
    name: Option<String>,
    description: Option<String>,
    executable: Option<String>,
    args: Vec<String>,
    variables: Vec<TemplateVariable>,
    port_variable: Option<String>,
    stop_command: Option<String>,
    ready_patterns: Vec<String>,
    /// `tcp`, `udp` or `process`.
    probe: Option<String>,
    /// The program and its arguments, one entry each, as a server with `values` (the defaults
    /// for the rest) would run them; null when the values do not pass.
    argv: Option<Vec<String>>,
    /// Why the values do not pass, naming the variable.
    values_error: Option<String>,
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

    /// Checks a template's text without saving it, and renders the command line a server of it
    /// would run with `values`: for editors, to show errors where they are and try values.
    /// Needs `template.manage`.
    #[graphql(guard = "Need(Key::TemplateManage)")]
    async fn check_template(
        &self,
        ctx: &Context<'_>,
        definition: String,
        values: Option<Vec<ServerVariableInput>>,
    ) -> GqlResult<TemplateCheck> {
        let s = services(ctx)?;
        let def = match Definition::parse(&definition) {
            Ok(def) => def,
            Err(e) => return Ok(TemplateCheck { error: Some(e.to_string()), ..TemplateCheck::default() }),
        };
        let (argv, values_error) = match preview(&def, &pairs(values.unwrap_or_default()), &s.settings.data_dir) {
            Ok(argv) => (Some(argv), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let warnings = {
            let def = def.clone();
            tokio::task::spawn_blocking(move || def.warnings()).await.map_err(ApiError::internal).gql()?
        };
        Ok(TemplateCheck {
            error: None,
            warnings,
            name: Some(def.name.clone()),
            description: def.description.clone(),
            executable: Some(def.executable.clone()),
            args: def.args.clone(),
            port_variable: def.port_variable.clone(),
            stop_command: def.stop.command.clone(),
            ready_patterns: def.ready.as_ref().map(|r| r.patterns.clone()).unwrap_or_default(),
            probe: def.probe.as_ref().map(|p| format!("{:?}", p.kind).to_lowercase()),
            variables: variables_of(def),
            argv,
            values_error,
        })
    }
}

#[derive(Default)]
pub struct TemplateMutation;

#[Object]
impl TemplateMutation {
    /// Adds a template from its file's text (TOML). Needs `template.manage`.
    #[graphql(guard = "SignedIn")]
    async fn create_template(&self, ctx: &Context<'_>, definition: String) -> GqlResult<Template> {
        template_service::create(services(ctx)?, caller(ctx)?, &definition, client(ctx)).await.map(Template).gql()
    }

    /// Replaces a custom template's text (built-in ones are read-only). Needs `template.manage`.
    #[graphql(guard = "SignedIn")]
    async fn update_template(&self, ctx: &Context<'_>, id: ID, definition: String) -> GqlResult<Template> {
        let id = parse_arg("id", &id).gql()?;
        template_service::update(services(ctx)?, caller(ctx)?, id, &definition, client(ctx)).await.map(Template).gql()
    }

    /// Deletes a custom template; CONFLICT while a server uses it. Needs `template.manage`.
    #[graphql(guard = "SignedIn")]
    async fn delete_template(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let id = parse_arg("id", &id).gql()?;
        template_service::delete(services(ctx)?, caller(ctx)?, id, client(ctx)).await.gql()
    }
}
