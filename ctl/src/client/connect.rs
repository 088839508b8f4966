//! Where the approval service is and who `jitsudoctl` is to it: the service URL, the CA
//! bundle and the approver token, shared by every command that talks to the service.
//! The token comes from `--token-file`, else `JITSUDO_TOKEN` (jitsudoctl is not setuid),
//! else the ID token `jitsudoctl login` kept.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use super::http::Service;
use crate::config;

/// Where the service is and who we are to it.
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)
    #[arg(long, value_name = "URL")]
    pub service: Option<String>,
    /// File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

pub(crate) fn token(args: &ServiceArgs) -> Result<Zeroizing<String>, String> {
    let text = match &args.token_file {
        Some(f) => Zeroizing::new(std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?),
        None => match std::env::var("JITSUDO_TOKEN") {
            Ok(t) => Zeroizing::new(t),
            // Else the ID token `jitsudoctl login` kept.
            Err(_) => Zeroizing::new(saved_token()?.ok_or_else(|| {
                "no approver token: run jitsudoctl login, set JITSUDO_TOKEN or pass --token-file FILE (tokens come from jitsudoctl approver add)".to_string()
            })?),
        },
    };
    let t = Zeroizing::new(text.trim().to_string());
    if t.is_empty() || t.chars().any(|c| c.is_control() || c == ' ') {
        return Err("the approver token is empty or malformed".into());
    }
    Ok(t)
}

pub(crate) fn service(args: &ServiceArgs) -> Result<Service, String> {
    let url = match (&args.service, std::env::var("JITSUDO_SERVICE")) {
        (Some(u), _) => u.clone(),
        (None, Ok(u)) => u,
        (None, Err(_)) => {
            let path = Path::new(config::CONFIG_PATH);
            let text = std::fs::read_to_string(path).map_err(|_| {
                "no service URL: pass --service URL or set JITSUDO_SERVICE".to_string()
            })?;
            config::parse(path, &text)
                .map_err(|e| e.to_string())?
                .services
                .into_iter()
                // An admin command goes to one replica; the first is the preferred one.
                .next()
                .ok_or_else(|| "no service URL: pass --service URL, set JITSUDO_SERVICE, or set service = in jitsudo.toml".to_string())?
        }
    };
    let ca = args
        .ca_file
        .clone()
        .or_else(|| std::env::var_os("JITSUDO_CA_FILE").map(PathBuf::from));
    Service::new(&url, ca.as_deref(), Duration::from_secs(30))
}

pub(crate) fn auth(t: &str) -> String {
    format!("Bearer {t}")
}

/// Where the login token is kept: `$XDG_CONFIG_HOME/jitsudo/token`, else
/// `$HOME/.config/jitsudo/token`.
pub fn token_path() -> Result<PathBuf, String> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or("neither XDG_CONFIG_HOME nor HOME is set: no place for the login token")?,
        )
        .join(".config"),
    };
    Ok(base.join("jitsudo").join("token"))
}

/// The token `jitsudoctl login` kept, if there is one. A file that others can read is
/// refused, not used.
pub fn saved_token() -> Result<Option<String>, String> {
    use std::os::unix::fs::MetadataExt;
    let path = token_path()?;
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if !meta.is_file() || meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is not a regular file of mode 0600; run jitsudoctl logout and login again",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Some(text.trim().to_string()))
}
