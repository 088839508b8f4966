//! PASETO v4.public (Ed25519 over the PAE encoding) and the PASERK key strings, on
//! ed25519-dalek: splitting a token, signing and verifying (`verify_strict`).
//!
//! Written here rather than taken from a PASETO crate so that the setuid binary links one
//! Ed25519 implementation, not two, and no more than the few functions it runs: a
//! token is a header, base64url of (message ‖ signature) and an optional base64url
//! footer. Tested against the PASETO test vectors and, both ways, against pasetors.
#![forbid(unsafe_code)]

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

const HEADER: &str = "v4.public.";
const SIGNATURE_BYTES: usize = 64;

/// PASETO's pre-authentication encoding: the count and each piece, little-endian 64-bit
/// lengths with the top bit clear.
pub fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let le64 = |n: usize| ((n as u64) & (u64::MAX >> 1)).to_le_bytes();
    let mut out = Vec::with_capacity(8 + pieces.iter().map(|p| 8 + p.len()).sum::<usize>());
    out.extend_from_slice(&le64(pieces.len()));
    for piece in pieces {
        out.extend_from_slice(&le64(piece.len()));
        out.extend_from_slice(piece);
    }
    out
}

/// A v4.public token split into its parts; nothing about it is verified yet.
#[derive(Debug, PartialEq, Eq)]
pub struct Untrusted {
    pub message: Vec<u8>,
    pub signature: [u8; SIGNATURE_BYTES],
    pub footer: Vec<u8>,
}

impl Untrusted {
    /// Split `v4.public.<base64url(message ‖ signature)>[.<base64url(footer)>]`. The
    /// base64url must be canonical (no padding, unused bits zero), so one token has
    /// exactly one spelling.
    pub fn parse(token: &str) -> Result<Untrusted, String> {
        let body = token.strip_prefix(HEADER).ok_or("not a v4.public token")?;
        let (signed, footer) = match body.split_once('.') {
            Some((signed, footer)) => {
                if footer.is_empty() {
                    return Err("empty footer part".into());
                }
                (signed, b64url_decode(footer)?)
            }
            None => (body, Vec::new()),
        };
        let mut message = b64url_decode(signed)?;
        if message.len() < SIGNATURE_BYTES {
            return Err("too short to hold a signature".into());
        }
        let cut = message.len() - SIGNATURE_BYTES;
        let mut signature = [0u8; SIGNATURE_BYTES];
        signature.copy_from_slice(&message[cut..]);
        message.truncate(cut);
        Ok(Untrusted {
            message,
            signature,
            footer,
        })
    }

    /// Does the signature sign (message, footer, implicit assertion) under `public_key`?
    pub fn verifies(&self, public_key: &PublicKeyBytes, implicit: &[u8]) -> bool {
        verify(
            public_key,
            &self.message,
            &self.signature,
            &self.footer,
            implicit,
        )
    }
}

/// An Ed25519 public key's 32 bytes.
pub type PublicKeyBytes = [u8; 32];

