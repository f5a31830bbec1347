//! Backups of the hub's own database: a consistent snapshot taken while the hub runs and serves
//! writes, packed with what a restore needs into one compressed file; a restore into an empty
//! data dir; backups on a schedule with retention; a backup before a SQLite database is migrated.
//!
//! A backup is a gzip-compressed tar of `manifest.json` (format, hub version, database schema,
//! backend, time, and the size and SHA-256 of every other file), the database (`kutanga.db`,
//! made by SQLite's `VACUUM INTO`, or `kutanga.pgdump`, made by `pg_dump` in its custom format), the JWT key (`jwt.key`)
//! when the data dir holds one, and the configuration file (`kutanga.toml`) when one is in use.
//! It is written to a `.partial` file that is renamed once complete, so a backup file that exists
//! is whole; it is readable by the hub's user only (it holds password hashes and the key). A
//! restore checks every file against the manifest before it writes anything.

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    config::{DatabaseTarget, Settings},
    db::{self, Db},
};

/// The layout of a backup; a restore refuses any other.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "kutanga.db";
/// `pg_dump`'s custom format, read back by `pg_restore`.
const SQL_FILE: &str = "kutanga.pgdump";
const KEY_FILE: &str = "jwt.key";
const CONFIG_FILE: &str = "kutanga.toml";
/// What a scheduled backup's name starts with; only such files are ever pruned.
const SCHEDULED_PREFIX: &str = "kutanga-";
const SUFFIX: &str = ".tar.gz";

/// What a backup holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub hub_version: String,
    /// The newest migration applied to the database backed up.
    pub schema: String,
    pub backend: Backend,
    pub created_at: DateTime<Utc>,
    pub files: BTreeMap<String, FileSum>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    /// The size of the database in the backup.
    pub fn database_bytes(&self) -> u64 {
        self.files.get(SQLITE_FILE).or_else(|| self.files.get(SQL_FILE)).map_or(0, |f| f.bytes)
    }
}

/// Writes a backup of the hub's database (and key and configuration file) to `output`, which
/// must not exist yet. Safe while a hub runs on the same database: the snapshot is one read
/// transaction, writers go on.
pub async fn create(settings: &Settings, db: &Db, output: &Path) -> anyhow::Result<Manifest> {
    let Some(schema) = db.applied_migrations().await?.pop() else {
        bail!("the database holds no Kutanga Hub data: are KUTANGA_DATA_DIR and KUTANGA_DATABASE_URL the hub's?");
    };
    if output.exists() {
        bail!("{} exists already: choose another name (a backup never overwrites a file)", output.display());
    }
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".kutanga-backup-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    // The snapshot is written before it is packed: nobody else may read it meanwhile.
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o700))?;
    let backend = match settings.database() {
        DatabaseTarget::Sqlite(_) => {
            let file = staging.path().join(SQLITE_FILE);
            let into = Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "VACUUM INTO ?",
                [file.to_string_lossy().into_owned().into()],
            );
            db.conn().execute_raw(into).await.context("SQLite could not write the snapshot")?;
            Backend::Sqlite
        }
        DatabaseTarget::Postgres(url) => {
            let file = staging.path().join(SQL_FILE);
            let (url, password) = without_password(&url)?;
            let mut dump = Command::new("pg_dump");
            dump.args(["--format=custom", "--no-owner", "--no-privileges", "--no-password"])
                .arg("--file")
                .arg(&file)
                .arg("--dbname")
                .arg(url);
            run_tool(dump, password, "pg_dump").await?;
            Backend::Postgres
        }
    };
    let key = settings.data_dir.join(KEY_FILE);
    if key.is_file() {
        fs::copy(&key, staging.path().join(KEY_FILE)).with_context(|| format!("cannot read {}", key.display()))?;
    }
    if let Some(config) = &settings.config {
        fs::copy(config, staging.path().join(CONFIG_FILE))
            .with_context(|| format!("cannot read {}", config.display()))?;
    }
    let output = output.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut files = BTreeMap::new();
        for name in [SQLITE_FILE, SQL_FILE, KEY_FILE, CONFIG_FILE] {
            let path = staging.path().join(name);
            if path.is_file() {
                files.insert(name.to_owned(), sum(&path)?);
            }
        }
        let manifest = Manifest {
            format: FORMAT,
            hub_version: shared::VERSION.to_owned(),
            schema,
            backend,
            created_at: Utc::now(),
            files,
        };
        pack(staging.path(), &manifest, &output)?;
        Ok(manifest)
    })
    .await?
}

