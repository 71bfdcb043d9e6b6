//! Personal data at rest (UU PDP): the data keys, AES-256-GCM for the personal columns and a
//! keyed hash (HMAC-SHA256) of the NIK for matching without clear text.
//!
//! # Ciphertext (a `bytea` column)
//! `[0x01] [key id: u16 big-endian] [nonce: 12 random bytes] [AES-256-GCM ciphertext + 16-byte tag]`.
//! The associated data is `<column name> 0x00 <record id: i64 big-endian>`, so a value copied
//! into another column or another record does not decrypt. A value whose first byte is `0x00`
//! is clear text written before encryption existed (migration 0006); `salur migrate` seals
//! those. SQL reads the key id of a value with `salur_key_id(bytea)`. Bank requests waiting in
//! the outbox are sealed the same way, bound to their outbox row ([`super::outbox`]).
//!
//! # Keys
//! `SALUR_DATA_KEYS` (entries separated by commas, spaces or new lines) or the file named by
//! `SALUR_DATA_KEY_FILE` (one entry a line, `#` comments): `hash:<base64 of 32 bytes>` once (the
//! HMAC key of the NIK hash; never rotated, every stored hash depends on it) and
//! `<id>:<base64 of 32 bytes>` per encryption key (id 1..65535). The highest id encrypts; the
//! others only decrypt. With neither set, `~/.local/share/salur/data-keys` is used, and created
//! when the database holds no encrypted data yet (a development default: production sets one).
//!
//! The database keeps a key check value per key (`data_keys`: HMAC-SHA256 of a fixed label under
//! the key), so that a wrong or missing key is refused at start-up, never read as garbage.

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The format byte of a sealed value.
const SEALED: u8 = 0x01;
/// The format byte of a value written in clear before migration 0006.
const LEGACY_CLEAR: u8 = 0x00;
const HEADER: usize = 1 + 2 + 12;
const CHECK_LABEL: &[u8] = b"salur data key check v1";

/// `salur bench --encryption-cost` only: values are stored as legacy clear text (same layout,
/// no cipher) to measure what sealing costs. Refused outside the benchmark's database.
static BENCH_CLEAR_TEXT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The benchmark's clear-text mode (see [`BENCH_CLEAR_TEXT`]): on in this process, and passed
/// to the processes it starts as `SALUR_BENCH_CLEAR_TEXT=1`.
pub fn bench_clear_text() -> bool {
    BENCH_CLEAR_TEXT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Turns the benchmark's clear-text mode on or off; only on the benchmark's database.
pub async fn set_bench_clear_text(conn: &mut PgConnection, on: bool) -> anyhow::Result<()> {
    if on {
        let db: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(conn)
            .await?;
        anyhow::ensure!(
            db == crate::bench::BENCH_NAME,
            "SALUR_BENCH_CLEAR_TEXT stores personal data in clear: it is refused outside the \
             benchmark's own database ({})",
            crate::bench::BENCH_NAME
        );
    }
    BENCH_CLEAR_TEXT.store(on, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Ends the benchmark's clear-text mode.
pub fn end_bench_clear_text() {
    BENCH_CLEAR_TEXT.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Which key a ciphertext names.
pub type KeyId = u16;

/// The id the keyed NIK hash's key is registered under in `data_keys`.
pub const HASH_KEY_ID: i32 = 0;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Config(String),
    #[error(
        "a value is encrypted with data key {0}, which is not in the key ring: add it back to \
         SALUR_DATA_KEYS / the key file (`salur keys status` lists the keys in use)"
    )]
    Missing(KeyId),
    #[error(
        "a value of {column} (record {record}) does not decrypt with data key {key}: the key is \
         wrong or the value was altered"
    )]
    Corrupt {
        column: &'static str,
        record: i64,
        key: KeyId,
    },
    #[error(
        "outbox message {outbox} (routing key {routing_key}) does not open with data key {key}: \
         the key is wrong or the message was altered or moved to another row; it is not published"
    )]
    CorruptMessage {
        outbox: i64,
        routing_key: String,
        key: KeyId,
    },
}

impl From<KeyError> for sqlx::Error {
    fn from(e: KeyError) -> Self {
        sqlx::Error::Decode(Box::new(e))
    }
}

