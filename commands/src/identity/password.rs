//! Passwords: the policy a user would expect (length, not guessable, not their email) and
//! argon2id hashing, run off the async threads (it is slow on purpose).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::Fault;
use crate::Invalid;

/// argon2id cost. The default is OWASP's recommendation (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            lanes: 1,
        }
    }
}

impl PasswordCost {
    fn argon2(&self) -> Result<Argon2<'static>, Fault> {
        let params =
            Params::new(self.memory_kib, self.iterations, self.lanes, None).map_err(Fault::new)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 128;

/// Checks `password` for the account `email` (and `name`): 10 to 128 characters, and not
/// guessable by zxcvbn's dictionaries and patterns (score ≥ 3) given the user's own details.
pub fn check_policy(password: &str, email: &str, name: Option<&str>) -> Result<(), Invalid> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(Invalid::one(
            "password",
            format!("use at least {MIN_LENGTH} characters"),
        ));
    }
    if n > MAX_LENGTH {
        return Err(Invalid::one(
            "password",
            format!("use at most {MAX_LENGTH} characters"),
        ));
    }
    let local = email.split('@').next().unwrap_or(email);
    let mut inputs = vec![email, local];
    inputs.extend(name);
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if (estimate.score() as u8) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "it is too easy to guess".into());
        return Err(Invalid::one(
            "password",
            format!("choose a stronger password: {hint}"),
        ));
    }
    Ok(())
}

/// The argon2id hash (PHC string) of `password`.
pub async fn hash(cost: PasswordCost, password: String) -> Result<String, Fault> {
    let argon = cost.argon2()?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(Fault::new)
    })
    .await?
}

/// Whether `password` matches `hash`. With no hash (unknown user, or a user without a
/// password) a dummy hash is checked, so the answer takes as long either way.
pub async fn verify(
    cost: PasswordCost,
    password: String,
    hash: Option<String>,
) -> Result<bool, Fault> {
    let argon = cost.argon2()?;
    let known = hash.is_some();
    let phc = match hash {
        Some(h) => h,
        None => dummy(cost)?,
    };
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|h| argon.verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await?;
    Ok(known && ok)
}

fn dummy(cost: PasswordCost) -> Result<String, Fault> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(d) = DUMMY.get() {
        return Ok(d.clone());
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let h = cost
        .argon2()?
        .hash_password(b"not a password anyone has", &salt)
        .map_err(Fault::new)?
        .to_string();
    Ok(DUMMY.get_or_init(|| h).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_common_or_personal_passwords_are_refused() {
        assert!(check_policy("short", "ada@example.org", None).is_err());
        assert!(check_policy("password123", "ada@example.org", None).is_err());
        assert!(check_policy("ada@example.org", "ada@example.org", None).is_err());
        assert!(check_policy("lovelace1815", "ada@example.org", Some("Ada Lovelace")).is_err());
        assert!(check_policy("quartz-Lantern-92-vivid", "ada@example.org", None).is_ok());
    }
}
