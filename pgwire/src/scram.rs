//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as a PostgreSQL server runs it: no channel binding
//! offered, the user name inside the SASL exchange ignored (the start-up packet names the user).
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub const MECHANISM: &str = "SCRAM-SHA-256";
pub const ITERATIONS: u32 = 4096;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// What the server keeps of a password: the salt and the two derived keys, never the password.
#[derive(Clone)]
pub struct ScramSecret {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramSecret {
    pub fn new(password: &str, salt: &[u8], iterations: u32) -> ScramSecret {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        ScramSecret {
            salt: salt.to_vec(),
            iterations,
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }
}

/// The server side of one exchange.
pub struct ScramServer {
    client_first_bare: String,
    server_first: String,
    nonce: String,
    gs2_header: String,
}

/// Why an exchange failed: `Protocol` for malformed messages, `Auth` for a wrong password.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramError {
    Protocol(&'static str),
    Auth,
}

fn attr<'a>(part: Option<&'a str>, key: char) -> Result<&'a str, ScramError> {
    let p = part.ok_or(ScramError::Protocol("SCRAM message is missing an attribute"))?;
    let mut ch = p.chars();
    if ch.next() != Some(key) || ch.next() != Some('=') {
        return Err(ScramError::Protocol("unexpected SCRAM attribute"));
    }
    Ok(&p[2..])
}

impl ScramServer {
    /// Handles client-first-message; returns the state and server-first-message.
    /// `server_nonce` must be printable ASCII without commas.
    pub fn start(secret: &ScramSecret, client_first: &[u8], server_nonce: &str) -> Result<(ScramServer, String), ScramError> {
        let msg = core::str::from_utf8(client_first).map_err(|_| ScramError::Protocol("SCRAM message is not UTF-8"))?;
        let mut parts = msg.splitn(3, ',');
        let cb = parts.next().unwrap_or("");
        match cb {
            "n" | "y" => {}
            _ if cb.starts_with("p=") => return Err(ScramError::Protocol("channel binding is not supported")),
            _ => return Err(ScramError::Protocol("malformed SCRAM message (bad GS2 header)")),
        }
        let authzid = parts.next().ok_or(ScramError::Protocol("malformed SCRAM message (bad GS2 header)"))?;
        if !authzid.is_empty() {
            return Err(ScramError::Protocol("authorization identities are not supported"));
        }
        let bare = parts.next().ok_or(ScramError::Protocol("malformed SCRAM message (no client-first-bare)"))?;
        let mut b = bare.split(',');
        attr(b.next(), 'n')?;
        let cnonce = attr(b.next(), 'r')?;
        if cnonce.is_empty() || !cnonce.bytes().all(|c| (0x21..=0x7e).contains(&c) && c != b',') {
            return Err(ScramError::Protocol("invalid SCRAM client nonce"));
        }
        let nonce = format!("{cnonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&secret.salt), secret.iterations);
        let st = ScramServer {
            client_first_bare: String::from(bare),
            server_first: server_first.clone(),
            nonce,
            gs2_header: format!("{cb},,"),
        };
        Ok((st, server_first))
    }

    /// Handles client-final-message; returns server-final-message when the proof is right.
    pub fn finish(self, secret: &ScramSecret, client_final: &[u8]) -> Result<String, ScramError> {
        let msg = core::str::from_utf8(client_final).map_err(|_| ScramError::Protocol("SCRAM message is not UTF-8"))?;
        let proof_at = msg.rfind(",p=").ok_or(ScramError::Protocol("SCRAM client-final-message has no proof"))?;
        let without_proof = &msg[..proof_at];
        let mut parts = without_proof.split(',');
        let cbind = attr(parts.next(), 'c')?;
        if B64.decode(cbind).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(ScramError::Protocol("SCRAM channel binding check failed"));
        }
        if attr(parts.next(), 'r')? != self.nonce {
            return Err(ScramError::Protocol("SCRAM nonce does not match"));
        }
        let proof = B64.decode(&msg[proof_at + 3..]).map_err(|_| ScramError::Protocol("malformed SCRAM proof"))?;
        if proof.len() != 32 {
            return Err(ScramError::Protocol("malformed SCRAM proof"));
        }
        let auth_message = format!("{},{},{}", self.client_first_bare, self.server_first, without_proof);
        let client_signature = hmac(&secret.stored_key, auth_message.as_bytes());
        let mut client_key = [0u8; 32];
        for i in 0..32 {
            client_key[i] = proof[i] ^ client_signature[i];
        }
        let candidate: [u8; 32] = Sha256::digest(client_key).into();
        // Compare without an early exit, so timing does not tell how much of the key matched.
        let diff = candidate.iter().zip(&secret.stored_key).fold(0u8, |d, (a, b)| d | (a ^ b));
        if diff != 0 {
            return Err(ScramError::Auth);
        }
        let server_signature = hmac(&secret.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exchange from RFC 7677, section 3.
    #[test]
    fn rfc7677_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let secret = ScramSecret::new("pencil", &salt, 4096);
        let (st, first) = ScramServer::start(&secret, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").unwrap();
        assert_eq!(first, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        let fin = st
            .finish(&secret, b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(fin, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn wrong_password_is_refused() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let secret = ScramSecret::new("not-pencil", &salt, 4096);
        let (st, _) = ScramServer::start(&secret, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").unwrap();
        let r = st.finish(&secret, b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert_eq!(r, Err(ScramError::Auth));
    }

    #[test]
    fn malformed_messages_are_protocol_errors() {
        let secret = ScramSecret::new("x", b"salt", 16);
        for m in [&b""[..], b"n", b"p=tls-unique,,n=,r=abc", b"n,,n=,r=", b"n,a=x,n=,r=abc", b"\xff\xfe"] {
            assert!(matches!(ScramServer::start(&secret, m, "s"), Err(ScramError::Protocol(_))), "{m:?}");
        }
        let (st, _) = ScramServer::start(&secret, b"n,,n=,r=abc", "s").unwrap();
        assert!(matches!(st.finish(&secret, b"c=biws,r=WRONG,p=AAAA"), Err(ScramError::Protocol(_))));
    }
}
