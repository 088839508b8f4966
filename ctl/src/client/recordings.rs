//! `jitsudoctl recordings`: the session recordings stored on the approval service, and
//! the fetch behind `jitsudoctl replay ID --host H`.
#![forbid(unsafe_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::audit::{parse_when, query_value};
use super::connect::{auth, service, token, ServiceArgs};
use super::wire::{self, RecordingDownload, RecordingView};

/// The largest recording answer read: the service's default bound of 64 MiB per
/// recording, in base64, with room to spare.
const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

#[derive(clap::Args, Debug)]
pub struct RecordingsArgs {
    /// Only recordings of this user's runs
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only recordings made on this host
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Only recordings of runs under this grant
    #[arg(long, value_name = "ID")]
    pub grant: Option<String>,
    /// Only recordings in this state: sealed (their run sealed them) or cut (their
    /// supervisor was killed first)
    #[arg(long, value_name = "STATE", value_parser = ["sealed", "cut"])]
    pub state: Option<String>,
    /// Started at or after: RFC 3339, or a duration ago (e.g. 24h, 7d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    #[command(flatten)]
    pub service: ServiceArgs,
}

fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes}B"),
        1024..1_048_576 => format!("{:.1}K", bytes as f64 / 1024.0),
        _ => format!("{:.1}M", bytes as f64 / 1_048_576.0),
    }
}

/// One table line per recording, newest first.
pub fn list(args: &RecordingsArgs) -> Result<(), String> {
    let (svc, t) = (service(&args.service)?, token(&args.service)?);
    let mut path = "/v1/recordings?limit=1000".to_string();
    for (k, v) in [
        ("user", &args.user),
        ("host", &args.host),
        ("grant", &args.grant),
        ("state", &args.state),
    ] {
        if let Some(v) = v {
            path.push_str(&format!("&{k}={}", query_value(v)));
        }
    }
    if let Some(since) = &args.since {
        path.push_str(&format!(
            "&since={}",
            parse_when(since, crate::grant::now())?
        ));
    }
    let list: Vec<RecordingView> = svc
        .get(&path, &[("authorization", &auth(&t))])
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<6}  {:<16}  {:<10}  {:<20}  {:>7}  {:<18}  {:<16}  COMMAND",
        "ID", "HOST", "USER", "STARTED", "SIZE", "SEAL", "GRANT"
    );
    for r in &list {
        let _ = writeln!(
            out,
            "{:<6}  {:<16}  {:<10}  {:<20}  {:>7}  {:<18}  {:<16}  {}",
            r.id,
            r.host,
            r.user,
            crate::grant::format_time(r.started),
            size(r.bytes),
            match r.state.as_str() {
                wire::RECORDING_CUT => format!("cut, {} chunk(s)", r.chunks),
                _ => format!("verified, {} chunk(s)", r.chunks),
            },
            r.grant,
            r.command.replace(|c: char| c.is_control(), "?"),
        );
    }
    if list.is_empty() {
        eprintln!("jitsudoctl: no recordings match");
    }
    Ok(())
}

/// A private directory that is removed with everything in it when dropped.
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Fetch recording `id` of `host` into a new private (0700) temporary directory, its
/// files 0600. Returns the directory and what the service says of the recording.
pub fn fetch(
    host: &str,
    id: &str,
    args: &ServiceArgs,
) -> Result<(PrivateDir, RecordingView), String> {
    let (svc, t) = (service(args)?, token(args)?);
    let path = format!("/v1/recordings/{}/{}", query_value(host), query_value(id));
    let download: RecordingDownload = svc
        .get_limited(&path, &[("authorization", &auth(&t))], MAX_DOWNLOAD_BYTES)
        .map_err(|e| e.to_string())?;
    let nonce = wire::random_hex(8)?;
    let dir = std::env::temp_dir().join(format!("jitsudoctl-replay-{id}-{nonce}"));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dir = PrivateDir(dir);
    for (name, data) in &download.files {
        if !wire::RECORDING_FILES.contains(&name.as_str()) {
            return Err(format!(
                "the service sent a file {name:?} that is not part of a recording"
            ));
        }
        let bytes = wire::base64_decode(data).map_err(|e| format!("{name}: {e}"))?;
        let file = dir.path().join(name);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    Ok((dir, download.recording))
}