/// The keys salur holds: encryption keys by id (the highest encrypts) and the hash key.
#[derive(Clone)]
pub struct Keyring {
    keys: BTreeMap<KeyId, Aes256Gcm>,
    raw: BTreeMap<KeyId, [u8; 32]>,
    hash_key: [u8; 32],
    /// Where the keys came from, for messages (never the keys).
    pub source: String,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.ids())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn key_bytes(what: &str, b64: &str) -> Result<[u8; 32], KeyError> {
    let bytes = B64.decode(b64.trim()).map_err(|e| {
        KeyError::Config(format!(
            "{what} is not base64 ({e}): write 32 random bytes in base64, e.g. from `salur keys generate`"
        ))
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        KeyError::Config(format!(
            "{what} is {} bytes long; a data key is 32 bytes (base64 of 32 random bytes)",
            bytes.len()
        ))
    })
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    k
}

fn check_value(key: &[u8; 32]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(CHECK_LABEL);
    mac.finalize().into_bytes()[..16].to_vec()
}

impl Keyring {
    /// Parses the key-ring text (`hash:…` and `<id>:…` entries).
    pub fn parse(text: &str, source: &str) -> Result<Self, KeyError> {
        let mut raw = BTreeMap::new();
        let mut hash_key = None;
        for entry in text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default())
            .flat_map(|l| l.split([',', ' ', '\t']))
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (id, b64) = entry.split_once(':').ok_or_else(|| {
                KeyError::Config(format!(
                    "{source}: an entry is not `<id>:<base64>` or `hash:<base64>`"
                ))
            })?;
            if id == "hash" {
                hash_key = Some(key_bytes(&format!("{source}: the hash key"), b64)?);
                continue;
            }
            let id: KeyId = id.parse().ok().filter(|i| *i > 0).ok_or_else(|| {
                KeyError::Config(format!(
                    "{source}: key id {id:?} is not a number from 1 to 65535"
                ))
            })?;
            let key = key_bytes(&format!("{source}: data key {id}"), b64)?;
            if raw.insert(id, key).is_some() {
                return Err(KeyError::Config(format!(
                    "{source}: data key {id} is given twice"
                )));
            }
        }
        let hash_key = hash_key.ok_or_else(|| {
            KeyError::Config(format!(
                "{source} has no `hash:<base64>` entry (the key of the NIK hash)"
            ))
        })?;
        if raw.is_empty() {
            return Err(KeyError::Config(format!(
                "{source} has no encryption key: add `1:<base64 of 32 bytes>`"
            )));
        }
        Ok(Self::from_raw(raw, hash_key, source))
    }

    fn from_raw(raw: BTreeMap<KeyId, [u8; 32]>, hash_key: [u8; 32], source: &str) -> Self {
        let keys = raw
            .iter()
            .map(|(id, k)| (*id, Aes256Gcm::new(k.into())))
            .collect();
        Self {
            keys,
            raw,
            hash_key,
            source: source.to_owned(),
        }
    }

    /// A new key ring: a hash key and encryption key 1.
    pub fn generate() -> Self {
        Self::from_raw(
            BTreeMap::from([(1, random_key())]),
            random_key(),
            "generated",
        )
    }

    /// The key-ring text (what a key file holds).
    pub fn to_text(&self) -> String {
        let mut s = String::from(
            "# salur data keys (see README, \"Personal data\"): keep secret, back up, never commit.\n\
             # hash: the NIK hash key (never changes); <id>: encryption keys, the highest encrypts.\n",
        );
        s.push_str(&format!("hash:{}\n", B64.encode(self.hash_key)));
        for (id, k) in &self.raw {
            s.push_str(&format!("{id}:{}\n", B64.encode(k)));
        }
        s
    }

    /// This ring with one more encryption key (the next id), which becomes the current one.
    pub fn with_new_key(&self) -> Self {
        let mut raw = self.raw.clone();
        raw.insert(self.current() + 1, random_key());
        Self::from_raw(raw, self.hash_key, &self.source)
    }

    /// The key that encrypts.
    pub fn current(&self) -> KeyId {
        *self.raw.keys().next_back().expect("a key ring has a key")
    }

    pub fn ids(&self) -> Vec<KeyId> {
        self.raw.keys().copied().collect()
    }

    /// Encrypts `value` of `column` of record `record` with the current key.
    pub fn seal(&self, column: &str, record: i64, value: &str) -> Vec<u8> {
        if bench_clear_text() {
            let mut v = Vec::with_capacity(1 + value.len());
            v.push(LEGACY_CLEAR);
            v.extend_from_slice(value.as_bytes());
            return v;
        }
        self.seal_bytes(&aad(column, record), value.as_bytes())
    }

    /// Encrypts `clear` with the current key, bound to `aad`: `[0x01][key id][nonce][ct+tag]`.
    pub(crate) fn seal_bytes(&self, aad: &[u8], clear: &[u8]) -> Vec<u8> {
        let id = self.current();
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(HEADER + clear.len() + 16);
        out.push(SEALED);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(clear);
        let tag = self.keys[&id]
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut out[HEADER..])
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        out.extend_from_slice(&tag);
        out
    }

    /// Decrypts a value sealed by [`Keyring::seal_bytes`] with `aad`. `Err(Some(key))`: the
    /// value does not open with that key (wrong key, or altered); `Err(None)`: not a sealed
    /// value at all. A key this ring lacks is [`KeyError::Missing`] (after one re-read of the
    /// key file).
    pub(crate) fn open_bytes(
        &self,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Result<Vec<u8>, Option<KeyId>>, KeyError> {
        if sealed.first() != Some(&SEALED) || sealed.len() < HEADER + 16 {
            return Ok(Err(None));
        }
        let id = KeyId::from_be_bytes([sealed[1], sealed[2]]);
        let Some(cipher) = self.keys.get(&id) else {
            // A key added since this ring was read (`salur keys rotate` in another process,
            // before this one's periodic re-read): read the key file again now, once.
            return match reload_now() {
                Some(ring) if ring.keys.contains_key(&id) => ring.open_bytes(aad, sealed),
                _ => Err(KeyError::Missing(id)),
            };
        };
        Ok(cipher
            .decrypt(
                Nonce::from_slice(&sealed[3..HEADER]),
                Payload {
                    msg: &sealed[HEADER..],
                    aad,
                },
            )
            .map_err(|_| Some(id)))
    }

    /// Decrypts a value sealed by [`Keyring::seal`] (or written in clear before encryption).
    pub fn open(
        &self,
        column: &'static str,
        record: i64,
        sealed: &[u8],
    ) -> Result<String, KeyError> {
        let corrupt = |key| KeyError::Corrupt {
            column,
            record,
            key,
        };
        if sealed.first() == Some(&LEGACY_CLEAR) {
            return String::from_utf8(sealed[1..].to_vec()).map_err(|_| corrupt(0));
        }
        let clear = self
            .open_bytes(&aad(column, record), sealed)?
            .map_err(|key| corrupt(key.unwrap_or(0)))?;
        String::from_utf8(clear).map_err(|_| corrupt(Keyring::key_of(sealed).unwrap_or(0)))
    }

    /// The key a sealed value names (`None` for a legacy clear value).
    pub fn key_of(sealed: &[u8]) -> Option<KeyId> {
        (sealed.first() == Some(&SEALED) && sealed.len() >= 3)
            .then(|| KeyId::from_be_bytes([sealed[1], sealed[2]]))
    }

    /// The keyed hash of a NIK as written: HMAC-SHA256 of its digits (the NIK parser strips
    /// spaces, dots and dashes the same way), so `5301.0112.3456.0001` and `5301011234560001`
    /// match. `None` when there are no digits.
    pub fn nik_hash(&self, nik: &str) -> Option<Vec<u8>> {
        let digits: String = nik.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key).expect("any length");
        mac.update(digits.as_bytes());
        Some(mac.finalize().into_bytes().to_vec())
    }

    /// `(key id, check value)` of every key, the hash key as [`HASH_KEY_ID`].
    fn check_values(&self) -> Vec<(i32, Vec<u8>)> {
        std::iter::once((HASH_KEY_ID, check_value(&self.hash_key)))
            .chain(
                self.raw
                    .iter()
                    .map(|(id, k)| (i32::from(*id), check_value(k))),
            )
            .collect()
    }
}

