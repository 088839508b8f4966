//! `jitsudoctl login` and `logout`: sign in through the approval service's identity
//! provider with the device authorization grant (RFC 8628) and keep the ID token it
//! gives, short-lived, in the caller's config directory (mode 0600), where the service
//! commands find it when neither `--token-file` nor `JITSUDO_TOKEN` names a token.
//!
//! The token is checked by the service on every call (signature, issuer, audience,
//! expiry); this side only asks for it and stores it.
#![forbid(unsafe_code)]

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::connect::{service, token_path, ServiceArgs};
use super::http::Service;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Deserialize)]
struct Client {
    issuer: String,
    client_id: String,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    device_authorization_endpoint: Option<String>,
    token_endpoint: String,
}

#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    #[serde(default)]
    interval: Option<u64>,
    expires_in: u64,
}

/// An endpoint URL as a client of its own (https, or http on loopback).
fn endpoint(url: &str, args: &ServiceArgs) -> Result<Service, String> {
    let ca = args
        .ca_file
        .clone()
        .or_else(|| std::env::var_os("JITSUDO_CA_FILE").map(PathBuf::from));
    Service::new(url, ca.as_deref(), Duration::from_secs(30))
        .map_err(|e| format!("identity provider: {e}"))
}

fn oauth_error(v: &serde_json::Value) -> String {
    let e = v["error"].as_str().unwrap_or("unknown error");
    match v["error_description"].as_str() {
        Some(d) => format!("{e}: {d}"),
        None => e.to_string(),
    }
}

pub fn login(args: &ServiceArgs) -> Result<(), String> {
    let svc = service(args)?;
    let client: Client = svc.get("/v1/oidc", &[]).map_err(|e| e.to_string())?;
    let idp = endpoint(&client.issuer, args)?;
    let d: Discovery = idp
        .get("/.well-known/openid-configuration", &[])
        .map_err(|e| format!("identity provider {}: {e}", client.issuer))?;
    if d.issuer != client.issuer {
        return Err(format!(
            "the identity provider's discovery names issuer {:?}, not {:?}",
            d.issuer, client.issuer
        ));
    }
    let device = d.device_authorization_endpoint.ok_or_else(|| {
        format!(
            "the identity provider {} offers no device authorization (RFC 8628)",
            client.issuer
        )
    })?;
    let (status, v) = endpoint(&device, args)?
        .post_form(
            "",
            &[
                ("client_id", &client.client_id),
                ("scope", "openid profile"),
            ],
        )
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "the identity provider refused the device authorization ({status}): {}",
            oauth_error(&v)
        ));
    }
    let auth: DeviceAuthorization = serde_json::from_value(v)
        .map_err(|e| format!("unexpected device authorization answer: {e}"))?;
    // On stderr, so that stdout stays for what the command prints when it is done.
    eprintln!(
        "To sign in, open {} and enter the code {}",
        auth.verification_uri, auth.user_code
    );
    if let Some(u) = &auth.verification_uri_complete {
        eprintln!("(or open {u})");
    }
    let token_ep = endpoint(&d.token_endpoint, args)?;
    let mut interval = auth.interval.unwrap_or(5).clamp(1, 60);
    let deadline = Instant::now() + Duration::from_secs(auth.expires_in.min(1800));
    let id_token = loop {
        if Instant::now() >= deadline {
            return Err("the sign-in was not completed in time; run jitsudoctl login again".into());
        }
        std::thread::sleep(Duration::from_secs(interval));
        let (status, v) = token_ep
            .post_form(
                "",
                &[
                    ("grant_type", DEVICE_GRANT),
                    ("device_code", &auth.device_code),
                    ("client_id", &client.client_id),
                ],
            )
            .map_err(|e| e.to_string())?;
        if status == 200 {
            break v["id_token"]
                .as_str()
                .ok_or("the identity provider answered without an ID token")?
                .to_string();
        }
        match v["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval = (interval + 5).min(60),
            _ => return Err(format!("sign-in refused: {}", oauth_error(&v))),
        }
    };
    let path = save(&id_token)?;
    // The service checks the token on each call; ask it who it names now.
    println!(
        "signed in; token kept in {} (0600) until it expires",
        path.display()
    );
    Ok(())
}

/// Write the token to `token_path()`: the directory 0700, the file 0600, replaced whole.
fn save(token: &str) -> Result<PathBuf, String> {
    let path = token_path()?;
    let dir = path.parent().expect("token path has a directory");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot chmod {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".token.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    f.write_all(token.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    Ok(path)
}

pub fn logout() -> Result<(), String> {
    let path = token_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => println!("signed out: removed {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("not signed in ({} does not exist)", path.display())
        }
        Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
    }
    Ok(())
}
