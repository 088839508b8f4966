//! Ed25519 key files in PASERK form.
//!
//! `ID.key` (0600, secret) and `ID.pub` (the `[[trusted_key]]` block, ready to paste):
//!
//! ```text
//! id = "approvals-2026"
//! secret_key = "k4.secret.…"      # ID.key only
//! public_key = "k4.public.…"      # ID.pub only
//! ```
//!
//! The secret file is parsed by hand rather than through a TOML parser so that every
//! copy of the secret lives in a buffer we wipe (`Zeroizing`).
#![forbid(unsafe_code)]

use std::fmt;
use std::path::Path;

use pasetors::keys::{AsymmetricKeyPair, AsymmetricPublicKey, AsymmetricSecretKey, Generate};
use pasetors::paserk::FormatAsPaserk;
use pasetors::version4::V4;
use zeroize::Zeroizing;

/// A public key pinned in the host config (`[[trusted_key]]`): grants and revocation
/// lists are accepted only when signed by one of these, named by its id.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    pub id: String,
    pub key: PublicKey,
}

/// A trusted Ed25519 public key.
#[derive(Clone)]
pub struct PublicKey(pub(crate) AsymmetricPublicKey<V4>);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_paserk())
    }
}

impl PublicKey {
    pub fn from_paserk(text: &str) -> Result<PublicKey, String> {
        let text = text.trim();
        if !text.starts_with("k4.public.") {
            return Err(format!(
                "public_key must be a PASERK \"k4.public.…\" string as printed by `jitsudoctl keygen`, not {:?}",
                text.chars().take(12).collect::<String>()
            ));
        }
        AsymmetricPublicKey::<V4>::try_from(text)
            .map(PublicKey)
            .map_err(|_| {
                "public_key is not a valid k4.public key (bad base64 or length)".to_string()
            })
    }

    pub fn to_paserk(&self) -> String {
        let mut out = String::new();
        // Formatting into a String cannot fail.
        let _ = self.0.fmt(&mut out);
        out
    }
}

/// A signing key. The bytes are wiped when it is dropped (pasetors zeroizes on drop).
pub struct SecretKey {
    pub id: String,
    pub(crate) key: AsymmetricSecretKey<V4>,
    pub public: PublicKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey {{ id: {:?}, .. }}", self.id)
    }
}

impl SecretKey {
    pub fn generate(id: &str) -> Result<SecretKey, String> {
        let pair = AsymmetricKeyPair::<V4>::generate()
            .map_err(|e| format!("cannot generate key: {e:?}"))?;
        Ok(SecretKey {
            id: id.to_string(),
            key: pair.secret,
            public: PublicKey(pair.public),
        })
    }

    /// The secret key file's text. Wiped on drop.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let mut secret = Zeroizing::new(String::new());
        let _ = self.key.fmt(&mut *secret);
        Zeroizing::new(format!(
            "# jitsudo signing key: SECRET. Anyone who reads this file can grant root.\n\
             id = \"{}\"\nsecret_key = \"{}\"\n",
            self.id, *secret
        ))
    }

    /// Parse a key file's text.
    pub fn from_file_text(path: &Path, text: &str) -> Result<SecretKey, String> {
        let mut id = None;
        let mut secret: Option<Zeroizing<String>> = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!(
                    "{}:{}: expected key = \"value\"",
                    path.display(),
                    n + 1
                ));
            };
            let v = v.trim();
            let Some(v) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
                return Err(format!(
                    "{}:{}: value must be a quoted string",
                    path.display(),
                    n + 1
                ));
            };
            match k.trim() {
                "id" => id = Some(v.to_string()),
                "secret_key" => secret = Some(Zeroizing::new(v.to_string())),
                other => {
                    return Err(format!(
                        "{}:{}: unknown key {other:?} in a key file",
                        path.display(),
                        n + 1
                    ))
                }
            }
        }
        let id = id.ok_or_else(|| format!("{}: no id = \"…\" line", path.display()))?;
        if !super::valid_key_id(&id) {
            return Err(format!(
                "{}: id {id:?} is not a valid key id",
                path.display()
            ));
        }
        let secret = secret
            .ok_or_else(|| format!("{}: no secret_key = \"k4.secret.…\" line", path.display()))?;
        if !secret.starts_with("k4.secret.") {
            return Err(format!(
                "{}: secret_key is not a k4.secret PASERK",
                path.display()
            ));
        }
        let key = AsymmetricSecretKey::<V4>::try_from(secret.as_str()).map_err(|_| {
            format!(
                "{}: secret_key is not a valid k4.secret key",
                path.display()
            )
        })?;
        // The Ed25519 secret is seed || public key; derive the public half from it.
        let public_bytes = &key.as_bytes()[32..];
        let public = AsymmetricPublicKey::<V4>::from(public_bytes)
            .map_err(|_| format!("{}: secret_key holds no valid public half", path.display()))?;
        Ok(SecretKey {
            id,
            key,
            public: PublicKey(public),
        })
    }

    /// The `[[trusted_key]]` block for hosts that should accept this key's grants.
    pub fn trusted_key_block(&self) -> String {
        format!(
            "[[trusted_key]]\nid = \"{}\"\npublic_key = \"{}\"\n",
            self.id,
            self.public.to_paserk()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip() {
        let key = SecretKey::generate("test-1").unwrap();
        let text = key.to_file_text();
        let back = SecretKey::from_file_text(Path::new("x.key"), &text).unwrap();
        assert_eq!(back.id, "test-1");
        assert_eq!(back.public.to_paserk(), key.public.to_paserk());
        assert!(key.trusted_key_block().contains(&key.public.to_paserk()));
        let pk = PublicKey::from_paserk(&key.public.to_paserk()).unwrap();
        assert_eq!(pk.to_paserk(), key.public.to_paserk());
    }

    #[test]
    fn key_file_errors_name_line() {
        let e =
            SecretKey::from_file_text(Path::new("x.key"), "id = \"a\"\nfoo = \"b\"\n").unwrap_err();
        assert!(e.contains("x.key:2"), "{e}");
        assert!(SecretKey::from_file_text(Path::new("x.key"), "id = \"a\"\n").is_err());
        assert!(SecretKey::from_file_text(
            Path::new("x.key"),
            "id = \"a\"\nsecret_key = \"k4.public.AAAA\"\n"
        )
        .is_err());
    }

    #[test]
    fn public_key_rejects_other_kinds() {
        assert!(PublicKey::from_paserk("k3.public.AAAA").is_err());
        assert!(PublicKey::from_paserk("k4.public.!!!").is_err());
    }
}
