//! Blocking HTTP(S) to the approval service: JSON in, JSON out, errors as one line.
//!
//! TLS roots come from a CA bundle file (the system's by default), never from the
//! environment of the setuid binary's caller. Plain `http://` is accepted only for a
//! loopback address, the same rule the service applies to its listener. Nothing the
//! service says over this channel is trusted on its own: grants and revocation lists
//! are verified against the pinned keys.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::wire::ErrorBody;

pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const MAX_RESPONSE_BYTES: u64 = 8 << 20;

pub struct Service {
    agent: ureq::Agent,
    base: String,
}

/// Why a call failed: the service answered with an error, or it could not be reached.
#[derive(Debug)]
pub enum CallError {
    Status { code: u16, message: String },
    Transport(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Status { code, message } => {
                write!(f, "the approval service refused ({code}): {message}")
            }
            CallError::Transport(e) => write!(f, "cannot reach the approval service: {e}"),
        }
    }
}

/// Is plain HTTP acceptable for this URL (a loopback address)?
pub fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Check a service URL: https://, or http:// to loopback only.
pub fn check_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    if url.starts_with("https://") && url.len() > "https://".len() {
        return Ok(url.to_string());
    }
    if url.starts_with("http://") {
        if is_loopback_url(url) {
            return Ok(url.to_string());
        }
        return Err(format!(
            "service {url:?} uses plain http:// to a non-loopback address; use https://"
        ));
    }
    Err(format!(
        "service {url:?} must start with https:// (or http:// on loopback)"
    ))
}

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Service {
    /// `ca_file`: PEM roots to trust; `None` uses the system bundle if present, else the
    /// built-in web PKI roots.
    pub fn new(base: &str, ca_file: Option<&Path>, timeout: Duration) -> Result<Service, String> {
        let base = check_url(base)?;
        let ca_path = ca_file.map(Path::to_path_buf).or_else(|| {
            let sys = Path::new(SYSTEM_CA_BUNDLE);
            sys.exists().then(|| sys.to_path_buf())
        });
        let roots = match ca_path {
            None => ureq::tls::RootCerts::WebPki,
            Some(p) => {
                let pem = std::fs::read(&p)
                    .map_err(|e| format!("cannot read CA file {}: {e}", p.display()))?;
                let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(format!("CA file {} holds no PEM certificates", p.display()));
                }
                ureq::tls::RootCerts::new_with_certs(&certs)
            }
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            // A replica that is down should cost seconds, not the whole call's budget,
            // before the next one is tried (failover.rs).
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("jitsudo/", env!("CARGO_PKG_VERSION")))
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Service {
            agent: config.new_agent(),
            base,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        headers: &[(&str, &str)],
    ) -> Result<R, CallError> {
        let bytes = serde_json::to_vec(body).map_err(|e| CallError::Transport(e.to_string()))?;
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        finish(req.send(&bytes[..]))
    }

    pub fn get<R: DeserializeOwned>(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<R, CallError> {
        self.get_limited(path, headers, MAX_RESPONSE_BYTES)
    }

    /// POST a form (`application/x-www-form-urlencoded`) to `path`: the status and the
    /// JSON answer, whatever the status (OAuth endpoints answer errors as JSON with 400,
    /// and a waiting device authorization is such an error). For `jitsudoctl login`.
    pub fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, serde_json::Value), CallError> {
        let mut resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .send_form(form.iter().copied())
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| CallError::Transport(format!("reading the answer: {e}")))?;
        let v = serde_json::from_str(&text)
            .map_err(|e| CallError::Transport(format!("unexpected answer ({status}): {e}")))?;
        Ok((status, v))
    }

    /// `get` of an answer that may be larger than the usual bound (a session recording).
    pub fn get_limited<R: DeserializeOwned>(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        limit: u64,
    ) -> Result<R, CallError> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        finish_limited(req.call(), limit)
    }
}

fn finish<R: DeserializeOwned>(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<R, CallError> {
    finish_limited(result, MAX_RESPONSE_BYTES)
}

fn finish_limited<R: DeserializeOwned>(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    limit: u64,
) -> Result<R, CallError> {
    let mut resp = result.map_err(|e| CallError::Transport(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(|e| CallError::Transport(format!("reading the answer: {e}")))?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or_else(|_| text.chars().take(200).filter(|c| !c.is_control()).collect());
        return Err(CallError::Status {
            code: status,
            message,
        });
    }
    serde_json::from_str(&text).map_err(|e| CallError::Transport(format!("unexpected answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_url("https://approvals.example").is_ok());
        assert!(check_url("http://127.0.0.1:8080/").is_ok());
        assert!(check_url("http://[::1]:8080").is_ok());
        assert!(check_url("http://localhost:1").is_ok());
        assert!(check_url("http://10.0.0.1:8080").is_err());
        assert!(check_url("http://127.0.0.1.evil.example").is_err());
        assert!(check_url("ftp://x").is_err());
        assert_eq!(
            check_url("http://127.0.0.1:1/").unwrap(),
            "http://127.0.0.1:1"
        );
    }
}