/// Restores a backup into the configured data dir and database, which must hold no database yet,
/// while no hub runs on the data dir. Everything in the backup is checked before anything is
/// written.
pub async fn restore(settings: &Settings, input: &Path) -> anyhow::Result<Manifest> {
    let data_dir = settings.data_dir.clone();
    let _lock = DataDirLock::acquire(&data_dir)?;
    let staging = tempfile::Builder::new()
        .prefix(".kutanga-restore-")
        .tempdir_in(&data_dir)
        .with_context(|| format!("cannot write in {}", data_dir.display()))?;
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o700))?;
    let (at, into) = (input.to_owned(), staging.path().to_owned());
    let manifest = tokio::task::spawn_blocking(move || unpack(&at, &into))
        .await?
        .map_err(|e| anyhow!("{} is not a whole Kutanga Hub backup: {e:#}", input.display()))?;
    if !db::known_migrations().contains(&manifest.schema) {
        bail!(
            "this backup was made by a newer Kutanga Hub ({}, schema {}); this binary ({}) knows schemas up to {}: \
             restore it with that version",
            manifest.hub_version,
            manifest.schema,
            shared::VERSION,
            db::schema_version()
        );
    }
    let config_copy = data_dir.join("kutanga.toml.restored");
    if staging.path().join(CONFIG_FILE).is_file() && config_copy.exists() {
        bail!("{} exists already: move it away first", config_copy.display());
    }
    let key = data_dir.join(KEY_FILE);
    let backed_up_key = staging.path().join(KEY_FILE);
    if backed_up_key.is_file() && key.is_file() && fs::read(&key)? != fs::read(&backed_up_key)? {
        bail!("{} holds another JWT key than the backup: restore only into an empty data dir", key.display());
    }
    match (settings.database(), manifest.backend) {
        (DatabaseTarget::Sqlite(path), Backend::Sqlite) => {
            // Its -wal file too: SQLite would apply an old database's changes to the restored one.
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                if Path::new(&name).exists() {
                    bail!(
                        "a database exists already at {}: restore only into an empty data dir (move it and \
                         its -wal and -shm files away first)",
                        Path::new(&name).display()
                    );
                }
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)?;
            }
            // A copy next to its place, then a rename: the database appears whole or not at all.
            let partial = path.with_extension("db.partial");
            fs::copy(staging.path().join(SQLITE_FILE), &partial)?;
            fs::set_permissions(&partial, fs::Permissions::from_mode(0o600))?;
            File::open(&partial)?.sync_all()?;
            fs::rename(&partial, &path)?;
        }
        (DatabaseTarget::Postgres(url), Backend::Postgres) => {
            let db = Db::connect(&DatabaseTarget::Postgres(url.clone())).await?;
            let tables = db
                .conn()
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema()",
                ))
                .await?
                .map(|row| row.try_get::<i64>("", "n"))
                .transpose()?
                .unwrap_or_default();
            db.close().await;
            if tables > 0 {
                bail!(
                    "the database KUTANGA_DATABASE_URL names holds {tables} table(s): restore only into an empty one"
                );
            }
            let (url, password) = without_password(&url)?;
            // pg_restore reads the archive's SQL only (no psql meta-commands such as `\!`).
            let mut load = Command::new("pg_restore");
            load.args(["--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "--no-password"])
                .arg("--dbname")
                .arg(url)
                .arg(staging.path().join(SQL_FILE));
            run_tool(load, password, "pg_restore").await?;
        }
        (_, backend) => bail!(
            "this backup holds a {} database and the hub is configured for {}: restore it with the database \
             setting it was made with (KUTANGA_DATABASE_URL)",
            name_of(backend),
            match settings.database() {
                DatabaseTarget::Sqlite(_) => "SQLite",
                DatabaseTarget::Postgres(_) => "PostgreSQL",
            }
        ),
    }
    if backed_up_key.is_file() && !key.is_file() {
        write_private(&key, &fs::read(&backed_up_key)?)?;
    }
    let config = staging.path().join(CONFIG_FILE);
    if config.is_file() {
        write_private(&config_copy, &fs::read(&config)?)?;
    }
    Ok(manifest)
}

