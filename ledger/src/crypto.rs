//! Hashing, keys and signatures.
//!
//! Every transaction is signed with secp256k1 ECDSA over SHA-256 of its exact body bytes:
//! 64-byte compact signatures in low-S form and 33-byte compressed public keys. This module is
//! the only place that touches `secp256k1` and `sha2`, so the rest of the crate speaks in
//! [`Hash32`], [`PublicKeyBytes`] and [`SignatureBytes`].
//!
//! The state machine only verifies. Key generation and signing are client helpers; they take the
//! random number generator from the caller so that nothing in this crate owns randomness.

use secp256k1::{Message, PublicKey, SecretKey, ecdsa};

/// The random number generator crate `secp256k1` uses, for clients that generate keys.
pub use secp256k1::rand;
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash32 = [u8; 32];

/// Length of a compressed secp256k1 public key.
pub const PUBLIC_KEY_LEN: usize = 33;
/// Length of a compact ECDSA signature.
pub const SIGNATURE_LEN: usize = 64;

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash32 {
    Sha256::digest(bytes).into()
}

/// SHA-256 of the concatenation of `parts`, without copying them together first.
pub fn sha256_parts(parts: &[&[u8]]) -> Hash32 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Why a public key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The bytes are not a 33-byte compressed point on the curve.
    #[error("public key must be a 33-byte compressed secp256k1 point")]
    InvalidPublicKey,
    /// The bytes are not a 64-byte compact signature with scalars in range.
    #[error("signature must be 64 bytes in compact form")]
    MalformedSignature,
    /// The signature is in high-S form; only the low-S form is accepted so that a signature
    /// cannot be altered into a second valid one.
    #[error("signature is not in low-S form")]
    HighS,
    /// The signature does not verify against the key and message.
    #[error("signature does not verify")]
    BadSignature,
}

/// A validated 33-byte compressed public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKeyBytes(PublicKey);

impl PublicKeyBytes {
    /// Parses a compressed public key; uncompressed (65-byte) keys are refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; PUBLIC_KEY_LEN] =
            bytes.try_into().map_err(|_| CryptoError::InvalidPublicKey)?;
        PublicKey::from_byte_array_compressed(array)
            .map(Self)
            .map_err(|_| CryptoError::InvalidPublicKey)
    }

    /// The 33-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0.serialize()
    }
}

/// A memo of parsed public keys, shared by the clones of one value.
///
/// Parsing a compressed key takes a square root in the field, and a replica parses its signer's
/// key for every transaction it checks (about 4% of a loaded node's CPU). The same bytes always
/// parse to the same key, so the memo changes no result: it is not state, and nothing reads it
/// but [`KeyMemo::parse`]. It holds at most [`KeyMemo::CAPACITY`] keys and starts over when
/// full.
#[derive(Debug, Clone, Default)]
pub struct KeyMemo(
    std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<[u8; PUBLIC_KEY_LEN], PublicKeyBytes>>,
    >,
);

impl KeyMemo {
    /// Most keys held.
    pub const CAPACITY: usize = 1 << 16;

    /// [`PublicKeyBytes::parse`], remembered.
    pub fn parse(&self, bytes: &[u8]) -> Result<PublicKeyBytes, CryptoError> {
        let array: [u8; PUBLIC_KEY_LEN] =
            bytes.try_into().map_err(|_| CryptoError::InvalidPublicKey)?;
        // A panic while holding the lock cannot leave a wrong entry: insert is the only write.
        let lock = || self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(key) = lock().get(&array) {
            return Ok(*key);
        }
        let key = PublicKeyBytes::parse(&array)?;
        let mut memo = lock();
        if memo.len() >= Self::CAPACITY {
            memo.clear();
        }
        memo.insert(array, key);
        Ok(key)
    }
}

/// Signatures verified once by this process and expected to be checked once more: a node's API
/// verifies every transaction it accepts, and the ledger verifies it again when its block is
/// applied. Shared by the clones of one value.
///
/// An entry is recorded only by [`VerifiedMemo::verify`] after a successful verification, keyed
/// by the digest and the signature's exact bytes, with the exact key it verified against; a
/// later [`VerifiedMemo::verify_again`] of the same three answers from the memo and forgets the
/// entry. Verification is a pure function of those three, so the memo changes no result. It
/// holds at most [`VerifiedMemo::CAPACITY`] entries (checks that never come, for transactions
/// that were never proposed, are dropped when it is full).
#[derive(Debug, Clone, Default)]
pub struct VerifiedMemo(std::sync::Arc<std::sync::Mutex<Verified>>);

