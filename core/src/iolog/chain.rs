//! The hash chain over a recording's files, in `chain` beside sudo's files.
//!
//! ```text
//! jitsudo-iolog-v1 id=00000A grant=3f6c…
//! 1 120 0 0 0 12 4096 9b1e…
//! 2 180 0 0 0 12 8200 04aa…
//! ```
//! The first line names the recording and its grant. Every later line seals one chunk:
//! its number, then the length of each file in [`FILES`] order at the end of the chunk,
//! then `sha256(previous hash ‖ number ‖ for each file: length ‖ sha256(the file's bytes
//! added in this chunk))`, where the "previous hash" of chunk 1 is the sha256 of the
//! first line. A line is written only after the bytes it covers, so a torn last line is
//! a chunk that was never sealed, not damage.
//!
//! The last hash is what the journal seals when the run ends; with it, a recording that
//! was cut short, altered in any byte, or removed is told from an intact one.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The files the chain covers, in hashing order.
pub const FILES: [&str; 6] = ["timing", "stdin", "stdout", "stderr", "ttyin", "ttyout"];
pub const CHAIN_FILE: &str = "chain";
const HEADER_TAG: &str = "jitsudo-iolog-v1";

pub type Hash = [u8; 32];

pub fn header_line(id: &str, grant: &str) -> String {
    format!("{HEADER_TAG} id={id} grant={grant}\n")
}

pub fn header_hash(line: &str) -> Hash {
    Sha256::digest(line.as_bytes()).into()
}

/// One sealed chunk: what a chain line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub number: u64,
    pub lengths: [u64; 6],
    pub hash: Hash,
}

impl Link {
    pub fn line(&self) -> String {
        let lengths: Vec<String> = self.lengths.iter().map(u64::to_string).collect();
        format!(
            "{} {} {}\n",
            self.number,
            lengths.join(" "),
            hex(&self.hash)
        )
    }

    fn parse(line: &str) -> Option<Link> {
        let words: Vec<&str> = line.split(' ').collect();
        if words.len() != 8 {
            return None;
        }
        let number = words[0].parse().ok()?;
        let mut lengths = [0u64; 6];
        for (slot, w) in lengths.iter_mut().zip(&words[1..7]) {
            *slot = w.parse().ok()?;
        }
        Some(Link {
            number,
            lengths,
            hash: unhex(words[7])?,
        })
    }
}