fn name_of(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

/// The connection URL for libpq's tools: without its password (given in PGPASSWORD instead, so
/// that it never shows in the process list) and with only the parameters libpq knows (sqlx takes
/// some of its own, and spells two of libpq's its own way).
fn without_password(url: &str) -> anyhow::Result<(String, Option<String>)> {
    const LIBPQ: &[(&str, &str)] = &[
        ("sslmode", "sslmode"),
        ("ssl-mode", "sslmode"),
        ("sslrootcert", "sslrootcert"),
        ("ssl-root-cert", "sslrootcert"),
        ("sslcert", "sslcert"),
        ("sslkey", "sslkey"),
        ("application_name", "application_name"),
        ("connect_timeout", "connect_timeout"),
        ("host", "host"),
        ("port", "port"),
        ("user", "user"),
        ("dbname", "dbname"),
    ];
    let mut parsed = url::Url::parse(url).map_err(|e| anyhow!("KUTANGA_DATABASE_URL: {e}"))?;
    let mut password =
        parsed.password().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
    let mut kept = Vec::new();
    for (key, value) in parsed.query_pairs() {
        if key == "password" {
            password = Some(value.into_owned());
        } else if let Some((_, libpq)) = LIBPQ.iter().find(|(name, _)| *name == key) {
            kept.push((libpq.to_owned(), value.into_owned()));
        }
    }
    let _ = parsed.set_password(None);
    parsed.set_query(None);
    if !kept.is_empty() {
        parsed.query_pairs_mut().extend_pairs(kept);
    }
    Ok((parsed.to_string(), password))
}

/// Runs one of PostgreSQL's tools, saying what to install when it is missing and what it said
/// when it failed.
async fn run_tool(mut command: Command, password: Option<String>, name: &str) -> anyhow::Result<()> {
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || command.output()).await?;
    let output = match output {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "{name} was not found on PATH: install PostgreSQL's client tools (Debian: apt-get install \
             postgresql-client), of the server's major version or newer"
        ),
        Err(e) => bail!("cannot run {name}: {e}"),
    };
    if !output.status.success() {
        bail!("{name} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

fn sum(path: &Path) -> anyhow::Result<FileSum> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut file, &mut hasher)?;
    Ok(FileSum { bytes, sha256: hex::encode(hasher.finalize()) })
}

