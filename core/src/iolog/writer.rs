//! Writing a recording as the run goes: each event's bytes to its stream's file, then
//! its line in `timing`, and every second (or 256 KiB) a chain line sealing what came
//! before. Every write goes straight to the kernel, so nothing is held back in memory
//! that a SIGKILL could lose.
//!
//! An error is sticky: once a write has failed, every later call fails too, and the
//! supervisor stops the command (`[record] on_error = "stop"`). A recording is never
//! silently incomplete.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::chain::{self, Hash, Link, CHAIN_FILE, FILES};
use super::{allocate, open_base, RecordingId, SessionInfo, Stream, EVENT_WINSIZE};

/// Seal a chunk at least this often while output flows...
const SEAL_EVERY: Duration = Duration::from_secs(1);
/// ...or after this many unsealed bytes.
const SEAL_BYTES: u64 = 256 << 10;

/// What the journal keeps of a finished recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seal {
    pub id: RecordingId,
    pub chunks: u64,
    /// The last chain hash, hex.
    pub hash: String,
    pub bytes: u64,
}

pub struct Recorder {
    id: RecordingId,
    dir: PathBuf,
    /// `FILES` order: timing, stdin, stdout, stderr, ttyin, ttyout.
    files: [File; 6],
    chain: File,
    record_input: bool,
    previous: Hash,
    number: u64,
    lengths: [u64; 6],
    sealed: [u64; 6],
    digests: [Sha256; 6],
    last_event: Instant,
    last_seal: Instant,
    failed: Option<String>,
    /// Sync every file to disk before the seal is handed to the journal (see `durable`).
    durable: bool,
}

fn index_of(stream: Stream) -> usize {
    // FILES[0] is timing; the streams follow in sudo's event order.
    stream as usize + 1
}

fn create_file(dir: &Path, name: &str) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir.join(name))
        .map_err(|e| io::Error::new(e.kind(), format!("{}/{name}: {e}", dir.display())))
}

impl Recorder {
    /// Allocate the next id under `base` and create the recording's files.
    pub fn create(base: &Path, info: &SessionInfo, record_input: bool) -> io::Result<Recorder> {
        let base = open_base(base)?;
        let (id, dir) = allocate(&base)?;
        write_info(&dir, info)?;
        let mut files = Vec::with_capacity(6);
        for name in FILES {
            files.push(create_file(&dir, name)?);
        }
        let files: [File; 6] = files
            .try_into()
            .map_err(|_| io::Error::other("six files"))?;
        let mut chain_file = create_file(&dir, CHAIN_FILE)?;
        // Held while this recorder lives: a recording whose chain nobody holds locked
        // and that was never sealed was cut (status.rs).
        crate::system::lock_exclusive(&chain_file)?;
        let header = chain::header_line(id.as_str(), &info.grant);
        chain_file.write_all(header.as_bytes())?;
        let now = Instant::now();
        Ok(Recorder {
            id,
            dir,
            files,
            chain: chain_file,
            record_input,
            previous: chain::header_hash(&header),
            number: 0,
            lengths: [0; 6],
            sealed: [0; 6],
            digests: Default::default(),
            last_event: now,
            last_seal: now,
            failed: None,
            durable: true,
        })
    }

    /// Whether `finish` syncs the recording to disk (the default) or leaves it to the
    /// kernel's writeback. The host makes a recording exactly as durable as the journal
    /// record that seals it (`[journal] durable`): syncing 200 MiB of output made its
    /// run a third slower, and a recording synced under a journal record that a power
    /// failure can lose anyway buys nothing. Either way a SIGKILL loses nothing, and a
    /// power failure that loses a tail is reported by `journal verify`, never hidden.
    pub fn durable(mut self, durable: bool) -> Recorder {
        self.durable = durable;
        self
    }

    /// Remove a recording that has recorded nothing yet (the run did not start after
    /// all); never one that holds a byte of the run.
    pub fn discard(self) -> io::Result<()> {
        if self.lengths.iter().any(|&n| n > 0) {
            return Err(io::Error::other(format!(
                "recording {} holds data; it is kept",
                self.id
            )));
        }
        fs::remove_dir_all(&self.dir)
    }

