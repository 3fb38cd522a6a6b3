//! Random secrets (tokens, keys, session ids) and their digests. Secrets carry ≥ 128 random
//! bits, so SHA-256 is enough to store them (no stretching: nothing to brute-force).

use domain::identity::Digest;
use rand::RngCore;
use sha2::Sha256;

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The hex SHA-256 of `secret`, as events and reservations store it.
pub fn digest(secret: &str) -> Digest {
    use sha2::Digest as _;
    Digest(hex::encode(Sha256::digest(secret.as_bytes())))
}

/// The raw SHA-256 of `secret` (session ids are stored as bytes).
pub fn digest_bytes(secret: &str) -> Vec<u8> {
    use sha2::Digest as _;
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
