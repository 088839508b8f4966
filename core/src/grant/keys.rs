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

use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use super::paseto::{b64url_decode, b64url_encode};

const PUBLIC_PREFIX: &str = "k4.public.";
const SECRET_PREFIX: &str = "k4.secret.";

/// A public key pinned in the host config (`[[trusted_key]]`): grants and revocation
/// lists are accepted only when signed by one of these, named by its id.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    pub id: String,
    pub key: PublicKey,
}

/// A trusted Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(pub(crate) [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_paserk())
    }
}

impl PublicKey {
    pub fn from_paserk(text: &str) -> Result<PublicKey, String> {
        let text = text.trim();
        let Some(encoded) = text.strip_prefix(PUBLIC_PREFIX) else {
            return Err(format!(
                "public_key must be a PASERK \"k4.public.…\" string as printed by `jitsudoctl keygen`, not {:?}",
                text.chars().take(12).collect::<String>()
            ));
        };
        let bytes = b64url_decode(encoded)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        bytes.map(PublicKey).ok_or_else(|| {
            "public_key is not a valid k4.public key (bad base64 or length)".to_string()
        })
    }

    pub fn to_paserk(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", b64url_encode(&self.0))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A signing key. The bytes are wiped when it is dropped (dalek's `SigningKey` zeroizes
/// on drop).
pub struct SecretKey {
    pub id: String,
    pub(crate) key: SigningKey,
    pub public: PublicKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey {{ id: {:?}, .. }}", self.id)
    }
}

impl SecretKey {
    pub fn generate(id: &str) -> Result<SecretKey, String> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(&mut *seed).map_err(|e| format!("cannot generate key: {e}"))?;
        Ok(SecretKey::from_seed(id, &seed))
    }

    fn from_seed(id: &str, seed: &[u8; 32]) -> SecretKey {
        let key = SigningKey::from_bytes(seed);
        let public = PublicKey(key.verifying_key().to_bytes());
        SecretKey {
            id: id.to_string(),
            key,
            public,
        }
    }

    /// The secret key file's text. Wiped on drop.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        // PASERK k4.secret: the Ed25519 secret as seed ‖ public key.
        let mut pair = Zeroizing::new([0u8; 64]);
        pair[..32].copy_from_slice(self.key.as_bytes());
        pair[32..].copy_from_slice(&self.public.0);
        let secret = Zeroizing::new(format!("{SECRET_PREFIX}{}", b64url_encode(&*pair)));
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
        let Some(encoded) = secret.strip_prefix(SECRET_PREFIX) else {
            return Err(format!(
                "{}: secret_key is not a k4.secret PASERK",
                path.display()
            ));
        };
        let invalid = || {
            format!(
                "{}: secret_key is not a valid k4.secret key",
                path.display()
            )
        };
        let pair = Zeroizing::new(b64url_decode(encoded).map_err(|_| invalid())?);
        if pair.len() != 64 {
            return Err(invalid());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&pair[..32]);
        let key = SecretKey::from_seed(&id, &seed);
        // The secret is seed ‖ public key: a public half that is not the seed's own is a
        // damaged or doctored file, and grants signed with it would verify nowhere.
        if key.public.0[..] != pair[32..] {
            return Err(format!(
                "{}: secret_key's public half does not belong to its secret half",
                path.display()
            ));
        }
        Ok(key)
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
    fn key_strings_match_pasetors() {
        use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey};
        use pasetors::paserk::FormatAsPaserk;
        use pasetors::version4::V4;
        let key = SecretKey::generate("k").unwrap();
        let text = key.to_file_text();
        let secret = text
            .lines()
            .find_map(|l| l.strip_prefix("secret_key = \""))
            .unwrap();
        let secret = secret.trim_end_matches('"');
        let theirs = AsymmetricSecretKey::<V4>::try_from(secret).unwrap();
        assert_eq!(&theirs.as_bytes()[32..], key.public.as_bytes());
        let public = AsymmetricPublicKey::<V4>::try_from(key.public.to_paserk().as_str()).unwrap();
        let mut again = String::new();
        public.fmt(&mut again).unwrap();
        assert_eq!(again, key.public.to_paserk());
    }

    #[test]
    fn a_secret_with_a_foreign_public_half_is_refused() {
        let a = SecretKey::generate("a").unwrap();
        let b = SecretKey::generate("b").unwrap();
        let mut pair = a.key.as_bytes().to_vec();
        pair.extend_from_slice(b.public.as_bytes());
        let text = format!(
            "id = \"a\"\nsecret_key = \"k4.secret.{}\"\n",
            b64url_encode(&pair)
        );
        let e = SecretKey::from_file_text(Path::new("x.key"), &text).unwrap_err();
        assert!(e.contains("does not belong"), "{e}");
    }

    #[test]
    fn public_key_rejects_other_kinds() {
        assert!(PublicKey::from_paserk("k3.public.AAAA").is_err());
        assert!(PublicKey::from_paserk("k4.public.!!!").is_err());
    }
}
