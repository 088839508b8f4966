//! A recorded run's recorder, on a thread of its own. The supervisor hands it what the
//! relays captured, in the order they captured it, and goes on relaying while the
//! thread writes and hashes. SHA-256 of every byte a command prints costs about as much
//! as moving the bytes at all; on one thread it bounded a recorded command's output to
//! half its unrecorded speed (benches/RESULTS.md, scenario 5).
//!
//! Nothing is lost by the hand-over:
//! - a write that fails is reported at once on an alarm pipe the supervisor polls, so
//!   the run is stopped even when the command has gone quiet (`[record] on_error`);
//! - the queue is bounded: when the disk is slower than the command, the supervisor
//!   waits, so at most `IN_FLIGHT` captures are ever between a relay and the disk;
//! - output that stops is sealed within a second by the thread's own timer.
//!
//! The output pipes' buffers come back for reuse, so steady output allocates nothing.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::iolog::writer::{Recorder, Seal};
use crate::iolog::Stream;
use crate::system;

/// Captures queued for the thread before the supervisor waits for it.
const IN_FLIGHT: usize = 2;

/// What the relays captured, for the recording.
enum Event {
    /// `bytes[..len]` passed on `stream`. An output pipe's buffer (`reuse`) goes back
    /// to the supervisor once written.
    Data {
        stream: Stream,
        bytes: Vec<u8>,
        len: usize,
        reuse: bool,
    },
    Size(u16, u16),
}

/// What the supervisor and the thread share, under one lock. (A queue of our own, not
/// `std::sync::mpsc`: this is the setuid image, and the channels are 10 KiB of it.)
#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    /// Output buffers the thread has finished with.
    spare: Vec<Vec<u8>>,
    /// Why the recording failed (taken by the supervisor).
    failure: Option<String>,
    /// The supervisor has queued its last event.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when an event is queued or taken, and at the close.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock ends the process (panic = "abort" in the setuid
        // image); under test, what the queue holds is still consistent.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(super) struct RecordingThread {
    id: String,
    shared: Arc<Shared>,
    /// Readable once a write has failed; the supervisor polls it.
    pub(super) alarm: File,
    thread: JoinHandle<io::Result<Seal>>,
}

impl RecordingThread {
    /// Start the thread. The caller has forked everything it forks: this process is
    /// single-threaded no longer. The thread inherits our blocked signals, so every
    /// signal still reaches the supervisor's signalfd.
    pub(super) fn start(recorder: Recorder) -> io::Result<RecordingThread> {
        let id = recorder.id().to_string();
        let (alarm, alarm_write) = system::pipe()?;
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || record(recorder, &theirs, alarm_write))?;
        Ok(RecordingThread {
            id,
            shared,
            alarm,
            thread,
        })
    }

    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// A buffer the thread has finished with, if one is back.
    pub(super) fn spare(&self) -> Option<Vec<u8>> {
        self.shared.lock().spare.pop()
    }

    /// Queue an output pipe's buffer, `bytes[..len]` on `stream`; it comes back through
    /// [`RecordingThread::spare`]. Waits while `IN_FLIGHT` captures are queued.
    pub(super) fn output(&self, stream: Stream, bytes: Vec<u8>, len: usize) {
        self.send(Event::Data {
            stream,
            bytes,
            len,
            reuse: true,
        })
    }

    /// Queue bytes the terminal relay captured.
    pub(super) fn data(&self, stream: Stream, bytes: Vec<u8>) {
        let len = bytes.len();
        self.send(Event::Data {
            stream,
            bytes,
            len,
            reuse: false,
        })
    }

    pub(super) fn window_size(&self, rows: u16, columns: u16) {
        self.send(Event::Size(rows, columns))
    }

    /// Why the recording failed, once the alarm has gone off.
    pub(super) fn failure(&self) -> Option<String> {
        self.shared.lock().failure.take()
    }

    /// Everything queued is written; seal the recording and end the thread.
    pub(super) fn finish(self) -> io::Result<Seal> {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        match self.thread.join() {
            Ok(sealed) => sealed,
            Err(_) => Err(io::Error::other(format!(
                "recording {}: the recorder thread panicked",
                self.id
            ))),
        }
    }

    fn send(&self, event: Event) {
        let mut queue = self.shared.lock();
        // After a failure the thread drops events as they come, so this never waits long.
        // A thread that is gone (it panicked: only where panics unwind, under test) takes
        // nothing more; its alarm pipe has closed, and the run is stopped.
        while queue.events.len() >= IN_FLIGHT {
            if self.thread.is_finished() {
                return;
            }
            queue = self
                .shared
                .changed
                .wait_timeout(queue, Duration::from_millis(100))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        queue.events.push_back(event);
        drop(queue);
        self.shared.changed.notify_all();
    }
}

/// The thread: write each event in order, seal on time, and finish when the supervisor
/// has closed the queue and it is empty. After a failure every later write fails too
/// (the recorder's error is sticky), and events are still taken, so the supervisor never
/// waits on a dead recording.
fn record(mut recorder: Recorder, shared: &Shared, mut alarm: File) -> io::Result<Seal> {
    let mut reported = false;
    loop {
        let written = match next(shared, recorder.seal_due_in()) {
            Next::Closed => break,
            // Output that stopped is sealed within a second, not at the next output.
            Next::SealDue => recorder.seal_if_due(),
            Next::Event(event) => {
                // Room in the queue: the supervisor may be waiting for it.
                shared.changed.notify_all();
                match event {
                    Event::Data {
                        stream,
                        bytes,
                        len,
                        reuse,
                    } => {
                        let written = recorder.record(stream, &bytes[..len]);
                        if reuse {
                            shared.lock().spare.push(bytes);
                        }
                        written
                    }
                    Event::Size(rows, columns) => recorder.window_size(rows, columns),
                }
            }
        };
        report(written, shared, &mut reported, &mut alarm);
    }
    recorder.finish()
}

enum Next {
    Event(Event),
    /// Nothing came before unsealed bytes were due for their chain line.
    SealDue,
    /// The supervisor has closed the queue, and everything in it is taken.
    Closed,
}

/// Wait for the next event, at most `due` (none: as long as it takes).
fn next(shared: &Shared, due: Option<Duration>) -> Next {
    let deadline = due.map(|due| Instant::now() + due);
    let mut queue = shared.lock();
    loop {
        if let Some(event) = queue.events.pop_front() {
            return Next::Event(event);
        }
        if queue.closed {
            return Next::Closed;
        }
        queue = match deadline {
            None => shared
                .changed
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Next::SealDue;
                }
                shared
                    .changed
                    .wait_timeout(queue, left)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0
            }
        };
    }
}

/// The first failure goes to the supervisor: its text in the queue, a byte on the alarm.
fn report(written: io::Result<()>, shared: &Shared, reported: &mut bool, alarm: &mut File) {
    if let Err(e) = written {
        if !*reported {
            *reported = true;
            shared.lock().failure = Some(e.to_string());
            let _ = alarm.write_all(b"!");
        }
    }
}
