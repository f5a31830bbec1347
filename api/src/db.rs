//! The database connection and the one way to write to it.
//!
//! SQLite runs in WAL mode with a busy timeout and foreign keys on. Every write goes through
//! [`Db::write`], which opens the transaction with `BEGIN IMMEDIATE` on SQLite: the write lock is
//! taken before the first read, so a transaction never has to upgrade a read lock and can never
//! fail with SQLITE_BUSY; waiting writers queue on the busy timeout. Inside one hub, SQLite
//! writers also queue on a semaphore so that they take turns fairly instead of polling.
//!
//! Every commit counts in [`Db::commits`], so that what was read from the database before a
//! commit can be told from what was read after (see `graphql::answers`); only the metric
//! history's writes ([`Db::write_history`]), which no kept answer reads, do not count.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use migration::MigratorTrait;
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, SqliteTransactionMode, SqlxSqliteConnector, Statement, TransactionOptions, TransactionTrait,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::DatabaseTarget;

/// How long a SQLite connection waits for a lock before it gives up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The hub's database: a pool plus the write discipline.
#[derive(Clone, Debug)]
pub struct Db {
    conn: DatabaseConnection,
    /// One permit: SQLite writers of this process take turns.
    sqlite_writer: Option<Arc<Semaphore>>,
    /// Write transactions committed (or whose commit was tried) by this process.
    commits: Arc<AtomicU64>,
}

/// A write transaction. Commit it; dropping it rolls back.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _permit: Option<OwnedSemaphorePermit>,
    /// Where its commit counts; None for the metric history's.
    commits: Option<Arc<AtomicU64>>,
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        // Counted whatever the outcome, even when the caller gives up waiting: a commit that
        // reports an error, or whose answer nobody waited for, may still have landed. (When the
        // caller gives up, the count may come before the commit lands: an answer read in that
        // moment may be kept until the next commit or for its 2 s at most.)
        let _counted = Counted(self.commits);
        self.txn.commit().await
    }
}

