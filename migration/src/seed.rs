//! Seed data: the permission catalogue and the built-in roles.
//!
//! Seeding is idempotent: it only adds what is missing, so a second start changes nothing and a
//! role an admin has edited keeps its edits. The one exception is the Admin role, which always
//! holds every key of the catalogue (a new hub version may add keys).
//! It returns what it changed so that the caller can write audit entries in the same transaction.

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::prelude::*;
use shared::permission::{ADMIN, BUILT_IN_ROLES};

/// One change the seed made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedChange {
    /// A permission key was added to the catalogue.
    PermissionAdded(String),
    /// A built-in role was created with its permissions.
    RoleCreated { id: i64, name: String },
    /// Keys were added to the Admin role.
    AdminKeysAdded(Vec<String>),
}

#[derive(Iden)]
enum Permissions {
    Table,
    Key,
    Description,
}

#[derive(Iden)]
enum Roles {
    Table,
    Id,
    Name,
    Description,
    BuiltIn,
    CreatedAt,
}

#[derive(Iden)]
enum RolePermissions {
    Table,
    RoleId,
    PermissionKey,
}

/// Seeds the catalogue and the built-in roles. Run it inside a write transaction.
pub async fn catalogue<C: ConnectionTrait>(db: &C) -> Result<Vec<SeedChange>, DbErr> {
    let mut changes = Vec::new();

    let existing = strings(db, Query::select().column(Permissions::Key).from(Permissions::Table)).await?;
    for p in shared::Permission::ALL {
        if !existing.iter().any(|k| k == p.key()) {
            db.execute(
                Query::insert()
                    .into_table(Permissions::Table)
                    .columns([Permissions::Key, Permissions::Description])
                    .values_panic([p.key().into(), p.description().into()]),
            )
            .await?;
            changes.push(SeedChange::PermissionAdded(p.key().to_owned()));
        }
    }

    for role in BUILT_IN_ROLES {
        let id = match role_id(db, role.name).await? {
            Some(id) => id,
            None => {
                db.execute(
                    Query::insert()
                        .into_table(Roles::Table)
                        .columns([Roles::Name, Roles::Description, Roles::BuiltIn, Roles::CreatedAt])
                        .values_panic([
                            role.name.into(),
                            role.description.into(),
                            true.into(),
                            chrono::Utc::now().into(),
                        ]),
                )
                .await?;
                let id = role_id(db, role.name).await?.ok_or_else(|| DbErr::RecordNotInserted)?;
                let keys: Vec<&str> = role.permissions.iter().map(|p| p.key()).collect();
                grant(db, id, &keys).await?;
                changes.push(SeedChange::RoleCreated { id, name: role.name.to_owned() });
                continue;
            }
        };
        if role.name == ADMIN.name {
            let held = strings(
                db,
                Query::select()
                    .column(RolePermissions::PermissionKey)
                    .from(RolePermissions::Table)
                    .and_where(Expr::col(RolePermissions::RoleId).eq(id)),
            )
            .await?;
            let missing: Vec<&str> =
                ADMIN.permissions.iter().map(|p| p.key()).filter(|k| !held.iter().any(|h| h == k)).collect();
            if !missing.is_empty() {
                grant(db, id, &missing).await?;
                changes.push(SeedChange::AdminKeysAdded(missing.iter().map(|k| (*k).to_owned()).collect()));
            }
        }
    }
    Ok(changes)
}

/// The id of the role with this name, if it exists.
pub async fn role_id<C: ConnectionTrait>(db: &C, name: &str) -> Result<Option<i64>, DbErr> {
    let row = db
        .query_one(Query::select().column(Roles::Id).from(Roles::Table).and_where(Expr::col(Roles::Name).eq(name)))
        .await?;
    row.map(|r| r.try_get_by_index::<i64>(0)).transpose()
}

async fn grant<C: ConnectionTrait>(db: &C, role_id: i64, keys: &[&str]) -> Result<(), DbErr> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert.into_table(RolePermissions::Table).columns([RolePermissions::RoleId, RolePermissions::PermissionKey]);
    for key in keys {
        insert.values_panic([role_id.into(), (*key).into()]);
    }
    db.execute(&insert).await?;
    Ok(())
}

async fn strings<C: ConnectionTrait>(db: &C, select: &SelectStatement) -> Result<Vec<String>, DbErr> {
    db.query_all(select).await?.into_iter().map(|r| r.try_get_by_index::<String>(0)).collect()
}
