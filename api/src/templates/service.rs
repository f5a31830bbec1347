//! Templates in the database: the built-in ones loaded at start, custom ones managed through the
//! API by holders of `template.manage`.

use chrono::Utc;
use entity::{game_server, template};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Set};
use shared::Permission;

use super::{Definition, builtin::BUILT_IN};
use crate::{
    app::Services,
    audit::{AuditBatch, Entry},
    auth::{Caller, ClientInfo},
    db::Db,
    error::ApiError,
    events::EventBus,
};

/// Loads the built-in templates: adds missing ones and brings changed ones up to the shipped
/// version (they are read-only through the API). A second start changes nothing.
pub async fn seed_built_in(db: &Db, bus: &dyn EventBus) -> Result<(), ApiError> {
    let mut audit = AuditBatch::default();
    let txn = db.write().await?;
    for (slug, text) in BUILT_IN {
        let def = Definition::parse(text)?;
        match template::Entity::find().filter(template::Column::Slug.eq(slug)).one(&*txn).await? {
            Some(row) if row.definition == text && row.name == def.name => {}
            Some(row) => {
                let mut active = row.into_active_model();
                set_definition(&mut active, &def, text);
                active.built_in = Set(true);
                let row = active.update(&*txn).await?;
                audit
                    .record(
                        &*txn,
                        Entry::new("seed.template", None).target("template", row.id).detail(format!("updated {slug}")),
                    )
                    .await?;
            }
            None => {
                let row = insert(&*txn, slug.to_owned(), &def, text, true).await?;
                audit
                    .record(
                        &*txn,
                        Entry::new("seed.template", None).target("template", row.id).detail(format!("added {slug}")),
                    )
                    .await?;
            }
        }
    }
    audit.finish(txn, bus).await?;
    Ok(())
}

/// A URL- and file-safe identifier from a name.
fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() { "template".into() } else { slug.chars().take(48).collect() }
}

pub async fn create(
    s: &Services,
    caller: &Caller,
    text: &str,
    client: &ClientInfo,
) -> Result<template::Model, ApiError> {
    caller.require(Permission::TemplateManage)?;
    let def = Definition::parse(text)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let base = slugify(&def.name);
    let mut slug = base.clone();
    let mut n = 1;
    while template::Entity::find().filter(template::Column::Slug.eq(slug.as_str())).count(&*txn).await? > 0 {
        n += 1;
        slug = format!("{base}-{n}");
    }
    if template::Entity::find().filter(template::Column::Name.eq(def.name.as_str())).count(&*txn).await? > 0 {
        return Err(ApiError::Conflict {
            field: Some("definition".into()),
            message: format!("a template named `{}` exists", def.name),
        });
    }
    let row = insert(&*txn, slug, &def, text, false).await?;
    audit.record(&*txn, caller.audit("template.create", client).target("template", row.id).detail(&def.name)).await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    Ok(row)
}

pub async fn update(
    s: &Services,
    caller: &Caller,
    id: i64,
    text: &str,
    client: &ClientInfo,
) -> Result<template::Model, ApiError> {
    caller.require(Permission::TemplateManage)?;
    let def = Definition::parse(text)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let row = template::Entity::find_by_id(id).one(&*txn).await?.ok_or(ApiError::NotFound("template"))?;
    if row.built_in {
        return Err(ApiError::Conflict {
            field: None,
            message:
                "built-in templates come with the hub; create a new template from this one's definition to change it"
                    .into(),
        });
    }
    let taken = template::Entity::find()
        .filter(template::Column::Name.eq(def.name.as_str()))
        .filter(template::Column::Id.ne(id))
        .count(&*txn)
        .await?;
    if taken > 0 {
        return Err(ApiError::Conflict {
            field: Some("definition".into()),
            message: format!("a template named `{}` exists", def.name),
        });
    }
    let mut active = row.into_active_model();
    set_definition(&mut active, &def, text);
    let row = active.update(&*txn).await?;
    audit.record(&*txn, caller.audit("template.update", client).target("template", id).detail(&def.name)).await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    Ok(row)
}

pub async fn delete(s: &Services, caller: &Caller, id: i64, client: &ClientInfo) -> Result<bool, ApiError> {
    caller.require(Permission::TemplateManage)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let row = template::Entity::find_by_id(id).one(&*txn).await?.ok_or(ApiError::NotFound("template"))?;
    if row.built_in {
        return Err(ApiError::Conflict { field: None, message: "built-in templates cannot be deleted".into() });
    }
    let users = game_server::Entity::find().filter(game_server::Column::TemplateId.eq(id)).count(&*txn).await?;
    if users > 0 {
        return Err(ApiError::Conflict {
            field: None,
            message: format!("{users} server(s) use this template; delete them first"),
        });
    }
    template::Entity::delete_by_id(id).exec(&*txn).await?;
    audit.record(&*txn, caller.audit("template.delete", client).target("template", id).detail(row.name)).await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    Ok(true)
}

/// Puts a checked definition into a template row.
fn set_definition(active: &mut template::ActiveModel, def: &Definition, text: &str) {
    active.name = Set(def.name.clone());
    active.description = Set(def.description.clone());
    active.definition = Set(text.to_owned());
    active.updated_at = Set(Utc::now());
}

/// Stores a new template row for a checked definition.
async fn insert<C: sea_orm::ConnectionTrait>(
    db: &C,
    slug: String,
    def: &Definition,
    text: &str,
    built_in: bool,
) -> Result<template::Model, ApiError> {
    let now = Utc::now();
    let row = template::ActiveModel {
        slug: Set(slug),
        name: Set(def.name.clone()),
        description: Set(def.description.clone()),
        definition: Set(text.to_owned()),
        built_in: Set(built_in),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(row)
}

/// The parsed definition of a stored template.
pub fn definition_of(row: &template::Model) -> Result<Definition, ApiError> {
    Definition::parse_stored(&row.definition)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored template {} is invalid: {e}", row.id)))
}
