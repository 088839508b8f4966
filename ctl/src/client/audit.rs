//! `jitsudoctl audit`: the approval service's audit trail, listed or checked here.
//! `audit verify` fetches the whole trail and recomputes its hash chain with the
//! service's own format (`jitsudo_policy::audit`), so a check does not have to trust
//! the service's verdict.
#![forbid(unsafe_code)]

use jitsudo_policy::audit::{AuditRecord, ChainBreak, ChainCheck};

/// `jitsudoctl audit [FILTERS] [--json]` and `jitsudoctl audit verify`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub verify: Option<AuditCommand>,
    /// Only records about this user
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only records about this host
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Only records about this grant (and the request it came from)
    #[arg(long, value_name = "ID")]
    pub grant: Option<String>,
    /// From this time on: RFC 3339, or a duration ago (e.g. 24h, 7d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Before this time: RFC 3339, or a duration ago
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// One JSON object per line (for a SIEM), the records exactly as stored and hashed
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub service: super::connect::ServiceArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Fetch the whole trail and check its hash chain here (and ask the service to check
    /// it too); names the first record altered, removed or reordered. Exit 1 if broken.
    Verify {
        #[command(flatten)]
        service: super::connect::ServiceArgs,
    },
}

/// RFC 3339, or a duration meaning "that long ago".
pub fn parse_when(text: &str, now: i64) -> Result<i64, String> {
    if let Ok(t) = crate::grant::parse_time(text) {
        return Ok(t);
    }
    match crate::config::parse_duration(text) {
        Ok(d) => Ok(now - d.as_secs() as i64),
        Err(_) => Err(format!(
            "{text:?} is neither an RFC 3339 time (2026-11-23T16:00:00Z) nor a duration ago (24h, 7d)"
        )),
    }
}

pub(crate) fn query_value(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Page through `/v1/audit` with `filters` (already `k=v&` encoded), calling `each`.
fn fetch_all(
    svc: &super::http::Service,
    auth: &str,
    filters: &str,
    mut each: impl FnMut(AuditRecord) -> Result<(), String>,
) -> Result<(), String> {
    let mut after: Option<i64> = None;
    loop {
        let mut path = format!("/v1/audit?{filters}limit=1000");
        if let Some(a) = after {
            path.push_str(&format!("&after={a}"));
        }
        let page: Vec<AuditRecord> = svc
            .get(&path, &[("authorization", auth)])
            .map_err(|e| e.to_string())?;
        let n = page.len();
        for r in page {
            after = Some(r.seq);
            each(r)?;
        }
        if n < 1000 {
            return Ok(());
        }
    }
}

pub fn audit_command(args: &AuditArgs) -> Result<(), String> {
    if let Some(AuditCommand::Verify { service }) = &args.verify {
        return verify_command(service);
    }
    let (svc, t) = (
        super::connect::service(&args.service)?,
        super::connect::token(&args.service)?,
    );
    let auth = super::connect::auth(&t);
    let now = crate::grant::now();
    let mut filters = String::new();
    for (k, v) in [
        ("user", &args.user),
        ("host", &args.host),
        ("grant", &args.grant),
    ] {
        if let Some(v) = v {
            filters.push_str(&format!("{k}={}&", query_value(v)));
        }
    }
    for (k, v) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = v {
            let t = parse_when(v, now).map_err(|e| format!("--{k}: {e}"))?;
            filters.push_str(&format!("{k}={t}&"));
        }
    }
    let mut n = 0u64;
    let stdout = std::io::stdout();
    fetch_all(&svc, &auth, &filters, |r| {
        use std::io::Write;
        n += 1;
        let line = if args.json {
            serde_json::to_string(&r).map_err(|e| e.to_string())?
        } else {
            r.summary()
        };
        writeln!(stdout.lock(), "{line}").map_err(|e| format!("cannot write: {e}"))
    })?;
    if n == 0 && !args.json {
        eprintln!("no audit records match");
    }
    Ok(())
}

fn verify_command(service: &super::connect::ServiceArgs) -> Result<(), String> {
    let (svc, t) = (
        super::connect::service(service)?,
        super::connect::token(service)?,
    );
    let auth = super::connect::auth(&t);
    let mut check = ChainCheck::new();
    let mut broken: Option<ChainBreak> = None;
    fetch_all(&svc, &auth, "", |r| {
        if broken.is_none() {
            if let Err(b) = check.push(&r) {
                broken = Some(b);
            }
        }
        Ok(())
    })?;
    // The service's own walk reads the database directly; both must agree.
    let server: serde_json::Value = svc
        .get("/v1/audit/verify", &[("authorization", &auth)])
        .map_err(|e| e.to_string())?;
    if let Some(b) = broken {
        return Err(format!("audit trail BROKEN: {b}"));
    }
    if server["ok"] != serde_json::Value::Bool(true) {
        return Err(format!(
            "audit trail BROKEN (service check): {}",
            server["error"].as_str().unwrap_or("no detail")
        ));
    }
    let ok = check.finish();
    println!(
        "audit trail intact: {} record(s), last #{}, head {}",
        ok.records, ok.last_seq, ok.head
    );
    if let Some(n) = server["pending"].as_u64().filter(|n| *n > 0) {
        println!("{n} newer record(s) committed since, not yet sealed into the chain");
    }
    Ok(())
}