fn aad(column: &str, record: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(column.len() + 9);
    aad.extend_from_slice(column.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&record.to_be_bytes());
    aad
}

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `SALUR_DATA_KEYS`.
    Env(String),
    /// `SALUR_DATA_KEY_FILE`.
    File(PathBuf),
    /// Neither set: the development key file, created if missing.
    DefaultFile(PathBuf),
}

impl KeySource {
    pub fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        if let Some(v) = var("SALUR_DATA_KEYS") {
            KeySource::Env(v)
        } else if let Some(f) = var("SALUR_DATA_KEY_FILE") {
            KeySource::File(PathBuf::from(f))
        } else {
            KeySource::DefaultFile(default_key_file())
        }
    }

    /// The key file, if the keys come from one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            KeySource::Env(_) => None,
            KeySource::File(p) | KeySource::DefaultFile(p) => Some(p),
        }
    }
}

/// `$XDG_DATA_HOME/salur/data-keys`, else `~/.local/share/salur/data-keys`.
pub fn default_key_file() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("salur").join("data-keys")
}

fn read_file(path: &Path) -> Result<Keyring, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        KeyError::Config(format!(
            "cannot read the data key file {} ({e}): set SALUR_DATA_KEY_FILE to the key file \
             (or SALUR_DATA_KEYS to the keys)",
            path.display()
        ))
    })?;
    Keyring::parse(&text, &path.display().to_string())
}

