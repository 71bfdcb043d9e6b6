//! The people who sign in to the console, their passwords (argon2id) and sessions.
//!
//! `salur person add` makes a person with a one-time password (printed once, only its argon2id
//! hash stored); the person must change it at the first sign-in. A session is 32 random bytes
//! in an HttpOnly cookie, stored as their SHA-256, with its own CSRF token and an expiry.
//! Failed sign-ins are counted per login as typed (known or not): from the third in a row, each
//! answer waits longer before it is given ([`failure_delay`]).

use crate::ops::office::{Principal, Role};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, password_hash::rand_core::OsRng};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use std::time::Duration;

/// How long a session lasts after its last use.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// How long a session lasts at most, however busy.
pub const SESSION_MAX: Duration = Duration::from_secs(10 * 3600);
/// The shortest password a person may choose.
pub const MIN_PASSWORD: usize = 10;

/// A person as the console knows them once signed in.
#[derive(Debug, Clone)]
pub struct Person {
    pub login: String,
    pub office: String,
    pub name: String,
    pub role: Role,
    pub must_change: bool,
}

impl Person {
    /// The principal the operations see: the same roles and office isolation as a token's.
    /// The audit rows name the person and `console:<login>`.
    pub fn principal(&self) -> Principal {
        Principal {
            code: self.office.clone(),
            role: self.role,
            person: Some(self.name.clone()),
            token_label: format!("console:{}", self.login),
        }
    }

    /// The office whose batches this person sees: their own, or every office's for an auditor.
    pub fn scope(&self) -> Option<&str> {
        match self.role {
            Role::Auditor => None,
            _ => Some(&self.office),
        }
    }
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    pub person: Person,
    pub csrf: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PersonError {
    #[error(
        "login {0:?} is not valid: use 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidLogin(String),
    #[error("the person's name must not be empty: give --name \"Maria Ndun\"")]
    EmptyName,
    #[error("a console person is a maker, a checker or an auditor, not {0}")]
    InvalidRole(Role),
    #[error("no office {0}: list the offices with `salur office list`")]
    NoOffice(String),
    #[error(
        "{office} is {kind}: an auditor person belongs to an auditor (`salur office add CODE --auditor`), a maker or checker to an office"
    )]
    WrongKind { office: String, kind: String },
    #[error("login {0} already exists: choose another login")]
    Exists(String),
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// 18 characters from an alphabet without look-alikes (no 0/O, 1/l/I): about 100 bits.
pub fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// The argon2id hash (PHC string) of `password`, on a blocking thread (it takes a while, on
/// purpose).
pub async fn hash_password(password: String) -> Result<String, PersonError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PersonError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| PersonError::Hash(e.to_string()))?
}