/// Packs the manifest (first) and the files it lists into `output`, through a `.partial` file.
fn pack(dir: &Path, manifest: &Manifest, output: &Path) -> anyhow::Result<()> {
    let mut partial_name = output.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = PathBuf::from(partial_name);
    // A new file (never one left behind, nor what a symlink points to): a second backup to the
    // same name at the same time fails here.
    let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&partial).with_context(|| {
        format!("cannot create {} (a backup to that name runs, or one was interrupted: remove it)", partial.display())
    })?;
    let written = (|| -> anyhow::Result<()> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default()));
        let json = serde_json::to_vec_pretty(manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(manifest.created_at.timestamp().max(0) as u64);
        tar.append_data(&mut header, MANIFEST, json.as_slice())?;
        for name in manifest.files.keys() {
            let mut source = File::open(dir.join(name))?;
            let mut header = tar::Header::new_gnu();
            header.set_size(source.metadata()?.len());
            header.set_mode(0o600);
            header.set_mtime(manifest.created_at.timestamp().max(0) as u64);
            tar.append_data(&mut header, name, &mut source)?;
        }
        let file = tar.into_inner()?.finish()?;
        file.sync_all()?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&partial);
        return Err(e.context(format!("cannot write {}", output.display())));
    }
    // A link, not a rename: it fails rather than replace a file made under that name meanwhile.
    let published = fs::hard_link(&partial, output);
    let _ = fs::remove_file(&partial);
    published.with_context(|| format!("cannot write {}", output.display()))?;
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Unpacks a backup into `dir`, checking it on the way: the manifest first, then only the files
/// it lists, none longer than it says, each matching its checksum.
fn unpack(input: &Path, dir: &Path) -> anyhow::Result<Manifest> {
    let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let mut entries = archive.entries()?;
    let mut first = entries.next().ok_or_else(|| anyhow!("it is empty"))??;
    if first.path()?.as_os_str() != MANIFEST {
        bail!("it does not start with {MANIFEST}");
    }
    let mut json = Vec::new();
    first.by_ref().take(1 << 20).read_to_end(&mut json)?;
    let manifest: Manifest = serde_json::from_slice(&json).context("its manifest does not read")?;
    if manifest.format != FORMAT {
        bail!("it has format {} (this binary reads format {FORMAT}; a newer Kutanga Hub made it)", manifest.format);
    }
    let allowed = [SQLITE_FILE, SQL_FILE, KEY_FILE, CONFIG_FILE];
    if let Some(name) = manifest.files.keys().find(|n| !allowed.contains(&n.as_str())) {
        bail!("its manifest lists {name:?}, which no backup holds");
    }
    let mut seen = BTreeMap::new();
    for entry in entries {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let Some(expected) = manifest.files.get(&name) else {
            bail!("it holds {name:?}, which its manifest does not list")
        };
        if entry.header().entry_type() != tar::EntryType::Regular || seen.contains_key(&name) {
            bail!("{name} is not one plain file");
        }
        let path = dir.join(&name);
        let mut out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        let mut hasher = Sha256::new();
        let mut limited = entry.by_ref().take(expected.bytes.saturating_add(1));
        let mut buf = vec![0; 64 << 10];
        let mut bytes = 0u64;
        loop {
            let n = limited.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            bytes += n as u64;
        }
        let got = FileSum { bytes, sha256: hex::encode(hasher.finalize()) };
        if &got != expected {
            bail!("{name} does not match its checksum ({bytes} bytes read, {} listed)", expected.bytes);
        }
        seen.insert(name, ());
    }
    if let Some(missing) = manifest.files.keys().find(|n| !seen.contains_key(*n)) {
        bail!("{missing} is missing");
    }
    let database = if manifest.backend == Backend::Sqlite { SQLITE_FILE } else { SQL_FILE };
    if !seen.contains_key(database) {
        bail!("it holds no database");
    }
    Ok(manifest)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The data dir's lock: held by a serving hub and by a restore, so that a restore never writes
/// under a running hub and a hub never starts on a half-restored data dir.
pub struct DataDirLock(#[allow(dead_code, reason = "held, for its lock")] File);

impl DataDirLock {
    /// Takes the lock, making the data dir first when it does not exist yet.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<Self> {
        if !data_dir.exists() {
            fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
            // As the hub keeps it: traversable (games reach their folders inside), not listable.
            fs::set_permissions(data_dir, fs::Permissions::from_mode(0o711))?;
        }
        let path = data_dir.join("kutanga.lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Self(file)),
            Err(rustix::io::Errno::WOULDBLOCK) => bail!(
                "another Kutanga Hub process uses {} (it holds {}): stop it first",
                data_dir.display(),
                path.display()
            ),
            Err(e) => bail!("cannot lock {}: {e}", path.display()),
        }
    }
}

/// When scheduled backups are made and how many are kept.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub dir: PathBuf,
    pub every: Duration,
    pub keep: usize,
    pub max_age: Duration,
}

