//! The approval service's audit trail as both sides see it: one record per change,
//! hash-chained, and the check that finds the first record that was altered, removed
//! or reordered. The service computes the chain when it writes; `jitsudoctl audit
//! verify` recomputes it from what the API returns, so a check does not have to trust
//! the service's own verdict.
//!
//! Each record's hash is SHA-256 over a canonical serialisation: the JSON array
//! `["jitsudo-audit-v1", seq, at, kind, actor, user, host, request, grant, detail, prev]`
//! (serde_json writes strings, integers and `null` one way only; `detail` is carried
//! as the exact JSON text the service stored, not re-serialised). `seq` is in the hash,
//! so moving a record changes it; `prev` is the previous record's hash (64 zeros for
//! the first), so removing or reordering records breaks the chain. `seq` increases but
//! may skip numbers the database drew for a transaction that rolled back: a skipped
//! number is not a break when the next record links to the previous one, a removed
//! record is (the record after it links to the removed one).
//!
//! What a chain cannot show: records cut off at the end. `verify` reports the number of
//! records and the head hash; anchor those elsewhere (a SIEM keeps the JSON lines) to
//! detect a shortened trail.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record, as stored and as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain: increasing (numbers of rolled-back writes are skipped).
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// What happened: `request.created`, `request.decided`, `request.approval`,
    /// `request.approved`, `request.denied`, `grant.issued`, `grant.revoked`,
    /// `host.registered`, `approver.added`, `key.activated`, `host.record`.
    pub kind: String,
    /// Who did it: an approver's name, `policy`, `host:NAME` or `jitsudod`.
    pub actor: String,
    pub user: Option<String>,
    pub host: Option<String>,
    pub request: Option<String>,
    pub grant: Option<String>,
    /// A JSON object with the rest (rule, reason, comment, key, …), as stored.
    pub detail: String,
    pub prev: String,
    pub hash: String,
}

impl AuditRecord {
    /// The canonical bytes the hash covers (everything but `hash`).
    pub fn canonical(&self) -> Vec<u8> {
        let v = serde_json::json!([
            "jitsudo-audit-v1",
            self.seq,
            self.at,
            self.kind,
            self.actor,
            self.user,
            self.host,
            self.request,
            self.grant,
            self.detail,
            self.prev,
        ]);
        // Serialising a Value of strings, integers and nulls cannot fail.
        serde_json::to_vec(&v).unwrap_or_default()
    }

    pub fn compute_hash(&self) -> String {
        hex(&Sha256::digest(self.canonical()))
    }

    /// One line for people: time, kind, actor and the subject fields that are set.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "#{} {} {:<17} by {}",
            self.seq,
            crate::grant::format_time(self.at),
            self.kind,
            self.actor
        );
        for (k, v) in [
            ("user", &self.user),
            ("host", &self.host),
            ("request", &self.request),
            ("grant", &self.grant),
        ] {
            if let Some(v) = v {
                s.push_str(&format!(" {k}={v}"));
            }
        }
        if self.detail != "{}" {
            s.push_str(&format!(" {}", self.detail));
        }
        s
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a chain walk stands: feed records in `seq` order, one at a time, so a caller
/// can verify millions of records page by page.
#[derive(Clone, Debug)]
pub struct ChainCheck {
    last_seq: i64,
    last_hash: String,
    count: u64,
}

/// The chain is intact: how many records, and the head hash to anchor elsewhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainOk {
    pub records: u64,
    pub head: String,
    pub last_seq: i64,
}

/// The first bad record and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// The record named: the altered one, the first missing one, or the one out of place.
    pub seq: i64,
    pub problem: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit record {}: {}", self.seq, self.problem)
    }
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck {
            last_seq: 0,
            last_hash: GENESIS.to_string(),
            count: 0,
        }
    }
}

impl ChainCheck {
    pub fn new() -> ChainCheck {
        ChainCheck::default()
    }

    /// Check the next record. Order of checks: position (a gap whose next record does
    /// not link to the last one means records were removed), link to the previous record (a wrong link means reordering, or a
    /// record before it was changed and re-hashed), then the record's own content.
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), ChainBreak> {
        let expected = self.last_seq + 1;
        if r.seq < expected {
            return Err(ChainBreak {
                seq: r.seq,
                problem: format!(
                    "out of order: it comes after record {} (records were reordered or duplicated)",
                    self.last_seq
                ),
            });
        }
        if r.seq > expected && r.prev != self.last_hash {
            let missing = if r.seq == expected + 1 {
                format!("record {expected} is missing")
            } else {
                format!("records {expected}..{} are missing", r.seq - 1)
            };
            return Err(ChainBreak {
                seq: expected,
                problem: format!("{missing} (removed): the next record present is {}", r.seq),
            });
        }
        // A gap with an intact link: numbers never used (a rolled-back write).
        if r.prev != self.last_hash {
            return Err(ChainBreak {
                seq: r.seq,
                problem: format!(
                    "does not follow record {}: its previous-hash link is wrong (records were reordered or removed and renumbered, or record {} was altered and re-hashed)",
                    self.last_seq, self.last_seq
                ),
            });
        }
        let computed = r.compute_hash();
        if computed != r.hash {
            return Err(ChainBreak {
                seq: r.seq,
                problem: format!(
                    "was altered: its content ({}, {}) does not match its hash",
                    r.kind,
                    crate::grant::format_time(r.at)
                ),
            });
        }
        self.last_seq = r.seq;
        self.last_hash = r.hash.clone();
        self.count += 1;
        Ok(())
    }

    pub fn finish(&self) -> ChainOk {
        ChainOk {
            records: self.count,
            head: self.last_hash.clone(),
            last_seq: self.last_seq,
        }
    }
}

