//! Argon2id password hashing with OWASP's parameters, always off the async threads.
//!
//! Each hash takes 19 MiB and a core for a moment, so at most one hash per core runs at a time,
//! a short queue waits for its turn, and past that the answer is RATE_LIMITED at once: a flood
//! of sign-ins can neither exhaust the memory nor build an unbounded backlog. The hashes run on
//! a few threads of their own (one per core), not on the blocking pool: the allocator keeps
//! freed memory per thread, and 19 MiB kept by each of dozens of pool threads adds up. Those
//! threads run at a lower priority, so that a login flood does not slow the other requests.

use std::sync::{
    Arc, LazyLock, Mutex,
    atomic::{AtomicUsize, Ordering},
    mpsc,
};

use tokio::sync::{Semaphore, SemaphorePermit};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, SaltString, rand_core::OsRng},
};

use crate::error::ApiError;

/// OWASP's Argon2id recommendation: 19 MiB of memory, 2 iterations, 1 lane.
fn hasher() -> Argon2<'static> {
    #[expect(clippy::expect_used, reason = "constant parameters that argon2 accepts")]
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash to verify against when the account does not exist, so that an unknown email costs
/// the same time as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_blocking("not a password of anyone").unwrap_or_default());

/// Bounds the hashing work of the whole process.
struct Gate {
    running: Semaphore,
    waiting: AtomicUsize,
    queue: usize,
}

static GATE: LazyLock<Gate> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Gate { running: Semaphore::new(cores), waiting: AtomicUsize::new(0), queue: 8 * cores }
});

/// Counts a waiter for as long as it waits (also when its request is dropped meanwhile).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A turn to hash: at once, after a short wait in the queue, or RATE_LIMITED when the queue is full.
async fn turn() -> Result<SemaphorePermit<'static>, ApiError> {
    let gate: &'static Gate = &GATE;
    if let Ok(permit) = gate.running.try_acquire() {
        return Ok(permit);
    }
    if gate.waiting.fetch_add(1, Ordering::SeqCst) >= gate.queue {
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(ApiError::RateLimited { retry_after_secs: 1 });
    }
    let _waiting = Waiting(&gate.waiting);
    gate.running.acquire().await.map_err(ApiError::internal)
}

type Job = Box<dyn FnOnce() + Send>;

/// The nice value of the hashing threads (0 is the default, 19 the lowest priority).
const HASHING_NICE: i32 = 10;

/// The hashing threads, fed from one queue.
static WORKERS: LazyLock<Mutex<mpsc::Sender<Job>>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for n in 0..std::thread::available_parallelism().map_or(2, usize::from) {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new().name(format!("argon2-{n}")).spawn(move || {
            // Sign-ins yield the CPU to everything else: the hub's other requests and the games
            // (a thread's nice value is its own on Linux). They still take every idle cycle.
            if let Err(e) = rustix::process::setpriority_process(None, HASHING_NICE) {
                tracing::debug!(error = %e, "cannot lower the priority of a password hashing thread");
            }
            loop {
                let job = rx.lock().map_err(|_| ()).and_then(|r| r.recv().map_err(|_| ()));
                match job {
                    // A panic in one hash must not end the thread (the permit is freed by unwinding).
                    Ok(job) => {
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                            tracing::error!("a password hash panicked");
                        }
                    }
                    Err(()) => return,
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password hashing thread");
        }
    }
    Mutex::new(tx)
});

/// Runs `work` on a hashing thread once it has its turn.
async fn on_worker<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let gone = || ApiError::internal(anyhow::anyhow!("the password hashing threads are gone"));
    let permit = turn().await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _permit = permit;
        let _ = tx.send(work());
    });
    WORKERS.lock().map_err(|_| gone())?.send(job).map_err(|_| gone())?;
    rx.await.map_err(|_| gone())
}

thread_local! {
    /// The Argon2 memory of this hashing thread, kept from one hash to the next: allocating
    /// 19 MiB for every hash leaves the allocator holding a little more each time.
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Computes a raw Argon2 hash into `out` with this thread's memory.
fn hash_into(argon: &Argon2<'_>, params: &Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() != params.block_count() {
            *memory = vec![Block::default(); params.block_count()];
        }
        argon.hash_password_into_with_memory(password, salt, out, memory.as_mut_slice())
    })
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let argon = hasher();
    let params = argon.params().clone();
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(hash_into(&argon, &params, password.as_bytes(), salt_bytes, out)?)
    })?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string (with whatever parameters it was made).
fn matches(password: &str, stored: &str) -> Result<bool, argon2::password_hash::Error> {
    let parsed = PasswordHash::new(stored)?;
    let params = Params::try_from(&parsed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed.version.map(Version::try_from).transpose()?.unwrap_or_default();
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(argon2::password_hash::Error::Password);
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let output =
        Output::init_with(expected.len(), |out| Ok(hash_into(&argon, &params, password.as_bytes(), salt_bytes, out)?))?;
    // Output's equality is constant-time.
    Ok(output == expected)
}

/// Hashes a password on a hashing thread.
pub async fn hash(password: String) -> Result<String, ApiError> {
    on_worker(move || hash_blocking(&password)).await?.map_err(|e| ApiError::internal(anyhow::anyhow!("argon2: {e}")))
}

/// Checks a password against a stored hash on a hashing thread. `None` checks against a dummy
/// hash and returns false, taking the same time.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    on_worker(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = matches(&password, &stored).unwrap_or(false);
        known && ok
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery staple".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery staple".into(), Some(h.clone())).await.unwrap());
        assert!(!verify("Correct horse battery staple".into(), Some(h)).await.unwrap());
        assert!(!verify("not a password of anyone".into(), None).await.unwrap());
    }

    #[test]
    fn hashes_are_standard_argon2id_strings() {
        use argon2::{PasswordHasher, PasswordVerifier};
        // Made the standard way (as stored before), checked here; and the other way round.
        let salt = SaltString::generate(&mut OsRng);
        let standard = hasher().hash_password(b"an old passphrase", &salt).unwrap().to_string();
        assert!(matches("an old passphrase", &standard).unwrap());
        assert!(!matches("an old passphrase!", &standard).unwrap());
        let ours = hash_blocking("a new passphrase").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(hasher().verify_password(b"a new passphrase", &parsed).is_ok());
        // Other parameters still verify (a hash made before a change of the defaults).
        let light = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 1, 1, None).unwrap());
        let old = light.hash_password(b"light", &salt).unwrap().to_string();
        assert!(matches("light", &old).unwrap());
    }

    #[tokio::test]
    async fn hashing_again_and_again_costs_no_more_memory() {
        let peak = || -> u64 {
            let s = std::fs::read_to_string("/proc/self/status").unwrap();
            s.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        verify("warm up".into(), None).await.unwrap();
        let before = peak();
        for _ in 0..12 {
            verify("x".into(), None).await.unwrap();
        }
        let grown = peak() - before;
        // One buffer per hashing thread (2 on this machine kind) at most; not one per hash.
        assert!(grown < 3 * 20 * 1024, "grew by {grown} KiB over 12 hashes");
    }
}
