//! What the hub does before it serves: connect, migrate, seed, and make the first admin.
//!
//! Every step is idempotent: a second start changes nothing, and a password an admin changed is
//! never reset.

use migration::seed::{self, SeedChange};

use crate::{
    app::Services,
    audit::{AuditBatch, Entry},
    auth::random_secret,
    config::Settings,
    db::Db,
    error::ApiError,
    events::EventBus,
    users::{self, NewUser, Origin},
};

/// Connects to the configured database and applies pending migrations (audited); returns it
/// with the names of the migrations applied. A SQLite database that holds data is backed up first when migrations are pending (into the
/// backup folder, `before-upgrade-<schema>-<time>.tar.gz`); a database a newer hub migrated is
/// refused.
pub async fn open_database(settings: &Settings, bus: &dyn EventBus) -> anyhow::Result<(Db, Vec<String>)> {
    let db = Db::connect(&settings.database()).await?;
    let applied = db.applied_migrations().await?;
    let pending = crate::db::pending_after(&applied)?;
    if let (crate::config::DatabaseTarget::Sqlite(_), Some(schema)) = (settings.database(), applied.last())
        && !pending.is_empty()
    {
        let (path, made) = crate::backup::before_upgrade(settings, &db, schema).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot back the database up before upgrading it: {e:#} (KUTANGA_BACKUP_DIR names where the \
                 backup goes)"
            )
        })?;
        let what = if made { "backed the database up before upgrading it" } else { "a backup of this schema exists" };
        tracing::info!(path = %path.display(), pending = ?pending, "{what}");
    }
    let applied = migrate(&db, bus).await?;
    Ok((db, applied))
}

/// Applies pending migrations and records them in the audit log.
pub async fn migrate(db: &Db, bus: &dyn EventBus) -> anyhow::Result<Vec<String>> {
    let applied = db.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "database migrated");
        let mut audit = AuditBatch::default();
        let txn = db.write().await?;
        audit.record(&*txn, Entry::new("hub.migrate", None).detail(format!("applied {}", applied.join(", ")))).await?;
        audit.finish(txn, bus).await?;
    }
    Ok(applied)
}

/// Seeds the permission catalogue and the built-in roles (audited).
pub async fn seed(db: &Db, bus: &dyn EventBus) -> anyhow::Result<Vec<SeedChange>> {
    let mut audit = AuditBatch::default();
    let txn = db.write().await?;
    let changes = seed::catalogue(&*txn).await?;
    for change in &changes {
        let entry = match change {
            SeedChange::PermissionAdded(key) => Entry::new("seed.permission", None).target("permission", key),
            SeedChange::RoleCreated { id, name } => {
                Entry::new("seed.role", None).target("role", id).detail(format!("built-in role {name}"))
            }
            SeedChange::AdminKeysAdded(keys) => {
                Entry::new("seed.role", None).target("role", "Admin").detail(format!("added {}", keys.join(", ")))
            }
        };
        audit.record(&*txn, entry).await?;
    }
    audit.finish(txn, bus).await?;
    Ok(changes)
}

/// The first admin's credentials, when one was just created with a generated password.
#[derive(Debug)]
pub struct FirstAdmin {
    pub email: String,
    /// Present when the hub generated it: shown once, never logged.
    pub generated_password: Option<String>,
}

/// Creates the first admin when no account holds the Admin role yet (a fresh hub, or one where
/// only `kutanga admin create-user` has made non-admin accounts so far).
pub async fn first_admin(s: &Services) -> Result<Option<FirstAdmin>, ApiError> {
    if users::count_with_role(s.db.conn(), shared::permission::ADMIN.name).await? > 0 {
        return Ok(None);
    }
    let settings = &s.settings;
    let generated = settings.admin_password.is_none().then(|| random_secret()[..24].to_owned());
    let password = settings.admin_password.clone().or_else(|| generated.clone()).unwrap_or_default();
    let origin = Origin { via: Some("first start"), ..Origin::default() };
    let new = NewUser {
        email: settings.admin_email.clone(),
        password,
        display_name: Some("Administrator".into()),
        roles: vec![shared::permission::ADMIN.name.into()],
    };
    let account = users::create(s, &origin, new, None).await?;
    Ok(Some(FirstAdmin { email: account.email, generated_password: generated }))
}

/// Prints the generated password once, on the console and never in the log.
pub fn announce(admin: &FirstAdmin) {
    if let Some(password) = &admin.generated_password {
        #[expect(clippy::print_stdout, reason = "shown once to the operator, kept out of log files")]
        {
            println!();
            println!("  The first admin account was created:");
            println!("    email:    {}", admin.email);
            println!("    password: {password}");
            println!("  This password is shown only once. Change it after you sign in.");
            println!();
        }
    }
}