/// The key each (digest, signature) verified against.
type Verified = std::collections::HashMap<(Hash32, [u8; SIGNATURE_LEN]), [u8; PUBLIC_KEY_LEN]>;

impl VerifiedMemo {
    /// Most entries held.
    pub const CAPACITY: usize = 1 << 16;

    fn lock(&self) -> std::sync::MutexGuard<'_, Verified> {
        // Entries are written only after a successful verification; a panic elsewhere while
        // the lock is held cannot leave a wrong one.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`SignatureBytes::verify`], remembering a success for one [`VerifiedMemo::verify_again`].
    pub fn verify(
        &self,
        digest: &Hash32,
        signature: &SignatureBytes,
        key: &PublicKeyBytes,
    ) -> Result<(), CryptoError> {
        signature.verify(digest, key)?;
        let mut memo = self.lock();
        if memo.len() >= Self::CAPACITY {
            memo.clear();
        }
        memo.insert((*digest, signature.to_bytes()), key.to_bytes());
        Ok(())
    }

    /// [`SignatureBytes::verify`], answered from the memo when [`VerifiedMemo::verify`] accepted
    /// this digest, signature and key (the entry is then forgotten).
    pub fn verify_again(
        &self,
        digest: &Hash32,
        signature: &SignatureBytes,
        key: &PublicKeyBytes,
    ) -> Result<(), CryptoError> {
        let remembered = self.lock().remove(&(*digest, signature.to_bytes()));
        if remembered == Some(key.to_bytes()) {
            return Ok(());
        }
        signature.verify(digest, key)
    }
}

/// A validated compact low-S signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureBytes(ecdsa::Signature);

impl SignatureBytes {
    /// Parses a 64-byte compact signature and refuses the high-S form.
    pub fn parse(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != SIGNATURE_LEN {
            return Err(CryptoError::MalformedSignature);
        }
        let signature =
            ecdsa::Signature::from_compact(bytes).map_err(|_| CryptoError::MalformedSignature)?;
        let mut normalized = signature;
        normalized.normalize_s();
        if normalized != signature {
            return Err(CryptoError::HighS);
        }
        Ok(Self(signature))
    }

    /// The 64-byte compact encoding.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0.serialize_compact()
    }

    /// Verifies this signature over `digest` (already SHA-256 of the signed bytes).
    pub fn verify(&self, digest: &Hash32, key: &PublicKeyBytes) -> Result<(), CryptoError> {
        ecdsa::verify(&self.0, Message::from_digest(*digest), &key.0)
            .map_err(|_| CryptoError::BadSignature)
    }
}

/// A party's secret key: a client-side helper, never used by the state machine.
#[derive(Clone)]
pub struct SigningKey(SecretKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secret material, not even in a panic message.
        f.debug_struct("SigningKey")
            .field("public_key", &hex::encode(self.public_key().to_bytes()))
            .finish()
    }
}

impl SigningKey {
    /// A new random key from the caller's random number generator.
    pub fn generate<R: secp256k1::rand::Rng + ?Sized>(rng: &mut R) -> Self {
        Self(SecretKey::new(rng))
    }