    pub fn id(&self) -> &RecordingId {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Record bytes that passed on `stream`. Input is skipped when the host config says
    /// not to record it.
    pub fn record(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        if data.is_empty() || stream.is_input() && !self.record_input {
            return self.check();
        }
        self.guarded(|r| {
            let delay = r.delay();
            r.append(index_of(stream), data)?;
            let line = format!("{} {} {}\n", stream as u32, delay, data.len());
            r.append(0, line.as_bytes())?;
            r.maybe_seal()
        })
    }

    /// Record a window-size change (sudo's event 5), which `sudoreplay` replays.
    pub fn window_size(&mut self, lines: u16, columns: u16) -> io::Result<()> {
        self.guarded(|r| {
            let delay = r.delay();
            let line = format!("{EVENT_WINSIZE} {delay} {lines} {columns}\n");
            r.append(0, line.as_bytes())?;
            r.maybe_seal()
        })
    }

    /// How long until the bytes not yet sealed are due for their chain line (`None`:
    /// nothing is unsealed). The supervisor wakes up then and calls
    /// [`Recorder::seal_if_due`], so output that stops is sealed within `SEAL_EVERY`
    /// even when nothing follows it: a supervisor killed later leaves it covered.
    pub fn seal_due_in(&self) -> Option<Duration> {
        if self.failed.is_some() || self.lengths == self.sealed {
            return None;
        }
        Some(SEAL_EVERY.saturating_sub(self.last_seal.elapsed()))
    }

    /// Seal what is unsealed if it has waited `SEAL_EVERY` (see `seal_due_in`).
    pub fn seal_if_due(&mut self) -> io::Result<()> {
        self.guarded(|r| r.maybe_seal())
    }

    /// Seal what is unsealed, sync everything to disk if durable, and mark the recording
    /// finished (the timing file loses its write bit, as sudo does).
    pub fn finish(mut self) -> io::Result<Seal> {
        self.guarded(|r| {
            r.seal()?;
            fs::set_permissions(r.dir.join("timing"), fs::Permissions::from_mode(0o400))?;
            if r.durable {
                for f in r.files.iter().chain(std::iter::once(&r.chain)) {
                    f.sync_all()?;
                }
                File::open(&r.dir)?.sync_all()?;
            }
            Ok(())
        })?;
        Ok(Seal {
            id: self.id.clone(),
            chunks: self.number,
            hash: chain::hex(&self.previous),
            bytes: self.lengths.iter().sum(),
        })
    }

    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some(e) => Err(io::Error::other(e.clone())),
            None => Ok(()),
        }
    }

    fn guarded(&mut self, f: impl FnOnce(&mut Recorder) -> io::Result<()>) -> io::Result<()> {
        self.check()?;
        f(self).map_err(|e| {
            let message = format!("recording {} in {}: {e}", self.id, self.dir.display());
            self.failed = Some(message.clone());
            io::Error::other(message)
        })
    }

    /// sudo's delay: seconds and nanoseconds since the previous event.
    fn delay(&mut self) -> String {
        let now = Instant::now();
        let d = now.duration_since(self.last_event);
        self.last_event = now;
        format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
    }

    fn append(&mut self, index: usize, bytes: &[u8]) -> io::Result<()> {
        self.files[index].write_all(bytes)?;
        self.digests[index].update(bytes);
        self.lengths[index] += bytes.len() as u64;
        Ok(())
    }

    fn maybe_seal(&mut self) -> io::Result<()> {
        let unsealed: u64 = self
            .lengths
            .iter()
            .zip(&self.sealed)
            .map(|(l, s)| l - s)
            .sum();
        if unsealed >= SEAL_BYTES || self.last_seal.elapsed() >= SEAL_EVERY {
            self.seal()?;
        }
        Ok(())
    }

    /// Write the chain line for everything since the last one (nothing if nothing new).
    fn seal(&mut self) -> io::Result<()> {
        self.last_seal = Instant::now();
        if self.lengths == self.sealed {
            return Ok(());
        }
        let number = self.number + 1;
        let digests: [Hash; 6] =
            std::array::from_fn(|i| std::mem::take(&mut self.digests[i]).finalize().into());
        let link = Link {
            number,
            lengths: self.lengths,
            hash: chain::link_hash(&self.previous, number, &self.lengths, &digests),
        };
        self.chain.write_all(link.line().as_bytes())?;
        self.previous = link.hash;
        self.number = number;
        self.sealed = self.lengths;
        Ok(())
    }
}

/// `log.json` (what sudo 1.9 reads) and the legacy `log` (what older tools read).
fn write_info(dir: &Path, info: &SessionInfo) -> io::Result<()> {
    create_file(dir, "log.json")?.write_all(log_json(info).as_bytes())?;

    // One line per field: a newline inside a value would start a new field, so it is
    // written as a space (the JSON file keeps the exact value).
    let flat = |s: &str| s.replace(['\n', '\r'], " ");
    let args: Vec<String> = info.argv.iter().skip(1).map(|a| flat(a)).collect();
    let mut command = flat(&info.command);
    if !args.is_empty() {
        command.push(' ');
        command.push_str(&args.join(" "));
    }
    let legacy = format!(
        "{}:{}:{}:{}:{}:{}:{}\n{}\n{}\n",
        info.started.0,
        flat(&info.user).replace(':', "_"),
        flat(&info.run_user).replace(':', "_"),
        flat(&info.run_group).replace(':', "_"),
        flat(&info.tty).replace(':', "_"),
        info.lines,
        info.columns,
        flat(&info.cwd),
        command
    );
    create_file(dir, "log")?.write_all(legacy.as_bytes())
}

/// sudo's `log.json`, one value per line as sudo writes it: sudoreplay's parser needs
/// white space after a number, so this is no compact JSON. (Written by hand rather than
/// through `serde_json::Value` and its pretty printer: this is the setuid image.)
fn log_json(info: &SessionInfo) -> String {
    let string = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut fields = vec![
        format!(
            "\"timestamp\": {{\n    \"seconds\": {},\n    \"nanoseconds\": {}\n  }}",
            info.started.0, info.started.1
        ),
        format!("\"columns\": {}", info.columns),
        format!("\"lines\": {}", info.lines),
        format!("\"command\": {}", string(&info.command)),
    ];
    let argv: Vec<String> = info
        .argv
        .iter()
        .map(|a| format!("    {}", string(a)))
        .collect();
    fields.push(if argv.is_empty() {
        "\"runargv\": []".to_string()
    } else {
        format!("\"runargv\": [\n{}\n  ]", argv.join(",\n"))
    });
    fields.push(format!("\"runuid\": {}", info.run_uid));
    fields.push(format!("\"rungid\": {}", info.run_gid));
    fields.push(format!("\"runuser\": {}", string(&info.run_user)));
    if !info.run_group.is_empty() {
        fields.push(format!("\"rungroup\": {}", string(&info.run_group)));
    }
    fields.push(format!("\"runcwd\": {}", string(&info.cwd)));
    fields.push(format!("\"submitcwd\": {}", string(&info.cwd)));
    fields.push(format!("\"submithost\": {}", string(&info.host)));
    fields.push(format!("\"submituser\": {}", string(&info.user)));
    fields.push(format!("\"ttyname\": {}", string(&info.tty)));
    format!("{{\n  {}\n}}\n", fields.join(",\n  "))
}