/// Whether `password` matches the stored hash `phc`, on a blocking thread.
async fn verify_password(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of no password, verified when the login is unknown so that the answer takes as long.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn valid_login(login: &str) -> bool {
    let mut chars = login.chars();
    (1..=64).contains(&login.len())
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && login
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// Adds a person and returns their one-time password (not stored).
pub async fn add(
    pool: &PgPool,
    office: &str,
    login: &str,
    name: &str,
    role: Role,
) -> Result<String, PersonError> {
    if !valid_login(login) {
        return Err(PersonError::InvalidLogin(login.to_owned()));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(PersonError::EmptyName);
    }
    crate::domain::check_text("name", name).map_err(|_| PersonError::EmptyName)?;
    if role == Role::Admin {
        return Err(PersonError::InvalidRole(role));
    }
    let kind: Option<String> = sqlx::query_scalar("SELECT role FROM offices WHERE code = $1")
        .bind(office)
        .fetch_optional(pool)
        .await?;
    let kind = kind.ok_or_else(|| PersonError::NoOffice(office.to_owned()))?;
    if (kind == "auditor") != (role == Role::Auditor) {
        return Err(PersonError::WrongKind {
            office: office.to_owned(),
            kind: if kind == "auditor" {
                "an auditor".into()
            } else {
                "an office".into()
            },
        });
    }
    let password = one_time_password();
    let hash = hash_password(password.clone()).await?;
    let inserted = sqlx::query(
        "INSERT INTO people (login, office, name, role, password_hash, must_change)
         VALUES ($1, $2, $3, $4, $5, true) ON CONFLICT (login) DO NOTHING",
    )
    .bind(login)
    .bind(office)
    .bind(name)
    .bind(role.as_str())
    .bind(hash)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(PersonError::Exists(login.to_owned()));
    }
    Ok(password)
}

/// How long a sign-in answer waits after `failures` failed sign-ins in a row: nothing for the
/// first two, then 1 s, 2 s, 4 s, … up to 16 s.
pub fn failure_delay(failures: i32) -> Duration {
    if failures < 3 {
        Duration::ZERO
    } else {
        Duration::from_secs(1 << (failures - 3).min(4))
    }
}

/// The failed sign-ins of `login` in a row (forgotten after an hour without one).
async fn failures(pool: &PgPool, login: &str) -> sqlx::Result<i32> {
    Ok(sqlx::query_scalar(
        "SELECT failures FROM console_signin_failures
         WHERE login = $1 AND last_at > now() - interval '1 hour'",
    )
    .bind(login)
    .fetch_optional(pool)
    .await?
    .unwrap_or(0))
}

/// What a sign-in attempt gives.
pub enum SignIn {
    /// The cookie value of a new session.
    Ok {
        cookie: String,
        must_change: bool,
    },
    Refused,
}

/// Checks a login and password; on success opens a session. Slowed down after failures.
pub async fn sign_in(pool: &PgPool, login: &str, password: &str) -> Result<SignIn, PersonError> {
    let login = login.trim().to_lowercase();
    if login.len() > 64 || password.len() > 1024 {
        return Ok(SignIn::Refused);
    }
    tokio::time::sleep(failure_delay(failures(pool, &login).await?)).await;
    let row: Option<(String, bool)> =
        sqlx::query_as("SELECT password_hash, must_change FROM people WHERE login = $1")
            .bind(&login)
            .fetch_optional(pool)
            .await?;
    let (phc, must_change) = match row {
        Some(r) => r,
        None => {
            let dummy = match DUMMY_HASH.get() {
                Some(h) => h.clone(),
                None => {
                    let h = hash_password(one_time_password()).await?;
                    DUMMY_HASH.get_or_init(|| h).clone()
                }
            };
            (dummy, false)
        }
    };
    if !verify_password(password.to_owned(), phc).await {
        sqlx::query(
            "INSERT INTO console_signin_failures (login, failures) VALUES ($1, 1)
             ON CONFLICT (login) DO UPDATE SET
               failures = CASE WHEN console_signin_failures.last_at > now() - interval '1 hour'
                               THEN console_signin_failures.failures + 1 ELSE 1 END,
               last_at = now()",
        )
        .bind(&login)
        .execute(pool)
        .await?;
        return Ok(SignIn::Refused);
    }
    // A row for an unknown login cannot match a dummy hash of a random password, so here the
    // person exists.
    sqlx::query("DELETE FROM console_signin_failures WHERE login = $1")
        .bind(&login)
        .execute(pool)
        .await?;
    let cookie = random_hex(32);
    sqlx::query(
        "INSERT INTO console_sessions (id_hash, login, csrf, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(Sha256::digest(cookie.as_bytes()).to_vec())
    .bind(&login)
    .bind(random_hex(32))
    .bind(SESSION_MAX.as_secs_f64())
    .execute(pool)
    .await?;
    // Old sessions, and failures past counting, go now and then.
    sqlx::query("DELETE FROM console_sessions WHERE expires_at < now()")
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM console_signin_failures WHERE last_at < now() - interval '1 hour'")
        .execute(pool)
        .await?;
    Ok(SignIn::Ok {
        cookie,
        must_change,
    })
}

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The session of a cookie value, if it is open (not expired, used within [`SESSION_IDLE`]);
/// marks it used.
pub async fn session(pool: &PgPool, cookie: &str) -> sqlx::Result<Option<Session>> {
    if cookie.len() != 64 {
        return Ok(None);
    }
    let row: Option<(String, String, String, String, String, bool)> = sqlx::query_as(
        "UPDATE console_sessions s SET seen_at = now()
         FROM people p
         WHERE s.id_hash = $1 AND p.login = s.login
           AND s.expires_at > now() AND s.seen_at > now() - make_interval(secs => $2)
         RETURNING p.login, p.office, p.name, p.role, s.csrf, p.must_change",
    )
    .bind(Sha256::digest(cookie.as_bytes()).to_vec())
    .bind(SESSION_IDLE.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(
        row.and_then(|(login, office, name, role, csrf, must_change)| {
            Some(Session {
                person: Person {
                    login,
                    office,
                    name,
                    role: Role::parse(&role)?,
                    must_change,
                },
                csrf,
            })
        }),
    )
}

/// Ends a session.
pub async fn sign_out(pool: &PgPool, cookie: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
        .bind(Sha256::digest(cookie.as_bytes()).to_vec())
        .execute(pool)
        .await?;
    Ok(())
}

/// Why a password change is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ChangeRefused {
    WrongCurrent,
    TooShort,
    Mismatch,
    Same,
}

/// Changes a person's password (they give the current one); their other sessions end.
pub async fn change_password(
    pool: &PgPool,
    login: &str,
    keep_session: &str,
    current: &str,
    new: &str,
    repeat: &str,
) -> Result<Result<(), ChangeRefused>, PersonError> {
    let phc: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM people WHERE login = $1")
            .bind(login)
            .fetch_optional(pool)
            .await?;
    let Some(phc) = phc else {
        return Ok(Err(ChangeRefused::WrongCurrent));
    };
    if !verify_password(current.to_owned(), phc).await {
        return Ok(Err(ChangeRefused::WrongCurrent));
    }
    if new != repeat {
        return Ok(Err(ChangeRefused::Mismatch));
    }
    if new.chars().count() < MIN_PASSWORD || new.len() > 1024 {
        return Ok(Err(ChangeRefused::TooShort));
    }
    if new == current {
        return Ok(Err(ChangeRefused::Same));
    }
    let hash = hash_password(new.to_owned()).await?;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE people SET password_hash = $2, must_change = false, password_at = now()
         WHERE login = $1",
    )
    .bind(login)
    .bind(hash)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM console_sessions WHERE login = $1 AND id_hash <> $2")
        .bind(login)
        .bind(Sha256::digest(keep_session.as_bytes()).to_vec())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_sign_ins_wait_longer_and_longer() {
        assert_eq!(failure_delay(0), Duration::ZERO);
        assert_eq!(failure_delay(2), Duration::ZERO);
        assert_eq!(failure_delay(3), Duration::from_secs(1));
        assert_eq!(failure_delay(5), Duration::from_secs(4));
        assert_eq!(failure_delay(50), Duration::from_secs(16));
    }

    #[test]
    fn logins_are_plain() {
        assert!(valid_login("maria.ndun"));
        assert!(valid_login("m2"));
        assert!(!valid_login(""));
        assert!(!valid_login("Maria"));
        assert!(!valid_login(".x"));
        assert!(!valid_login("a b"));
        assert_eq!(one_time_password().len(), 18);
    }
}