    /// A key from its 32 secret bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::InvalidPublicKey)?;
        SecretKey::from_secret_bytes(array).map(Self).map_err(|_| CryptoError::InvalidPublicKey)
    }

    /// A key derived deterministically from a seed string: for tests, simulations and examples
    /// only, never for real parties (anyone who knows the seed knows the key).
    pub fn from_seed(seed: &str) -> Self {
        let mut counter = 0u32;
        loop {
            let candidate = sha256_parts(&[seed.as_bytes(), &counter.to_be_bytes()]);
            if let Ok(key) = SecretKey::from_secret_bytes(candidate) {
                return Self(key);
            }
            // Only a digest of zero or above the curve order fails; try the next counter.
            counter += 1;
        }
    }

    /// The 32 secret bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_secret_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKeyBytes {
        PublicKeyBytes(PublicKey::from_secret_key(&self.0))
    }

    /// Signs SHA-256 of `message`; the result is always low-S.
    pub fn sign(&self, message: &[u8]) -> SignatureBytes {
        self.sign_digest(&sha256(message))
    }

    /// Signs a digest that is already SHA-256 of the signed bytes.
    pub fn sign_digest(&self, digest: &Hash32) -> SignatureBytes {
        SignatureBytes(ecdsa::sign(Message::from_digest(*digest), &self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the memo answers what parse answers, for good and bad keys, across clones.
    #[test]
    fn key_memo_parses_like_parse() {
        let memo = KeyMemo::default();
        let key = SigningKey::from_seed("memo").public_key();
        assert_eq!(memo.parse(&key.to_bytes()), Ok(key));
        assert_eq!(memo.clone().parse(&key.to_bytes()), Ok(key));
        assert_eq!(memo.parse(&key.to_bytes()[..32]), Err(CryptoError::InvalidPublicKey));
        assert_eq!(memo.parse(&[0u8; 33]), Err(CryptoError::InvalidPublicKey));
    }

    // Goal: the verified memo answers exactly what verification answers: a remembered success
    // counts only for the same digest, signature bytes and key, once; failures are never
    // remembered.
    #[test]
    fn verified_memo_never_changes_an_answer() {
        let memo = VerifiedMemo::default();
        let signer = SigningKey::from_seed("memo/signer");
        let other = SigningKey::from_seed("memo/other");
        let digest = sha256(b"body");
        let signature = signer.sign(b"body");
        let forged = other.sign(b"body");
        assert_eq!(
            memo.verify(&digest, &forged, &signer.public_key()),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            memo.verify_again(&digest, &forged, &signer.public_key()),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(memo.verify(&digest, &signature, &signer.public_key()), Ok(()));
        // Another key (a rotation in between) is checked, not taken from the memo.
        assert_eq!(
            memo.clone().verify_again(&digest, &signature, &other.public_key()),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(memo.verify(&digest, &signature, &signer.public_key()), Ok(()));
        assert_eq!(
            memo.verify_again(&digest, &forged, &signer.public_key()),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(memo.verify_again(&digest, &signature, &signer.public_key()), Ok(()));
        assert_eq!(memo.verify_again(&digest, &signature, &signer.public_key()), Ok(()));
        assert!(memo.lock().is_empty());
    }

    // Goal: a signature made by the helpers verifies, and fails for another key or message.
    #[test]
    fn sign_then_verify() {
        let key = SigningKey::from_seed("alice");
        let other = SigningKey::from_seed("bob");
        let signature = key.sign(b"hello");
        let parsed = SignatureBytes::parse(&signature.to_bytes()).unwrap();
        assert_eq!(parsed.verify(&sha256(b"hello"), &key.public_key()), Ok(()));
        assert_eq!(
            parsed.verify(&sha256(b"hello"), &other.public_key()),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            parsed.verify(&sha256(b"hellO"), &key.public_key()),
            Err(CryptoError::BadSignature)
        );
    }

    // Goal: the high-S twin of a valid signature is refused at parse time, so a third party
    // cannot mint a second valid encoding of someone's signature.
    #[test]
    fn high_s_is_refused() {
        let key = SigningKey::from_seed("alice");
        let bytes = key.sign(b"m").to_bytes();
        // n - s, with n the curve order, is the high-S twin.
        let order: [u8; 32] = [
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFE, 0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C,
            0xD0, 0x36, 0x41, 0x41,
        ];
        let mut high = bytes;
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let diff = i16::from(order[i]) - i16::from(bytes[32 + i]) - borrow;
            high[32 + i] = (diff.rem_euclid(256)) as u8;
            borrow = i16::from(diff < 0);
        }
        assert_eq!(SignatureBytes::parse(&high), Err(CryptoError::HighS));
        assert!(SignatureBytes::parse(&bytes).is_ok());
    }

    // Goal: only 33-byte compressed points are keys.
    #[test]
    fn public_key_parsing() {
        let key = SigningKey::from_seed("alice").public_key().to_bytes();
        assert!(PublicKeyBytes::parse(&key).is_ok());
        assert_eq!(PublicKeyBytes::parse(&key[..32]), Err(CryptoError::InvalidPublicKey));
        // A 65-byte uncompressed key is refused even though it names a valid point.
        assert_eq!(PublicKeyBytes::parse(&[4u8; 65]), Err(CryptoError::InvalidPublicKey));
        assert_eq!(PublicKeyBytes::parse(&[0u8; 33]), Err(CryptoError::InvalidPublicKey));
    }
}
