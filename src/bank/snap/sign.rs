//! SNAP BI signatures.
//!
//! - **Access token** (`POST …/access-token/b2b`): `X-SIGNATURE` = base64(SHA256withRSA(private
//!   key, `client_key|timestamp`)), RSASSA-PKCS1-v1_5; the bank verifies it with the partner's
//!   registered public key.
//! - **Every transactional call**: `X-SIGNATURE` = base64(HMAC-SHA512(client secret,
//!   `METHOD:path:access_token:lowercase(hex(sha256(minify(body)))):timestamp`)).
//!
//! `tests/it/snap.rs` and `scripts/snap_crosscheck.sh` check these against a bank's own SDK.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac as _};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest as _, Sha256, Sha512};

/// A partner's RSA private key (PEM: PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE
/// KEY`), for access-token signatures.
#[derive(Clone)]
pub struct TokenSigner(SigningKey<Sha256>);

impl TokenSigner {
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|e| {
                anyhow::anyhow!("not an RSA private key in PEM (PKCS#8 or PKCS#1): {e}")
            })?;
        Ok(Self(SigningKey::new(key)))
    }

    /// `X-SIGNATURE` of the access-token request.
    pub fn sign(&self, client_key: &str, timestamp: &str) -> String {
        let sig = self.0.sign(token_string(client_key, timestamp).as_bytes());
        B64.encode(sig.to_bytes())
    }
}

/// The partner's public key as the bank registers it (PEM `BEGIN PUBLIC KEY` or `BEGIN RSA
/// PUBLIC KEY`).
#[derive(Clone)]
pub struct TokenVerifier(VerifyingKey<Sha256>);

impl TokenVerifier {
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        use rsa::pkcs1::DecodeRsaPublicKey as _;
        let key = RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|e| anyhow::anyhow!("not an RSA public key in PEM: {e}"))?;
        Ok(Self(VerifyingKey::new(key)))
    }

    pub fn verify(&self, client_key: &str, timestamp: &str, signature: &str) -> bool {
        let Ok(bytes) = B64.decode(signature.trim()) else {
            return false;
        };
        let Ok(sig) = Signature::try_from(bytes.as_slice()) else {
            return false;
        };
        self.0
            .verify(token_string(client_key, timestamp).as_bytes(), &sig)
            .is_ok()
    }
}

fn token_string(client_key: &str, timestamp: &str) -> String {
    format!("{client_key}|{timestamp}")
}

/// The body with every whitespace outside JSON strings removed, byte for byte otherwise (key
/// order, escapes and number spelling kept), as SNAP's `Minify(RequestBody)`.
pub fn minify(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.push(b);
        }
    }
    out
}

/// The string a transactional signature covers.
pub fn string_to_sign(
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
    timestamp: &str,
) -> String {
    let digest = hex::encode(Sha256::digest(minify(body)));
    format!(
        "{}:{path}:{token}:{digest}:{timestamp}",
        method.to_uppercase()
    )
}

/// `X-SIGNATURE` of a transactional call: base64(HMAC-SHA512(secret, string to sign)).
pub fn transactional(
    secret: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
    timestamp: &str,
) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(string_to_sign(method, path, token, body, timestamp).as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// Checks a transactional signature in constant time.
pub fn verify_transactional(
    secret: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
    timestamp: &str,
    signature: &str,
) -> bool {
    let Ok(given) = B64.decode(signature.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(string_to_sign(method, path, token, body, timestamp).as_bytes());
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minify_keeps_strings_and_order() {
        let body = br#"{ "b" : "x y\" z",
            "a": [1, 2.50] }"#;
        assert_eq!(minify(body), br#"{"b":"x y\" z","a":[1,2.50]}"#.to_vec());
    }

    #[test]
    fn transactional_signature_covers_every_part() {
        let body =
            br#"{"partnerReferenceNo": "1", "amount": {"value": "600000.00", "currency": "IDR"}}"#;
        let ts = "2026-11-30T10:00:00+07:00";
        let sig = transactional(
            "secret",
            "POST",
            "/snap/v1.0/transfer-intrabank",
            "tok",
            body,
            ts,
        );
        assert!(verify_transactional(
            "secret",
            "POST",
            "/snap/v1.0/transfer-intrabank",
            "tok",
            body,
            ts,
            &sig
        ));
        // Whitespace does not matter; content does.
        let spaced =
            br#"{"partnerReferenceNo":"1","amount":{"value":"600000.00","currency":"IDR"}}"#;
        assert!(verify_transactional(
            "secret",
            "POST",
            "/snap/v1.0/transfer-intrabank",
            "tok",
            spaced,
            ts,
            &sig
        ));
        let other =
            br#"{"partnerReferenceNo":"1","amount":{"value":"900000.00","currency":"IDR"}}"#;
        for (secret, path, token, body, ts) in [
            (
                "other",
                "/snap/v1.0/transfer-intrabank",
                "tok",
                &body[..],
                ts,
            ),
            (
                "secret",
                "/snap/v1.0/transfer-interbank",
                "tok",
                &body[..],
                ts,
            ),
            (
                "secret",
                "/snap/v1.0/transfer-intrabank",
                "tok2",
                &body[..],
                ts,
            ),
            (
                "secret",
                "/snap/v1.0/transfer-intrabank",
                "tok",
                &other[..],
                ts,
            ),
            (
                "secret",
                "/snap/v1.0/transfer-intrabank",
                "tok",
                &body[..],
                "2026-11-30T10:00:01+07:00",
            ),
        ] {
            assert!(!verify_transactional(
                secret, "POST", path, token, body, ts, &sig
            ));
        }
        assert!(!verify_transactional(
            "secret",
            "POST",
            "/p",
            "tok",
            body,
            ts,
            "not base64!"
        ));
    }
}