/// Writes a key file that must not exist yet (mode 0600), atomically: a process that races us
/// keeps the first file written.
pub fn create_key_file(path: &Path, ring: &Keyring) -> std::io::Result<bool> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    write_private(&tmp, &ring.to_text())?;
    let created = match std::fs::hard_link(&tmp, path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::remove_file(&tmp)?;
    Ok(created)
}

/// Replaces a key file with `ring` (atomically, by rename).
pub fn replace_key_file(path: &Path, ring: &Keyring) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    write_private(&tmp, &ring.to_text())?;
    std::fs::rename(&tmp, path)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The process's key ring, with the file it was read from (re-read when it changes, so that
/// running workers learn a key that `salur keys rotate` added).
struct Loaded {
    ring: Arc<Keyring>,
    file: Option<(PathBuf, Option<SystemTime>)>,
    checked: Instant,
}

static RING: OnceLock<Mutex<Option<Loaded>>> = OnceLock::new();

/// How often a process looks whether its key file changed.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Reads the keys from `source` (creating the development key file when `create` and it is
/// missing) and makes them the process's key ring.
pub fn load(source: &KeySource, create: bool) -> Result<Arc<Keyring>, KeyError> {
    let ring = match source {
        KeySource::Env(text) => Keyring::parse(text, "SALUR_DATA_KEYS")?,
        KeySource::File(p) => read_file(p)?,
        KeySource::DefaultFile(p) => {
            if !p.exists()
                && create
                && create_key_file(p, &Keyring::generate()).map_err(|e| {
                    KeyError::Config(format!("cannot create the key file {}: {e}", p.display()))
                })?
            {
                tracing::warn!(
                    file = %p.display(),
                    "no data key configured: generated a development key file; production \
                     must set SALUR_DATA_KEY_FILE or SALUR_DATA_KEYS (and back the keys up)"
                );
            }
            read_file(p)?
        }
    };
    let ring = Arc::new(ring);
    let file = source.file().map(|p| (p.to_owned(), mtime(p)));
    *RING
        .get_or_init(Default::default)
        .lock()
        .expect("key ring lock") = Some(Loaded {
        ring: ring.clone(),
        file,
        checked: Instant::now(),
    });
    Ok(ring)
}

/// Reads the process's key file again at once (not waiting for [`RELOAD_EVERY`]); `None` when
/// the keys do not come from a file or it does not read.
fn reload_now() -> Option<Arc<Keyring>> {
    let mut guard = RING.get_or_init(Default::default).lock().ok()?;
    let l = guard.as_mut()?;
    let path = l.file.as_ref()?.0.clone();
    let ring = Arc::new(read_file(&path).ok()?);
    tracing::info!(keys = ?ring.ids(), "data key file read again for a key it did not have");
    l.ring = ring.clone();
    l.file = Some((path.clone(), mtime(&path)));
    l.checked = Instant::now();
    Some(ring)
}

/// The process's key ring: loaded from the environment on first use, re-read when its key file
/// changed.
pub fn keyring() -> Result<Arc<Keyring>, KeyError> {
    let mut guard = RING
        .get_or_init(Default::default)
        .lock()
        .expect("key ring lock");
    match guard.as_mut() {
        None => {
            drop(guard);
            load(&KeySource::from_env(), true)
        }
        Some(l) => {
            if l.checked.elapsed() >= RELOAD_EVERY
                && let Some((path, seen)) = &l.file
            {
                l.checked = Instant::now();
                let now = mtime(path);
                if now != *seen {
                    let path = path.clone();
                    match read_file(&path) {
                        Ok(ring) => {
                            tracing::info!(keys = ?ring.ids(), "data key file changed: reloaded");
                            l.ring = Arc::new(ring);
                            l.file = Some((path, now));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "data key file changed but does not read; keeping the keys")
                        }
                    }
                }
            }
            Ok(l.ring.clone())
        }
    }
}

