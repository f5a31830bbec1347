//! Creating, changing and deleting game servers: rows, variables, and the server's folder.
//!
//! A server's folder is `<data dir>/servers/<id>`. Every file the hub writes there goes through a
//! capability handle on that folder (cap-std), so no path, `..` or symlink a server's files hold
//! can make the hub write outside it.

use std::path::{Path, PathBuf};

use chrono::Utc;
use entity::{game_server, server_grant, server_variable, template};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use shared::{Permission, ServerState};

use super::access;
use crate::{
    app::Services,
    audit::AuditBatch,
    auth::{Caller, ClientInfo},
    error::ApiError,
    templates::{self, Definition, ServerContext, Values, render, resolve_values, service::definition_of},
};

/// What a new server is made of.
#[derive(Debug, Clone)]
pub struct NewServer {
    pub name: String,
    pub template_id: i64,
    pub variables: Vec<(String, String)>,
    pub auto_restart: Option<bool>,
    pub start_with_hub: Option<bool>,
    pub memory_limit_mb: Option<i32>,
}

/// A change to a server.
#[derive(Debug, Clone, Default)]
pub struct ServerChange {
    pub name: Option<String>,
    pub variables: Option<Vec<(String, String)>>,
    pub auto_restart: Option<bool>,
    pub start_with_hub: Option<bool>,
    pub memory_limit_mb: Option<i32>,
}

/// The folder of a server.
pub fn folder(data_dir: &Path, id: i64) -> PathBuf {
    data_dir.join("servers").join(id.to_string())
}

fn valid_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 64 || shared::validation::has_hidden(name) {
        return Err(ApiError::bad_input(
            "name",
            "a server name has 1 to 64 characters and no control or invisible characters",
        ));
    }
    Ok(name.to_owned())
}

fn valid_memory(mb: Option<i32>) -> Result<Option<i32>, ApiError> {
    match mb {
        Some(m) if !(64..=1_048_576).contains(&m) => {
            Err(ApiError::bad_input("memoryLimitMb", "a memory limit is 64 to 1048576 MB"))
        }
        other => Ok(other),
    }
}

/// Stored values of a server.
pub async fn values_of<C: ConnectionTrait>(db: &C, server_id: i64) -> Result<Values, ApiError> {
    Ok(server_variable::Entity::find()
        .filter(server_variable::Column::ServerId.eq(server_id))
        .all(db)
        .await?
        .into_iter()
        .map(|v| (v.key, v.value))
        .collect())
}

/// Refuses a port another server already uses.
async fn ensure_port_free<C: ConnectionTrait>(
    db: &C,
    def: &Definition,
    values: &Values,
    server_id: Option<i64>,
) -> Result<Option<i32>, ApiError> {
    let Some(key) = &def.port_variable else { return Ok(None) };
    let port: i32 = values
        .get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::bad_input(format!("variables.{key}"), "a port is required"))?;
    let mut q = game_server::Entity::find().filter(game_server::Column::Port.eq(port));
    if let Some(id) = server_id {
        q = q.filter(game_server::Column::Id.ne(id));
    }
    if let Some(other) = q.one(db).await? {
        return Err(ApiError::Conflict {
            field: Some(format!("variables.{key}")),
            message: format!("port {port} is used by server `{}`", other.name),
        });
    }
    Ok(Some(port))
}

async fn store_values<C: ConnectionTrait>(db: &C, server_id: i64, values: &Values) -> Result<(), ApiError> {
    server_variable::Entity::delete_many().filter(server_variable::Column::ServerId.eq(server_id)).exec(db).await?;
    for (key, value) in values {
        server_variable::ActiveModel { server_id: Set(server_id), key: Set(key.clone()), value: Set(value.clone()) }
            .insert(db)
            .await?;
    }
    Ok(())
}

