//! Host journal uploads: what a host's line must be before the trail takes it.
#![forbid(unsafe_code)]

use jitsudo_core::store::journal::{Record as HostRecord, Reduced};

use crate::store::audit::Uploaded;

/// Read an uploaded journal line: a full record (its hash checked against its content), or
/// the reduced form a host sends for a record too large to upload (see
/// `jitsudo_core::store::journal::Reduced`), which is linked by `seq` and `prev` only and
/// stored marked as reduced, with the digest of the host's full line.
pub fn parse(line: &str) -> Result<Uploaded, String> {
    let full = match serde_json::from_str::<HostRecord>(line) {
        Ok(r) => r,
        Err(e) => {
            // A reduced record has no content whose hash could be checked.
            return match serde_json::from_str::<Reduced>(line) {
                Ok(r) if r.reduced => Ok(Uploaded {
                    seq: r.seq,
                    detail: serde_json::json!({
                        "seq": r.seq,
                        "hash": r.hash,
                        "time": r.time,
                        "outcome": r.outcome,
                        "reduced": {"line_sha256": r.line_sha256, "line_bytes": r.line_bytes},
                    }),
                    prev: r.prev,
                    hash: r.hash,
                    host: r.host,
                    user: r.user,
                    grant: None,
                }),
                _ => Err(format!("not a record ({e})")),
            };
        }
    };
    if !full.hash_is_valid() {
        return Err(format!("record {} does not match its hash", full.seq));
    }
    let e = &full.entry;
    let mut detail = serde_json::json!({
        "seq": full.seq,
        "hash": full.hash,
        "time": e.time,
        "outcome": e.outcome,
        "reason": e.reason,
        "tty": e.tty,
        "run_as": e.run_as,
        "command": e.command,
    });
    if let Some(argv) = &e.argv {
        detail["argv"] = serde_json::json!(argv);
    }
    Ok(Uploaded {
        seq: full.seq,
        prev: full.prev.clone(),
        hash: full.hash.clone(),
        host: e.host.clone(),
        user: e.user.clone(),
        grant: e.grant.clone(),
        detail,
    })
}