/// Loads the keys and checks them against the database: every key the database knows must be
/// in the ring with the same check value (a wrong key is refused, never used), and keys new to
/// the database are registered. Called when a process connects.
pub async fn check(conn: &mut PgConnection) -> anyhow::Result<Arc<Keyring>> {
    if std::env::var("SALUR_BENCH_CLEAR_TEXT").as_deref() == Ok("1") {
        set_bench_clear_text(&mut *conn, true).await?;
    }
    let has_table: bool = sqlx::query_scalar("SELECT to_regclass('data_keys') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !has_table {
        // Not migrated yet: `salur migrate` checks.
        return Ok(keyring()?);
    }
    let known: Vec<(i32, Vec<u8>, bool)> =
        sqlx::query_as("SELECT key_id, check_value, retired_at IS NOT NULL FROM data_keys")
            .fetch_all(&mut *conn)
            .await?;
    let source = KeySource::from_env();
    // Generate the development key file only for a database that holds no keys yet.
    let ring = load(&source, known.is_empty())?;
    let mine: BTreeMap<i32, Vec<u8>> = ring.check_values().into_iter().collect();
    for (id, check, retired) in &known {
        let what = if *id == HASH_KEY_ID {
            "the NIK hash key (`hash:`)".to_owned()
        } else {
            format!("data key {id}")
        };
        match mine.get(id) {
            Some(c) if c == check => {}
            Some(_) => anyhow::bail!(
                "{what} in {} is not the key this database was written with (its key check value \
                 differs): set SALUR_DATA_KEY_FILE / SALUR_DATA_KEYS to this database's keys",
                ring.source
            ),
            None if *retired => {}
            None => anyhow::bail!(
                "this database holds data encrypted with {what}, which {} does not have: add it \
                 (see `salur keys status`), or set SALUR_DATA_KEY_FILE / SALUR_DATA_KEYS to this \
                 database's keys",
                ring.source
            ),
        }
    }
    let (ids, checks): (Vec<i32>, Vec<Vec<u8>>) = mine.into_iter().unzip();
    sqlx::query(
        "INSERT INTO data_keys (key_id, check_value)
         SELECT * FROM UNNEST($1::int[], $2::bytea[]) ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&checks)
    .execute(&mut *conn)
    .await?;
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_opens_only_in_its_column_and_record() {
        let ring = Keyring::generate();
        let s = ring.seal("nik", 7, "5301014101800001");
        assert_eq!(s[0], SEALED);
        assert_eq!(Keyring::key_of(&s), Some(1));
        assert_eq!(ring.open("nik", 7, &s).unwrap(), "5301014101800001");
        assert!(ring.open("kk", 7, &s).is_err());
        assert!(ring.open("nik", 8, &s).is_err());
        // the same value twice is two different ciphertexts
        assert_ne!(s, ring.seal("nik", 7, "5301014101800001"));
    }

    #[test]
    fn wrong_key_is_an_error_not_garbage() {
        let a = Keyring::generate();
        let b = Keyring::generate();
        let s = a.seal("name", 1, "Maria Goreti");
        assert!(matches!(
            b.open("name", 1, &s),
            Err(KeyError::Corrupt { key: 1, .. })
        ));
        let rotated = a.with_new_key();
        let s2 = rotated.seal("name", 1, "Maria Goreti");
        assert_eq!(Keyring::key_of(&s2), Some(2));
        assert!(matches!(a.open("name", 1, &s2), Err(KeyError::Missing(2))));
        // the rotated ring still reads the old key's values
        assert_eq!(rotated.open("name", 1, &s).unwrap(), "Maria Goreti");
    }

    #[test]
    fn key_text_round_trips_and_bad_text_says_why() {
        let ring = Keyring::generate().with_new_key();
        let back = Keyring::parse(&ring.to_text(), "test").unwrap();
        assert_eq!(back.ids(), vec![1, 2]);
        assert_eq!(back.nik_hash("1"), ring.nik_hash("1"));
        let one_line = ring
            .to_text()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(Keyring::parse(&one_line, "env").unwrap().current(), 2);
        let e = Keyring::parse("1:AAAA", "env").unwrap_err().to_string();
        assert!(e.contains("32 bytes"), "{e}");
        let e = Keyring::parse(&format!("1:{}", B64.encode([0u8; 32])), "env")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hash"), "{e}");
    }

    #[test]
    fn nik_hash_ignores_separators_and_depends_on_the_key() {
        let ring = Keyring::generate();
        assert_eq!(
            ring.nik_hash("5301.0141-0180 0001"),
            ring.nik_hash("5301014101800001")
        );
        assert_ne!(
            ring.nik_hash("5301014101800001"),
            Keyring::generate().nik_hash("5301014101800001")
        );
        assert_eq!(ring.nik_hash(" - "), None);
    }

    #[test]
    fn legacy_clear_values_read_as_written() {
        let ring = Keyring::generate();
        let mut v = vec![LEGACY_CLEAR];
        v.extend_from_slice("Siti".as_bytes());
        assert_eq!(ring.open("name", 3, &v).unwrap(), "Siti");
        assert_eq!(Keyring::key_of(&v), None);
    }
}
