//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s, one step of skew either way) and
//! recovery codes.

use chrono::{DateTime, Utc};
use http_kit::secret;

use crate::error::Fault;
use totp_rs::{Algorithm, Secret, TOTP};

/// Recovery codes issued when TOTP is enabled; each works once.
pub const RECOVERY_CODES: usize = 10;

/// A fresh secret, base32 (what authenticator apps take).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

fn totp(secret_b32: &str) -> Result<TOTP, Fault> {
    let bytes = Secret::Encoded(secret_b32.to_owned())
        .to_bytes()
        .map_err(|e| Fault::new(format!("{e:?}")))?;
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes).map_err(Fault::new)
}

/// Whether `code` is valid for `secret` at `now`.
pub fn check(secret_b32: &str, code: &str, now: DateTime<Utc>) -> Result<bool, Fault> {
    Ok(matching_step(secret_b32, code, now)?.is_some())
}

/// The 30-second step (one before, now, one after) whose code `code` is, if any: a used
/// step is remembered so a code cannot sign in twice.
pub fn matching_step(
    secret_b32: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, Fault> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = totp(secret_b32)?;
    let step = now.timestamp().max(0) / 30;
    Ok([step - 1, step, step + 1].into_iter().find(|s| {
        let expected = totp.generate((*s).max(0) as u64 * 30);
        http_kit::secret::constant_time_eq(expected.as_bytes(), code.as_bytes())
    }))
}

/// The `otpauth://` URL an authenticator app scans.
pub fn otpauth_url(secret_b32: &str, email: &str) -> String {
    let account = url_encode(&format!("Mauntic3:{email}"));
    format!("otpauth://totp/{account}?secret={secret_b32}&issuer=Mauntic3&algorithm=SHA1&digits=6&period=30")
}

/// Ten fresh recovery codes (`xxxxx-xxxxx`, 40 random bits each).
pub fn recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let h = secret::random_hex(5);
            format!("{}-{}", &h[..5], &h[5..])
        })
        .collect()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