/// Verify a whole chain held in memory.
pub fn verify<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<ChainOk, ChainBreak> {
    let mut c = ChainCheck::new();
    for r in records {
        c.push(r)?;
    }
    Ok(c.finish())
}

// ---- jitsudoctl audit ---------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    seq,
                    at: 1_800_000_000 + seq,
                    kind: "request.created".into(),
                    actor: "host:web-01".into(),
                    user: Some("alice".into()),
                    host: Some("web-01".into()),
                    request: Some(format!("r{seq}")),
                    grant: None,
                    detail: format!("{{\"reason\":\"INC-{seq}\"}}"),
                    prev: prev.clone(),
                    hash: String::new(),
                };
                r.hash = r.compute_hash();
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        let ok = verify(&c).unwrap();
        assert_eq!(ok.records, 5);
        assert_eq!(ok.head, c[4].hash);
        assert_eq!(verify(&[]).unwrap().head, GENESIS);
    }

    #[test]
    fn altered_record_is_named() {
        let mut c = chain(5);
        c[2].detail = "{\"reason\":\"nothing to see\"}".into();
        let e = verify(&c).unwrap_err();
        assert_eq!(e.seq, 3);
        assert!(e.problem.contains("altered"), "{e}");
        // A field set to null is a change too.
        let mut c = chain(5);
        c[1].user = None;
        assert_eq!(verify(&c).unwrap_err().seq, 2);
    }

    #[test]
    fn altered_and_rehashed_record_breaks_the_next_link() {
        let mut c = chain(5);
        c[2].actor = "mallory".into();
        c[2].hash = c[2].compute_hash();
        let e = verify(&c).unwrap_err();
        assert_eq!(e.seq, 4);
        assert!(e.problem.contains("record 3 was altered"), "{e}");
    }

    #[test]
    fn removed_record_is_named() {
        let mut c = chain(5);
        c.remove(3);
        let e = verify(&c).unwrap_err();
        assert_eq!(e.seq, 4);
        assert!(e.problem.contains("record 4 is missing"), "{e}");
        let mut c = chain(5);
        c.remove(0);
        assert_eq!(verify(&c).unwrap_err().seq, 1);
    }

    #[test]
    fn skipped_numbers_are_not_a_break() {
        // Numbers 3 and 4 were drawn by a write that rolled back: the chain links 2 → 5.
        let mut c = chain(5);
        c.truncate(2);
        let mut r = chain(1).remove(0);
        r.seq = 5;
        r.prev = c[1].hash.clone();
        r.hash = r.compute_hash();
        c.push(r);
        assert_eq!(verify(&c).unwrap().last_seq, 5);
        // Removing the record after the skipped numbers is still named.
        let mut r = chain(1).remove(0);
        r.seq = 6;
        r.prev = c[2].hash.clone();
        r.hash = r.compute_hash();
        c.push(r);
        c.remove(2);
        let e = verify(&c).unwrap_err();
        assert_eq!(e.seq, 3);
        assert!(e.problem.contains("records 3..5 are missing"), "{e}");
    }

    #[test]
    fn reordered_records_are_named() {
        // Swapped positions, seq values travelling with their records.
        let mut c = chain(5);
        c.swap(1, 2);
        let e = verify(&c).unwrap_err();
        assert_eq!(e.seq, 2, "{e}");
        // Swapped seq values (rows keep their place in the table).
        let mut c = chain(5);
        c[1].seq = 3;
        c[2].seq = 2;
        c.swap(1, 2);
        let e = verify(&c).unwrap_err();
        assert_eq!(e.seq, 2, "{e}");
        assert!(e.problem.contains("reordered"), "{e}");
    }

    #[test]
    fn canonical_form_is_stable() {
        let c = chain(1);
        assert_eq!(
            String::from_utf8(c[0].canonical()).unwrap(),
            format!("[\"jitsudo-audit-v1\",1,1800000001,\"request.created\",\"host:web-01\",\"alice\",\"web-01\",\"r1\",null,\"{{\\\"reason\\\":\\\"INC-1\\\"}}\",\"{GENESIS}\"]")
        );
    }
}