/// The hash of chunk `number` from the previous hash and each file's new bytes' digest.
pub fn link_hash(previous: &Hash, number: u64, lengths: &[u64; 6], digests: &[Hash; 6]) -> Hash {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(number.to_le_bytes());
    for (len, digest) in lengths.iter().zip(digests) {
        h.update(len.to_le_bytes());
        h.update(digest);
    }
    h.finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Option<Hash> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// What a verification found.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub id: String,
    pub grant: String,
    /// Sealed chunks, and the last one's hash (the header's hash when there is none).
    pub chunks: u64,
    pub hash: Hash,
    /// Bytes written after the last sealed chunk: a supervisor that was killed, or one
    /// still running. Readable, but not covered by the chain.
    pub unsealed_bytes: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ChainError(pub String);

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Recompute the chain of the recording in `dir` from its files.
pub fn verify(dir: &Path) -> Result<Verified, ChainError> {
    let label = dir.display().to_string();
    let chain = File::open(dir.join(CHAIN_FILE))
        .map_err(|e| ChainError(format!("{label}: {CHAIN_FILE}: {e}")))?;
    let files: Vec<Option<File>> = FILES.iter().map(|f| File::open(dir.join(f)).ok()).collect();
    verify_from(&label, chain, files)
}

/// The same check over a recording held in memory (what the approval service stored):
/// `chain` is the chain file's bytes, `files` each of [`FILES`] (None: absent).
/// `label` names the recording in errors.
pub fn verify_bytes(
    label: &str,
    chain: &[u8],
    files: [Option<&[u8]>; 6],
) -> Result<Verified, ChainError> {
    verify_from(
        label,
        io::Cursor::new(chain),
        files.iter().map(|f| f.map(io::Cursor::new)).collect(),
    )
}

fn verify_from<C: Read, F: Read + Seek>(
    label: &str,
    chain: C,
    mut files: Vec<Option<F>>,
) -> Result<Verified, ChainError> {
    let err = |what: String| ChainError(format!("{label}: {what}"));
    let mut lines = BufReader::new(chain.take(64 << 20));
    let mut header = String::new();
    lines
        .read_line(&mut header)
        .map_err(|e| err(format!("{CHAIN_FILE}: {e}")))?;
    let (id, grant) =
        parse_header(&header).ok_or_else(|| err(format!("{CHAIN_FILE}: no valid first line")))?;
    let mut previous = header_hash(&header);
    let mut lengths = [0u64; 6];
    let mut chunks = 0;
    let mut text = String::new();
    loop {
        text.clear();
        let n = lines
            .read_line(&mut text)
            .map_err(|e| err(format!("{CHAIN_FILE}: {e}")))?;
        if n == 0 || !text.ends_with('\n') {
            // End, or a torn last line: a chunk that was never sealed.
            break;
        }
        let link = Link::parse(text.trim_end_matches('\n'))
            .ok_or_else(|| err(format!("{CHAIN_FILE}: line {} is malformed", chunks + 2)))?;
        if link.number != chunks + 1 {
            return Err(err(format!(
                "{CHAIN_FILE}: chunk {} follows chunk {chunks}",
                link.number
            )));
        }
        let mut digests = [[0u8; 32]; 6];
        for i in 0..6 {
            if link.lengths[i] < lengths[i] {
                return Err(err(format!("chunk {}: {} shrank", link.number, FILES[i])));
            }
            digests[i] = digest_range(files[i].as_mut(), lengths[i], link.lengths[i])
                .map_err(|e| err(format!("chunk {}: {}: {e}", link.number, FILES[i])))?;
        }
        let expect = link_hash(&previous, link.number, &link.lengths, &digests);
        if expect != link.hash {
            return Err(err(format!(
                "chunk {} does not match its hash: the recording was altered",
                link.number
            )));
        }
        previous = link.hash;
        lengths = link.lengths;
        chunks = link.number;
    }
    let mut unsealed_bytes = 0;
    for (i, f) in files.iter_mut().enumerate() {
        let len = match f {
            Some(f) => f
                .seek(SeekFrom::End(0))
                .map_err(|e| err(format!("{}: {e}", FILES[i])))?,
            None => 0,
        };
        if len < lengths[i] {
            return Err(err(format!("{} is shorter than the chain says", FILES[i])));
        }
        unsealed_bytes += len - lengths[i];
    }
    Ok(Verified {
        id,
        grant,
        chunks,
        hash: previous,
        unsealed_bytes,
    })
}

fn parse_header(line: &str) -> Option<(String, String)> {
    let rest = line
        .strip_suffix('\n')?
        .strip_prefix(HEADER_TAG)?
        .strip_prefix(' ')?;
    let (id, grant) = rest.split_once(' ')?;
    Some((
        id.strip_prefix("id=")?.to_string(),
        grant.strip_prefix("grant=")?.to_string(),
    ))
}

/// sha256 of bytes `from..to` of `file` (a missing file has no bytes).
fn digest_range<F: Read + Seek>(file: Option<&mut F>, from: u64, to: u64) -> io::Result<Hash> {
    let mut h = Sha256::new();
    if to > from {
        let file = file.ok_or_else(|| io::Error::other("missing"))?;
        file.seek(SeekFrom::Start(from))?;
        let mut part = file.take(to - from);
        let copied = io::copy(&mut part, &mut HashWriter(&mut h))?;
        if copied != to - from {
            return Err(io::Error::other("shorter than the chain says"));
        }
    }
    Ok(h.finalize().into())
}

struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
