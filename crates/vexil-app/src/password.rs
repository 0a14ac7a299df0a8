//! `Passwords`: argon2id hashing and checking, a bounded number at a time.
//!
//! One check is ~20 ms of CPU and 19 MiB of memory by design (argon2's defaults:
//! m=19456 KiB, t=2, p=1). Unbounded, a burst of sign-in attempts runs as many checks
//! at once as there are blocking threads (hundreds), and the server's memory follows
//! (120 parallel attempts took one from 27 MiB to over 2 GiB). So checks run on
//! `slots` threads of their own (one per core: more would only share the cores), each
//! reusing one block of memory for every check, and at most `queue` more wait for a
//! thread; beyond that, or after `MAX_WAIT`, a check is refused with `AppError::Busy`
//! and a wait, which the doors answer with `Retry-After`. Memory spent on passwords is
//! then `slots × 19 MiB`, whatever the load (docs/deploy.md).

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use std::sync::Mutex;
use std::sync::mpsc;

use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::error::AppError;

/// How long a check may wait for a thread before it is refused: a person signing
/// in waits this at most, then is told to try again.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(3);

/// The wait a refused check names: the queue drains in well under a second.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The checks waiting per thread, beyond which a check is refused at once.
const QUEUE_PER_SLOT: usize = 8;

/// A password check or hash to run, where its answer goes, and its place in the
/// queue (given back when the job is done or skipped, not when its caller gives up:
/// the queue counts the work actually waiting).
struct Job {
    task: Task,
    _admitted: OwnedSemaphorePermit,
}

enum Task {
    Verify {
        hash: String,
        password: SecretString,
        answer: oneshot::Sender<bool>,
    },
    Hash {
        password: SecretString,
        answer: oneshot::Sender<Result<String, AppError>>,
    },
}

/// The bounded argon2 work of one process.
pub(crate) struct Passwords {
    /// One permit per check running or waiting: `slots + queue` in all.
    admitted: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

impl Passwords {
    /// `slots` threads (at least one), each with its own memory block, and a queue
    /// of `QUEUE_PER_SLOT` per thread.
    pub(crate) fn new(slots: usize) -> Passwords {
        let slots = slots.max(1);
        let (jobs, work) = mpsc::channel::<Job>();
        let work = Arc::new(Mutex::new(work));
        for n in 0..slots {
            let work = work.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("vexil-argon2-{n}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        // The lock is held only to take the next job.
                        let next = work.lock().map(|work| work.recv());
                        let Ok(Ok(job)) = next else { return };
                        run(job.task, &mut memory);
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password-checking thread");
            }
        }
        Passwords {
            admitted: Arc::new(Semaphore::new(slots * (1 + QUEUE_PER_SLOT))),
            jobs,
        }
    }

    /// One thread per core this process may use.
    pub(crate) fn per_core() -> Passwords {
        Passwords::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Whether `password` matches the PHC string `hash`; `false` for a hash that
    /// does not parse.
    pub(crate) async fn verify(
        &self,
        hash: String,
        password: SecretString,
    ) -> Result<bool, AppError> {
        let (answer, answered) = oneshot::channel();
        self.submit(
            Task::Verify {
                hash,
                password,
                answer,
            },
            answered,
        )
        .await
    }

    /// An argon2id hash of `password` as a PHC string, with argon2's defaults.
    pub(crate) async fn hash(&self, password: SecretString) -> Result<String, AppError> {
        let (answer, answered) = oneshot::channel();
        self.submit(Task::Hash { password, answer }, answered)
            .await?
    }

    /// Admits `job` (or refuses: the queue is full, or no thread came in time) and
    /// waits for its answer.
    async fn submit<T>(&self, task: Task, answered: oneshot::Receiver<T>) -> Result<T, AppError> {
        let busy = || {
            metrics::counter!("vexil_password_checks_refused_total").increment(1);
            AppError::Busy {
                retry_after: RETRY_AFTER,
            }
        };
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        let job = Job {
            task,
            _admitted: admitted,
        };
        self.jobs.send(job).map_err(|_| busy())?;
        match tokio::time::timeout(MAX_WAIT, answered).await {
            Ok(Ok(answer)) => Ok(answer),
            // No thread is left to answer (none could start).
            Ok(Err(_)) => Err(busy()),
            // Still queued: the thread skips it when it comes to it.
            Err(_) => Err(busy()),
        }
    }
}

/// Runs one job on this thread's `memory`, grown to the largest cost seen.
fn run(task: Task, memory: &mut Vec<Block>) {
    match task {
        Task::Verify {
            hash,
            password,
            answer,
        } => {
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(verify(&hash, &password, memory));
        }
        Task::Hash { password, answer } => {
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(
                Argon2::default()
                    .hash_password(password.expose_secret().as_bytes())
                    .map(|hash| hash.to_string())
                    .map_err(AppError::PasswordHash),
            );
        }
    }
}

/// Checks `password` against `hash` in `memory` (argon2's own `verify_password`
/// allocates its 19 MiB on each call, which the allocator may keep per thread).
fn verify(hash: &str, password: &SecretString, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Version::try_from(hash.version.unwrap_or(Version::default().into())),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let blocks = argon.params().block_count();
    // A hash made with a larger cost than any before grows this thread's block once.
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    if argon
        .hash_password_into_with_memory(
            password.expose_secret().as_bytes(),
            salt.as_ref(),
            &mut out,
            &mut memory[..blocks],
        )
        .is_err()
    {
        return false;
    }
    bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// A valid argon2id hash of no one's password, with the same parameters as the
/// hashes vexil makes (argon2's defaults: m=19456, t=2, p=1), checked when the account
/// does not exist so that the answer takes as long as for a real account.
pub(crate) fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$4cr3ICO0IMaKuz/U2FgBQQ$Y3RwtodDV+SXdVuh0SO7GtZrNK+vcwxFTxFwaTGu0lg"
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::{Passwords, dummy_hash};
    use crate::error::AppError;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let passwords = Passwords::new(1);
        let hash = passwords
            .hash(SecretString::from("correct horse battery"))
            .await
            .unwrap();
        assert!(
            passwords
                .verify(hash.clone(), SecretString::from("correct horse battery"))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(hash, SecretString::from("correct horse batterY"))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(dummy_hash().to_owned(), SecretString::from("anything"))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("not a hash".to_owned(), SecretString::from("x"))
                .await
                .unwrap()
        );
    }

    /// Beyond the threads and their queue, a check is refused at once with a wait,
    /// rather than run or queued without bound (replayed: 120 checks at once).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_beyond_the_queue_are_refused_with_a_wait() {
        let passwords = std::sync::Arc::new(Passwords::new(1));
        let mut checks = Vec::new();
        for _ in 0..120 {
            let passwords = passwords.clone();
            checks.push(tokio::spawn(async move {
                passwords
                    .verify(dummy_hash().to_owned(), SecretString::from("guess"))
                    .await
            }));
        }
        let (mut checked, mut refused) = (0, 0);
        for check in checks {
            match check.await.unwrap() {
                Ok(false) => checked += 1,
                Err(AppError::Busy { retry_after }) => {
                    assert!(retry_after.as_secs() >= 1);
                    refused += 1;
                }
                other => panic!("unexpected: {other:?}"),
            }
        }
        // One thread and 8 waiting: at most 9 were admitted at once; the first ones
        // admitted were answered within the wait.
        assert!(checked >= 1, "some checks ran");
        assert!(
            checked <= 9,
            "{checked} checks were admitted; at most 9 may be"
        );
        assert_eq!(checked + refused, 120);
    }
}
