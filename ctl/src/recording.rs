//! `jitsudoctl replay`: play a session recording back in the terminal, after checking
//! its hash chain, so that what is shown is what was recorded. The recording is one on
//! this host, or with `--host` one fetched from the approval service into a private
//! temporary directory, whose chain must then also end at the seal the service stored.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use jitsudo_core::iolog::{chain, reader, RecordingId};

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The recording's id, as jitsudo -l, the journal and sudoreplay -l print it (e.g. 00000A)
    #[arg(value_name = "ID")]
    pub id: String,
    /// Directory holding the recordings
    #[arg(long, value_name = "DIR", default_value = jitsudo_core::iolog::IO_LOG_DIR, conflicts_with = "host")]
    pub dir: PathBuf,
    /// Fetch the recording this host uploaded from the approval service (approver token)
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Play faster (2 = twice as fast) or slower (0.5); 0 prints everything at once
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    pub speed: f64,
    /// Never pause longer than this many seconds
    #[arg(long, value_name = "SECONDS")]
    pub max_wait: Option<f64>,
    /// Play a recording whose chain does not verify (it is still reported)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub service: crate::client::connect::ServiceArgs,
}

pub fn replay(args: &ReplayArgs) -> Result<(), String> {
    let id = RecordingId::parse(&args.id).ok_or_else(|| {
        format!(
            "{:?} is not a recording id (six characters 0-9 A-Z, e.g. 00000A)",
            args.id
        )
    })?;
    if !(args.speed.is_finite() && args.speed >= 0.0) {
        return Err("--speed must be a number, 0 or more".into());
    }
    let max_delay = match args.max_wait {
        None => None,
        Some(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
        Some(_) => return Err("--max-wait must be a number of seconds, 0 or more".into()),
    };
    // Kept until the end of the replay: dropped, it removes the fetched copy.
    let fetched;
    let dir = match &args.host {
        Some(host) => {
            let (tmp, seal) = crate::client::recordings::fetch(host, id.as_str(), &args.service)?;
            fetched = tmp;
            check_seal(fetched.path(), &seal, args.force)?;
            fetched.path().to_path_buf()
        }
        None => {
            let dir = args.dir.join(id.relative_path());
            if !dir.is_dir() {
                return Err(format!("no recording {id} in {}", args.dir.display()));
            }
            dir
        }
    };
    check(&dir, args.force)?;
    let info = reader::info(&dir)?;
    eprintln!("{}", describe(&id, &info));
    reader::replay(
        &dir,
        &mut std::io::stdout().lock(),
        &reader::ReplayOptions {
            speed: args.speed,
            max_delay,
        },
    )?;
    eprintln!();
    eprintln!("jitsudoctl: end of recording {id}");
    Ok(())
}

/// Refuse (or, with --force, warn about) a recording whose chain does not hold.
fn check(dir: &Path, force: bool) -> Result<(), String> {
    match chain::verify(dir) {
        Ok(v) if v.unsealed_bytes == 0 => Ok(()),
        Ok(v) => {
            eprintln!(
                "jitsudoctl: warning: the last {} byte(s) are not covered by the chain (a run \
                 still going, or a supervisor that was killed); `jitsudoctl journal verify` \
                 says whether the recording was cut",
                v.unsealed_bytes
            );
            Ok(())
        }
        Err(e) if force => {
            eprintln!("jitsudoctl: warning: {e}");
            Ok(())
        }
        Err(e) => Err(format!(
            "{e}; refusing to replay it (--force plays it anyway)"
        )),
    }
}

/// A fetched recording's chain must end where the service says it sealed it.
fn check_seal(
    dir: &Path,
    seal: &jitsudo_core::wire::RecordingView,
    force: bool,
) -> Result<(), String> {
    let problem = match chain::verify(dir) {
        Ok(v) if v.chunks == seal.chunks && chain::hex(&v.hash) == seal.sha256 => return Ok(()),
        Ok(v) => format!(
            "recording {} of host {}: its chain ends at chunk {} ({}), the service sealed chunk              {} ({})",
            seal.id,
            seal.host,
            v.chunks,
            chain::hex(&v.hash),
            seal.chunks,
            seal.sha256
        ),
        Err(e) => format!("recording {} of host {}: {e}", seal.id, seal.host),
    };
    if force {
        eprintln!("jitsudoctl: warning: {problem}");
        return Ok(());
    }
    Err(format!(
        "{problem}; refusing to replay it (--force plays it anyway)"
    ))
}

/// One line: who ran what, where and when.
fn describe(id: &RecordingId, info: &serde_json::Value) -> String {
    let s = |k: &str| info[k].as_str().unwrap_or("?").to_string();
    let argv: Vec<&str> = info["runargv"]
        .as_array()
        .map(|a| a.iter().skip(1).filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let started = info["timestamp"]["seconds"]
        .as_i64()
        .map(jitsudo_core::grant::format_time)
        .unwrap_or_else(|| "?".into());
    format!(
        "recording {id}: {} on {} as {}, {started}, tty {}: {} {}",
        s("submituser"),
        s("submithost"),
        s("runuser"),
        s("ttyname"),
        s("command"),
        argv.join(" ")
    )
}
