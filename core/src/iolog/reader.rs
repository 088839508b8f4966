//! Reading a recording back: its `timing` events, and a replay of its output with the
//! recorded pauses (what `jitsudoctl replay` shows, and what `sudoreplay` does).
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use super::{Stream, EVENT_WINSIZE};

/// sudo's event number for a suspend/resume (written by sudo, read here for its logs).
const EVENT_SUSPEND: u32 = 7;

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Io {
        stream: Stream,
        delay: Duration,
        bytes: u64,
    },
    WindowSize {
        delay: Duration,
        lines: u16,
        columns: u16,
    },
    Suspend {
        delay: Duration,
        signal: String,
    },
}

impl Event {
    pub fn delay(&self) -> Duration {
        match self {
            Event::Io { delay, .. }
            | Event::WindowSize { delay, .. }
            | Event::Suspend { delay, .. } => *delay,
        }
    }
}

/// Parse one `timing` line (without its newline).
pub fn parse_timing_line(line: &str) -> Result<Event, String> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let bad = || format!("malformed timing line {line:?}");
    if words.len() < 3 {
        return Err(bad());
    }
    let event: u32 = words[0].parse().map_err(|_| bad())?;
    let delay = parse_delay(words[1]).ok_or_else(bad)?;
    match (event, &words[2..]) {
        (EVENT_WINSIZE, [lines, columns]) => Ok(Event::WindowSize {
            delay,
            lines: lines.parse().map_err(|_| bad())?,
            columns: columns.parse().map_err(|_| bad())?,
        }),
        (EVENT_SUSPEND, [signal]) => Ok(Event::Suspend {
            delay,
            signal: signal.to_string(),
        }),
        (n, [bytes]) => Ok(Event::Io {
            stream: Stream::from_event(n).ok_or_else(bad)?,
            delay,
            bytes: bytes.parse().map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

/// `SECONDS[.FRACTION]`, the fraction up to nanoseconds.
fn parse_delay(text: &str) -> Option<Duration> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let mut nanos = 0u32;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
    }
    Some(Duration::new(secs, nanos))
}

/// Every event of the recording in `dir`, in order. A last line without its newline
/// is one a killed writer left torn (a cut recording): it is not an event.
pub fn events(dir: &Path) -> Result<Vec<Event>, String> {
    let path = dir.join("timing");
    let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut line = String::new();
    for n in 1.. {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if read == 0 || !line.ends_with('\n') {
            break;
        }
        out.push(
            parse_timing_line(line.trim_end_matches('\n'))
                .map_err(|e| format!("{}:{n}: {e}", path.display()))?,
        );
    }
    Ok(out)
}

/// How to replay.
pub struct ReplayOptions {
    /// 2.0 plays twice as fast; 0 (or less) does not pause at all.
    pub speed: f64,
    /// No pause longer than this.
    pub max_delay: Option<Duration>,
}

/// Write the recording's output (ttyout, stdout and stderr) to `out`, pausing as
/// recorded.
pub fn replay(dir: &Path, out: &mut dyn Write, options: &ReplayOptions) -> Result<(), String> {
    let open = |s: Stream| File::open(dir.join(s.file_name())).ok();
    let mut ttyout = open(Stream::TtyOut);
    let mut stdout = open(Stream::Stdout);
    let mut stderr = open(Stream::Stderr);
    let mut buf = vec![0u8; 64 << 10];
    for event in events(dir)? {
        pause(event.delay(), options);
        let Event::Io { stream, bytes, .. } = event else {
            continue;
        };
        let source = match stream {
            Stream::TtyOut => ttyout.as_mut(),
            Stream::Stdout => stdout.as_mut(),
            Stream::Stderr => stderr.as_mut(),
            Stream::Stdin | Stream::TtyIn => continue,
        };
        let source = source
            .ok_or_else(|| format!("{}: {} is missing", dir.display(), stream.file_name()))?;
        let mut left = bytes;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            source
                .read_exact(&mut buf[..want])
                .map_err(|e| format!("{}/{}: {e}", dir.display(), stream.file_name()))?;
            out.write_all(&buf[..want]).map_err(|e| e.to_string())?;
            left -= want as u64;
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn pause(delay: Duration, options: &ReplayOptions) {
    if options.speed <= 0.0 {
        return;
    }
    let mut d = delay.div_f64(options.speed);
    if let Some(max) = options.max_delay {
        d = d.min(max);
    }
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// The recording's `log.json`.
pub fn info(dir: &Path) -> Result<serde_json::Value, String> {
    let path = dir.join("log.json");
    let mut text = String::new();
    File::open(&path)
        .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether the writer is done (sudo's rule: `timing` is no longer writable).
pub fn finished(dir: &Path) -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(dir.join("timing"))?.permissions().mode() & 0o222 == 0)
}