/// Counts a commit when dropped.
struct Counted(Option<Arc<AtomicU64>>);

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(commits) = &self.0 {
            commits.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Db {
    /// Connects to the target, creating the SQLite file (and its folder) when needed.
    pub async fn connect(target: &DatabaseTarget) -> anyhow::Result<Self> {
        match target {
            DatabaseTarget::Sqlite(path) => {
                if let Some(parent) = path.parent()
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(parent)?;
                }
                private_files(path)?;
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    // A write that failed part-way (the disk full at COMMIT, say) can leave SQLite
                    // and sqlx disagreeing about an open transaction; such a connection would
                    // read an old snapshot or refuse the next BEGIN. It is closed, never reused.
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            use sqlx::Connection;
                            if !conn.is_in_transaction() {
                                return Ok(true);
                            }
                            // A transaction dropped without COMMIT queued its ROLLBACK: let it land.
                            conn.ping().await?;
                            Ok(!conn.is_in_transaction())
                        })
                    })
                    .connect_with(options)
                    .await?;
                Ok(Self {
                    conn: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool),
                    sqlite_writer: Some(Arc::new(Semaphore::new(1))),
                    commits: Arc::default(),
                })
            }
            DatabaseTarget::Postgres(url) => {
                let mut opts = ConnectOptions::new(url.clone());
                // While the server is out of reach a request fails within seconds (sqlx retries a refused
                // connection until the acquire timeout, 30 s by default) and the pool reconnects by
                // itself once it is back.
                opts.max_connections(16)
                    .connect_timeout(Duration::from_secs(5))
                    .acquire_timeout(Duration::from_secs(5))
                    .sqlx_logging(false);
                let conn = Database::connect(opts).await?;
                Ok(Self { conn, sqlite_writer: None, commits: Arc::default() })
            }
        }
    }

    /// The connection for reads.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Opens a write transaction (see the module docs).
    pub async fn write(&self) -> Result<WriteTxn, DbErr> {
        self.begin(Some(self.commits.clone())).await
    }

    /// Opens a write transaction for the metric history's tables (`metric_series`,
    /// `metric_points`, `metric_buckets`) and nothing else: its commit is not counted in
    /// [`Self::commits`], so that a sample written every few seconds does not make every kept
    /// answer be read again. No kept answer reads those tables (`graphql::answers::STORED`).
    pub async fn write_history(&self) -> Result<WriteTxn, DbErr> {
        self.begin(None).await
    }

    async fn begin(&self, commits: Option<Arc<AtomicU64>>) -> Result<WriteTxn, DbErr> {
        let permit = match &self.sqlite_writer {
            Some(sem) => {
                Some(sem.clone().acquire_owned().await.map_err(|_| DbErr::Custom("the database is closing".into()))?)
            }
            None => None,
        };
        let options = match self.backend() {
            DbBackend::Sqlite => TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            },
            _ => TransactionOptions {
                isolation_level: Some(IsolationLevel::ReadCommitted),
                access_mode: Some(AccessMode::ReadWrite),
                ..Default::default()
            },
        };
        let txn = self.conn.begin_with_options(options).await?;
        Ok(WriteTxn { txn, _permit: permit, commits })
    }

    /// How many write transactions this process has committed so far: an answer read while it
    /// stays the same was read from the same data.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// Applies the pending migrations and returns their names. A database that a newer hub has
    /// migrated (a migration this binary does not know) is refused, before anything is changed.
    pub async fn migrate(&self) -> Result<Vec<String>, DbErr> {
        let pending = self.pending_migrations().await?;
        migration::Migrator::up(&self.conn, None).await?;
        Ok(pending)
    }

    /// The migrations this binary would apply; an error when the database is newer than it.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, DbErr> {
        pending_after(&self.applied_migrations().await?)
    }

    /// The migrations applied to the database, oldest first (none on a new database).
    pub async fn applied_migrations(&self) -> Result<Vec<String>, DbErr> {
        let exists = match self.backend() {
            DbBackend::Postgres => {
                "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() \
                 AND table_name = 'seaql_migrations'"
            }
            _ => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seaql_migrations'",
        };
        if self.conn.query_one_raw(Statement::from_string(self.backend(), exists)).await?.is_none() {
            return Ok(Vec::new());
        }
        let rows = self
            .conn
            .query_all_raw(Statement::from_string(
                self.backend(),
                "SELECT version FROM seaql_migrations ORDER BY version",
            ))
            .await?;
        rows.iter().map(|row| row.try_get::<String>("", "version")).collect()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        self.conn.ping().await.is_ok()
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// The migrations this binary would apply to a database that has `applied`; an error when that
/// database is newer than this binary.
pub fn pending_after(applied: &[String]) -> Result<Vec<String>, DbErr> {
    let known = known_migrations();
    if let Some(unknown) = applied.iter().find(|name| !known.contains(name)) {
        return Err(DbErr::Custom(format!(
            "the database was upgraded by a newer Kutanga Hub: its schema has migration {unknown}, which \
             this binary ({}, schema {}) does not know. Run the newer version, or restore a backup made \
             before the upgrade into an empty data dir",
            shared::VERSION,
            schema_version()
        )));
    }
    Ok(known.into_iter().filter(|name| !applied.contains(name)).collect())
}

/// The migrations this binary knows, oldest first.
pub fn known_migrations() -> Vec<String> {
    migration::Migrator::migrations().iter().map(|m| m.name().to_owned()).collect()
}

/// The database schema this binary writes: the name of its newest migration.
pub fn schema_version() -> String {
    known_migrations().pop().unwrap_or_default()
}

/// Makes the SQLite file (and its WAL and shared-memory files) readable by the hub's user only:
/// it holds password hashes and webhook URLs, and game servers run on the same host. The file is
/// created 0600 before SQLite opens it; SQLite then gives the WAL and -shm files the same mode.
fn private_files(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