/// Does `signature` sign (message, footer, implicit assertion) under `public_key`?
pub fn verify(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
    footer: &[u8],
    implicit: &[u8],
) -> bool {
    let (Ok(pk), Ok(sig)) = (
        <[u8; 32]>::try_from(public_key),
        <[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    let signed = pae(&[HEADER.as_bytes(), message, footer, implicit]);
    key.verify_strict(&signed, &Signature::from_bytes(&sig))
        .is_ok()
}

/// Sign (message, footer, implicit assertion): the token. An empty footer is left out.
pub fn sign(key: &SigningKey, message: &[u8], footer: &[u8], implicit: &[u8]) -> String {
    let signed = pae(&[HEADER.as_bytes(), message, footer, implicit]);
    let signature = key.sign(&signed).to_bytes();
    let mut body = Vec::with_capacity(message.len() + SIGNATURE_BYTES);
    body.extend_from_slice(message);
    body.extend_from_slice(&signature);
    let mut token = format!("{HEADER}{}", b64url_encode(&body));
    if !footer.is_empty() {
        token.push('.');
        token.push_str(&b64url_encode(footer));
    }
    token
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 section 5), as PASETO and PASERK use it.
pub fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(B64URL[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The inverse of [`b64url_encode`]. Padding, other alphabets, an impossible length and
/// non-zero unused bits are refused.
pub fn b64url_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return Err("bad base64url length".into());
    }
    let value = |c: u8| -> Result<u32, String> {
        match c {
            b'A'..=b'Z' => Ok(u32::from(c - b'A')),
            b'a'..=b'z' => Ok(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Ok(u32::from(c - b'0') + 52),
            b'-' => Ok(62),
            b'_' => Ok(63),
            _ => Err(format!("invalid base64url character {:?}", c as char)),
        }
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let whole = chunk.len() * 6 / 8;
        // The bits past the last whole byte must be zero: a second spelling otherwise.
        if n & (0x00ff_ffff >> (8 * whole)) != 0 {
            return Err("non-canonical base64url (unused bits set)".into());
        }
        for i in 0..whole {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn check(token: &str, pk: &str, implicit: &[u8]) -> bool {
        let t = Untrusted::parse(token).unwrap();
        verify(&hex(pk), &t.message, &t.signature, &t.footer, implicit)
    }

    const SK: &str = "b4cbfb43df4ce210727d953e4a713307fa19bb7d9f85041438d9e11b942a3774";

    fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&hex(SK).try_into().unwrap())
    }

    #[test]
    fn signing_reproduces_the_test_vectors() {
        let key = signing_key();
        assert_eq!(hex_of(key.verifying_key().as_bytes()), PK);
        let message = br#"{"data":"this is a signed message","exp":"2022-01-01T00:00:00+00:00"}"#;
        assert_eq!(sign(&key, message, b"", b""), VECTOR_4_S_1);
        let footer = br#"{"kid":"zVhMiPBP9fRf2snEcT7gFTioeA9COcNy9DfgL1W60haN"}"#;
        assert_eq!(
            sign(&key, message, footer, br#"{"test-vector":"4-S-3"}"#),
            VECTOR_4_S_3
        );
    }

    #[test]
    fn pasetors_and_we_accept_each_others_tokens() {
        use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey};
        use pasetors::token::UntrustedToken;
        use pasetors::version4::{PublicToken, V4};
        use pasetors::Public;
        let key = signing_key();
        let mut pair = hex(SK);
        pair.extend_from_slice(key.verifying_key().as_bytes());
        let their_secret = AsymmetricSecretKey::<V4>::from(&pair).unwrap();
        let their_public = AsymmetricPublicKey::<V4>::from(key.verifying_key().as_bytes()).unwrap();
        for footer in [&b""[..], br#"{"key":"k1"}"#] {
            // pasetors has no footer where we have an empty one.
            let their_footer = (!footer.is_empty()).then_some(footer);
            let ours = sign(&key, b"{\"a\":1}", footer, b"assertion");
            let parsed = UntrustedToken::<Public, V4>::try_from(ours.as_str()).unwrap();
            PublicToken::verify(&their_public, &parsed, their_footer, Some(b"assertion")).unwrap();
            let theirs = PublicToken::sign(
                &their_secret,
                b"{\"a\":1}",
                their_footer,
                Some(b"assertion"),
            )
            .unwrap();
            assert_eq!(theirs, ours, "Ed25519 is deterministic: the same token");
            let t = Untrusted::parse(&theirs).unwrap();
            assert!(t.verifies(key.verifying_key().as_bytes(), b"assertion"));
            assert!(!t.verifies(key.verifying_key().as_bytes(), b"other"));
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = sign(&signing_key(), b"m", b"f", b"");
        assert!(Untrusted::parse(&good).is_ok());
        for bad in [
            "v4.local.AAAA",
            "v4.public.",
            "v4.public.AAAA",
            &format!("{good}."),
            &format!("{good}="),
            &good.replacen("v4.public.", "v4.public.=", 1),
            &good.replace('.', ".!"),
        ] {
            assert!(Untrusted::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base64url_is_canonical() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0xff; 7],
        ] {
            let text = b64url_encode(data);
            assert!(!text.contains('='));
            assert_eq!(b64url_decode(&text).unwrap(), data);
        }
        assert_eq!(b64url_encode(b"\xfb\xff"), "-_8");
        // "Zh" and "Zg" both start with the byte 'f'; only "Zg" leaves the spare bits 0.
        assert_eq!(b64url_decode("Zg").unwrap(), b"f");
        assert!(b64url_decode("Zh").is_err());
        assert!(b64url_decode("Zg==").is_err());
        assert!(b64url_decode("Z").is_err());
        assert!(b64url_decode("Zg+/").is_err());
    }

    proptest::proptest! {
        #[test]
        fn base64url_round_trips(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            proptest::prop_assert_eq!(b64url_decode(&b64url_encode(&data)).unwrap(), data);
        }

        /// Canonical: whatever decodes is exactly what encoding its bytes gives, so one
        /// token has one spelling.
        #[test]
        fn what_decodes_is_canonical(text in "[A-Za-z0-9_=+/-]{0,24}") {
            if let Ok(bytes) = b64url_decode(&text) {
                proptest::prop_assert_eq!(b64url_encode(&bytes), text);
            }
        }
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    const PK: &str = "1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2";
    const VECTOR_4_S_1: &str = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9bg_XBBzds8lTZShVlwwKSgeKpLT3yukTw6JUz3W4h_ExsQV-P0V54zemZDcAxFaSeef1QlXEFtkqxT1ciiQEDA";
    const VECTOR_4_S_3: &str = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9NPWciuD3d0o5eXJXG5pJy-DiVEoyPYWs1YSTwWHNJq6DZD3je5gf-0M4JR9ipdUSJbIovzmBECeaWmaqcaP0DQ.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9";

    #[test]
    fn paseto_test_vector_4_s_1() {
        let token = VECTOR_4_S_1;
        assert!(check(token, PK, b""));
        assert!(!check(token, PK, b"x"));
    }

    #[test]
    fn paseto_test_vector_4_s_3_footer_and_implicit_assertion() {
        let token = VECTOR_4_S_3;
        assert!(check(token, PK, br#"{"test-vector":"4-S-3"}"#));
        assert!(!check(token, PK, b""));
        let other = "0000000000000000000000000000000000000000000000000000000000000001";
        assert!(!check(token, other, br#"{"test-vector":"4-S-3"}"#));
    }

    #[test]
    fn pae_matches_the_spec_examples() {
        assert_eq!(pae(&[]), b"\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(
            pae(&[b""]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(
            pae(&[b"test"]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"
        );
    }
}