/// How a scheduled backup's name spells its time.
const STAMP: &str = "%Y%m%dT%H%M%SZ";

impl Schedule {
    /// Makes a backup when the newest one in the folder is older than the interval, then prunes
    /// the scheduled backups beyond the count or the age (never the newest), and what an
    /// interrupted backup left. Returns the path of the backup it made, if any.
    pub async fn tick(&self, settings: &Settings, db: &Db) -> anyhow::Result<Option<PathBuf>> {
        self.sweep()?;
        let now = Utc::now();
        let newest = self.scheduled()?.into_iter().map(|(_, at)| at).max();
        let due = newest.is_none_or(|at| (now - at).to_std().unwrap_or_default() >= self.every);
        let made = if due {
            let path = self.dir.join(format!("{SCHEDULED_PREFIX}{}{SUFFIX}", now.format(STAMP)));
            create(settings, db, &path).await?;
            Some(path)
        } else {
            None
        };
        self.prune()?;
        Ok(made)
    }

    /// The scheduled backups in the folder, newest first, by the time in their names: only names
    /// exactly as [`Self::tick`] writes them (`kutanga-20261201T000000Z.tar.gz`); other files,
    /// such as backups made by hand, are never counted or removed.
    fn scheduled(&self) -> io::Result<Vec<(PathBuf, DateTime<Utc>)>> {
        let mut found = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stamp = name.strip_prefix(SCHEDULED_PREFIX).and_then(|rest| rest.strip_suffix(SUFFIX));
            if let Some(at) = stamp.and_then(|s| chrono::NaiveDateTime::parse_from_str(s, STAMP).ok())
                && entry.file_type()?.is_file()
            {
                found.push((entry.path(), at.and_utc()));
            }
        }
        found.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
        Ok(found)
    }

    fn prune(&self) -> io::Result<()> {
        let now = Utc::now();
        for (i, (path, at)) in self.scheduled()?.into_iter().enumerate() {
            let old = (now - at).to_std().unwrap_or_default() > self.max_age;
            if i > 0 && (i >= self.keep || old) {
                fs::remove_file(&path)?;
                tracing::info!(path = %path.display(), "removed an old backup");
            }
        }
        Ok(())
    }

    /// Removes what a backup interrupted an hour ago or more left in the folder (its staging
    /// folder, its `.partial` file).
    fn sweep(&self) -> io::Result<()> {
        let Ok(entries) = fs::read_dir(&self.dir) else { return Ok(()) };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = entry.metadata()?.modified()?.elapsed().unwrap_or_default() > Duration::from_secs(3600);
            if !stale {
                continue;
            }
            if name.starts_with(".kutanga-backup-") && entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else if name.ends_with(".tar.gz.partial") && entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
}

/// Before migrating a SQLite database that holds data: a backup into the backup folder, named
/// after the schema it holds, so that a failed or unwanted upgrade can be undone. One per schema:
/// a hub restarted again and again while its upgrade fails does not fill the disk with copies.
/// Returns the backup, and whether it was made now.
pub async fn before_upgrade(settings: &Settings, db: &Db, from_schema: &str) -> anyhow::Result<(PathBuf, bool)> {
    let folder = settings.backup_folder();
    let prefix = format!("before-upgrade-{from_schema}-");
    if let Ok(entries) = fs::read_dir(&folder) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(SUFFIX) {
                return Ok((entry.path(), false));
            }
        }
    }
    let path = folder.join(format!("{prefix}{}{SUFFIX}", Utc::now().format(STAMP)));
    create(settings, db, &path).await?;
    Ok((path, true))
}