/// Writes the template's files into the server's folder, never outside it.
fn install_files(dir: &Path, files: &[(String, String)]) -> Result<(), ApiError> {
    use cap_std::{ambient_authority, fs::Dir};
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(ApiError::internal)?;
    // Other users may pass through `servers/` to their own folder, but not list it; a folder is
    // its game's alone.
    if let Some(parent) = dir.parent() {
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711)).map_err(ApiError::internal)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(ApiError::internal)?;
    let root = Dir::open_ambient_dir(dir, ambient_authority()).map_err(ApiError::internal)?;
    for (path, content) in files {
        templates::definition::safe_relative(path)
            .map_err(|e| ApiError::bad_input("definition", format!("files: `{path}` {e}")))?;
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            root.create_dir_all(parent).map_err(|e| ApiError::internal(anyhow::anyhow!("{path}: {e}")))?;
        }
        root.write(path, content).map_err(|e| ApiError::Conflict {
            field: None,
            message: format!("cannot write `{path}` in the server's folder: {}", crate::error::io_words(&e)),
        })?;
    }
    Ok(())
}

/// Creates a server from a template: checks the variables, stores the rows, prepares its folder.
/// The creator gets every per-server key they hold globally on it, and `server.read`.
pub async fn create(
    s: &Services,
    caller: &Caller,
    new: NewServer,
    client: &ClientInfo,
) -> Result<game_server::Model, ApiError> {
    caller.require(Permission::ServerCreate)?;
    let name = valid_name(&new.name)?;
    let memory = valid_memory(new.memory_limit_mb)?;
    let tpl = template::Entity::find_by_id(new.template_id)
        .one(s.db.conn())
        .await?
        .ok_or_else(|| ApiError::bad_input("templateId", "no such template"))?;
    let def = definition_of(&tpl)?;
    let values = resolve_values(&def, &new.variables, None, caller.has(Permission::TemplateManage))?;

    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let port = ensure_port_free(&*txn, &def, &values, None).await?;
    let now = Utc::now();
    let row = game_server::ActiveModel {
        name: Set(name),
        template_id: Set(tpl.id),
        state: Set(ServerState::Installing.as_str().to_owned()),
        pid: Set(None),
        pid_start_time: Set(None),
        port: Set(port),
        auto_restart: Set(new.auto_restart.unwrap_or(def.crash.auto_restart)),
        start_with_hub: Set(new.start_with_hub.unwrap_or(false)),
        memory_limit_mb: Set(memory),
        created_by: Set(Some(caller.user_id)),
        created_at: Set(now),
        started_at: Set(None),
        last_exit_code: Set(None),
        ..Default::default()
    }
    .insert(&*txn)
    .await
    .map_err(|e| ApiError::from_db(e, "name"))?;
    store_values(&*txn, row.id, &values).await?;
    let mut keys: Vec<Permission> = caller.permissions.iter().copied().filter(|p| p.is_server_scoped()).collect();
    if !keys.contains(&Permission::ServerRead) {
        keys.push(Permission::ServerRead);
    }
    if !caller.has(Permission::ServerRead) {
        for key in keys {
            server_grant::ActiveModel {
                server_id: Set(row.id),
                user_id: Set(caller.user_id),
                permission_key: Set(key.key().to_owned()),
                granted_by: Set(Some(caller.user_id)),
                created_at: Set(now),
            }
            .insert(&*txn)
            .await?;
        }
    }
    // Install while the row says INSTALLING; a failure rolls the row back and removes the folder.
    let dir = folder(&s.settings.data_dir, row.id);
    let launch = render(&def, &values, &ServerContext { dir: &dir, id: row.id, name: &row.name });
    if let Err(e) = install_files(&dir, &launch.files) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    let mut active = row.into_active_model();
    active.state = Set(ServerState::Offline.as_str().to_owned());
    let row = active.update(&*txn).await?;
    audit
        .record(
            &*txn,
            caller
                .audit("server.create", client)
                .target("server", row.id)
                .detail(format!("{} from template {}", row.name, tpl.name)),
        )
        .await?;
    if let Err(e) = audit.finish(txn, s.bus.as_ref()).await {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e.into());
    }
    s.access_changed(Some(caller.user_id));
    Ok(row)
}

