//! corosync's `crypto_cipher` / `crypto_hash` names and the AEAD they select.

use std::fmt;
use std::str::FromStr;

/// corosync 3's `totem.crypto_cipher`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoCipher {
    /// `none`
    None,
    /// `aes256`
    Aes256,
    /// `aes192`
    Aes192,
    /// `aes128`
    Aes128,
}

/// corosync 3's `totem.crypto_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoHash {
    /// `none`
    None,
    /// `md5`
    Md5,
    /// `sha1`
    Sha1,
    /// `sha256`
    Sha256,
    /// `sha384`
    Sha384,
    /// `sha512`
    Sha512,
}

/// The authenticated cipher that protects every packet when crypto is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aead {
    /// AES-256 in Galois/counter mode: fastest where the CPU has AES and carry-less multiply
    /// instructions (x86-64 AES-NI + PCLMULQDQ, ARMv8 crypto extensions).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 8439): constant time and fast in plain software.
    ChaCha20Poly1305,
}

/// A `crypto_cipher` / `crypto_hash` pair that corosync itself rejects. Nothing is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// corosync's rule: "crypto_cipher requires crypto_hash with value other than none".
    #[error("crypto_cipher {0} requires crypto_hash with value other than none")]
    CipherRequiresHash(CryptoCipher),
}

/// An unknown `crypto_cipher` or `crypto_hash` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {option} {value:?} (expected one of {expected})")]
pub struct UnknownName {
    /// `crypto_cipher` or `crypto_hash`.
    pub option: &'static str,
    /// The value given.
    pub value: String,
    /// The accepted values.
    pub expected: &'static str,
}

impl Aead {
    /// The AEAD that a corosync `crypto_cipher` / `crypto_hash` pair selects; `None` = crypto off.
    ///
    /// | `crypto_cipher` | `crypto_hash` | result |
    /// |---|---|---|
    /// | `none` | `none` | off: packets travel in the clear, unauthenticated |
    /// | `aes256`, `aes192`, `aes128` | any but `none` | [`Aead::Aes256Gcm`] |
    /// | `none` | any but `none` | [`Aead::ChaCha20Poly1305`] |
    /// | `aes*` | `none` | error, as in corosync |
    ///
    /// Why this mapping: corosync (through knet) encrypts with the cipher and then signs with
    /// an HMAC of the named hash. We replace both by one AEAD that does both jobs, so:
    /// - the hash name only says "authenticate"; md5 and sha1 are accepted for compatibility
    ///   and weaken nothing, since no HMAC is computed with them;
    /// - every `aes*` maps to AES-256: the key comes from HKDF over a key of at least 128
    ///   bytes, so a shorter AES key would save a little time and buy nothing;
    /// - `none` + a hash, authentication only in corosync, is encrypted as well here (with
    ///   ChaCha20-Poly1305, the AEAD that does not need AES instructions): an AEAD costs no more
    ///   than a MAC, and one mode is one code path to test.
    pub fn select(cipher: CryptoCipher, hash: CryptoHash) -> Result<Option<Aead>, SettingsError> {
        match (cipher, hash) {
            (CryptoCipher::None, CryptoHash::None) => Ok(None),
            (cipher, CryptoHash::None) => Err(SettingsError::CipherRequiresHash(cipher)),
            (CryptoCipher::None, _) => Ok(Some(Aead::ChaCha20Poly1305)),
            (CryptoCipher::Aes256 | CryptoCipher::Aes192 | CryptoCipher::Aes128, _) => {
                Ok(Some(Aead::Aes256Gcm))
            }
        }
    }

    /// The name used in logs and in the key derivation label.
    pub fn name(self) -> &'static str {
        match self {
            Aead::Aes256Gcm => "aes-256-gcm",
            Aead::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }
}

impl fmt::Display for Aead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl CryptoCipher {
    /// The corosync.conf spelling.
    pub fn name(self) -> &'static str {
        match self {
            CryptoCipher::None => "none",
            CryptoCipher::Aes256 => "aes256",
            CryptoCipher::Aes192 => "aes192",
            CryptoCipher::Aes128 => "aes128",
        }
    }
}

impl fmt::Display for CryptoCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CryptoCipher {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<CryptoCipher, UnknownName> {
        Ok(match s {
            "none" => CryptoCipher::None,
            "aes256" => CryptoCipher::Aes256,
            "aes192" => CryptoCipher::Aes192,
            "aes128" => CryptoCipher::Aes128,
            _ => {
                return Err(UnknownName {
                    option: "crypto_cipher",
                    value: s.to_owned(),
                    expected: "none, aes256, aes192, aes128",
                })
            }
        })
    }
}

impl CryptoHash {
    /// The corosync.conf spelling.
    pub fn name(self) -> &'static str {
        match self {
            CryptoHash::None => "none",
            CryptoHash::Md5 => "md5",
            CryptoHash::Sha1 => "sha1",
            CryptoHash::Sha256 => "sha256",
            CryptoHash::Sha384 => "sha384",
            CryptoHash::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for CryptoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CryptoHash {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<CryptoHash, UnknownName> {
        Ok(match s {
            "none" => CryptoHash::None,
            "md5" => CryptoHash::Md5,
            "sha1" => CryptoHash::Sha1,
            "sha256" => CryptoHash::Sha256,
            "sha384" => CryptoHash::Sha384,
            "sha512" => CryptoHash::Sha512,
            _ => {
                return Err(UnknownName {
                    option: "crypto_hash",
                    value: s.to_owned(),
                    expected: "none, md5, sha1, sha256, sha384, sha512",
                })
            }
        })
    }
}