/// Changes a server's settings. Variables can change only while it is offline or crashed.
pub async fn update(
    s: &Services,
    caller: &Caller,
    id: i64,
    change: ServerChange,
    client: &ClientInfo,
) -> Result<game_server::Model, ApiError> {
    let name = change.name.as_deref().map(valid_name).transpose()?;
    let memory = valid_memory(change.memory_limit_mb)?;
    let mut audit = AuditBatch::default();
    let txn = s.db.write().await?;
    let row = access::require(&*txn, caller, id, Permission::ServerUpdate).await?;
    let mut notes = Vec::new();
    let mut active = row.clone().into_active_model();
    if let Some(vars) = &change.variables {
        let state: ServerState = row.state.parse().map_err(|e: String| ApiError::internal(anyhow::anyhow!(e)))?;
        if !matches!(state, ServerState::Offline | ServerState::Crashed) {
            return Err(ApiError::Conflict {
                field: Some("variables".into()),
                message: format!("stop the server first (it is {state})"),
            });
        }
        let tpl =
            template::Entity::find_by_id(row.template_id).one(&*txn).await?.ok_or(ApiError::NotFound("template"))?;
        let def = definition_of(&tpl)?;
        let stored = values_of(&*txn, id).await?;
        let values = resolve_values(&def, vars, Some(&stored), caller.has(Permission::TemplateManage))?;
        active.port = Set(ensure_port_free(&*txn, &def, &values, Some(id)).await?);
        store_values(&*txn, id, &values).await?;
        let changed: Vec<&String> = values.keys().filter(|k| stored.get(*k) != values.get(*k)).collect();
        notes.push(format!("variables {}", changed.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")));
    }
    if let Some(name) = name {
        notes.push(format!("name `{}` -> `{name}`", row.name));
        active.name = Set(name);
    }
    if let Some(auto) = change.auto_restart {
        notes.push(format!("auto-restart {auto}"));
        active.auto_restart = Set(auto);
    }
    if let Some(with_hub) = change.start_with_hub {
        notes.push(format!("start with the hub {with_hub}"));
        active.start_with_hub = Set(with_hub);
    }
    if change.memory_limit_mb.is_some() {
        notes.push(format!("memory limit {memory:?} MB"));
        active.memory_limit_mb = Set(memory);
    }
    let row = active.update(&*txn).await.map_err(|e| ApiError::from_db(e, "name"))?;
    audit.record(&*txn, caller.audit("server.update", client).target("server", id).detail(notes.join("; "))).await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    Ok(row)
}

/// Deletes a stopped server: its rows and its folder.
pub async fn delete(s: &Services, caller: &Caller, id: i64, client: &ClientInfo) -> Result<bool, ApiError> {
    let mut audit = AuditBatch::default();
    // No start of the server may slip in between the check of its state and its deletion.
    let _power = s.supervisor.power_lock(id).await;
    let txn = s.db.write().await?;
    let row = access::require(&*txn, caller, id, Permission::ServerDelete).await?;
    let state: ServerState = row.state.parse().map_err(|e: String| ApiError::internal(anyhow::anyhow!(e)))?;
    if !matches!(state, ServerState::Offline | ServerState::Crashed) {
        return Err(ApiError::Conflict {
            field: None,
            message: format!("stop the server before deleting it (it is {state})"),
        });
    }
    game_server::Entity::delete_by_id(id).exec(&*txn).await?;
    audit.record(&*txn, caller.audit("server.delete", client).target("server", id).detail(row.name)).await?;
    audit.finish(txn, s.bus.as_ref()).await?;
    s.supervisor.sweep(id).await;
    // The server's alert rules went with it (the foreign key cascades).
    s.alerts.rules_changed();
    let dir = folder(&s.settings.data_dir, id);
    // remove_dir_all does not follow symlinks: a link inside the folder is removed, not its target.
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(server = id, error = %e, "the server's folder could not be removed");
    }
    s.access_changed(None);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_never_land_outside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("target.txt"), dir.path().join("file-link")).unwrap();
        for path in ["link/evil.txt", "../evil.txt", "/tmp/evil.txt", "file-link"] {
            assert!(install_files(dir.path(), &[(path.into(), "x".into())]).is_err(), "{path}");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing was written outside");
        install_files(dir.path(), &[("a/b/c.txt".into(), "ok".into())]).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("a/b/c.txt")).unwrap(), "ok");
    }
}
