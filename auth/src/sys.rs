//! Every call into libpam and libc for the helper, each `unsafe` block with a `// SAFETY:`
//! note. The rest of the crate sees `Pam` (a started PAM transaction), the
//! `Conversation` trait it talks through, and `Terminal` (the caller's /dev/tty).

use std::ffi::{CStr, CString};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::OnceLock;

use libc::{c_char, c_int, c_void};
use pam::constants::{
    PamResultCode, PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO,
};
use pam::items::ItemType;
use zeroize::{Zeroize, Zeroizing};

// ---- libpam, application side ----------------------------------------------------------

/// `struct pam_message` (security/_pam_types.h).
#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

/// `struct pam_response`; libpam frees `resp` and the array with free(3).
#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

/// `struct pam_conv`.
#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

/// Opaque `pam_handle_t`.
#[repr(C)]
struct PamHandleT {
    _private: [u8; 0],
}

#[link(name = "pam")]
extern "C" {
    fn pam_start(
        service_name: *const c_char,
        user: *const c_char,
        pam_conversation: *const PamConv,
        pamh: *mut *mut PamHandleT,
    ) -> c_int;
    fn pam_end(pamh: *mut PamHandleT, pam_status: c_int) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandleT, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut PamHandleT, flags: c_int) -> c_int;
    fn pam_set_item(pamh: *mut PamHandleT, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_strerror(pamh: *mut PamHandleT, errnum: c_int) -> *const c_char;
}

/// Linux-PAM's limit on messages in one conversation call (PAM_MAX_NUM_MSG).
const MAX_NUM_MSG: c_int = 32;
/// Longest answer we accept (PAM_MAX_RESP_SIZE).
const MAX_RESPONSE: usize = 512;

pub const SUCCESS: c_int = PamResultCode::PAM_SUCCESS as c_int;
const CONV_ERR: c_int = PamResultCode::PAM_CONV_ERR as c_int;
const BUF_ERR: c_int = PamResultCode::PAM_BUF_ERR as c_int;

/// What a PAM module may ask of the user.
pub trait Conversation {
    /// One line of input after showing `prompt`; `None` when it cannot be asked.
    fn ask(&mut self, prompt: &str, echo: bool) -> Option<Zeroizing<Vec<u8>>>;
    /// A message to show (`error`: PAM_ERROR_MSG, else PAM_TEXT_INFO).
    fn tell(&mut self, text: &str, error: bool);
}

/// A started PAM transaction; `pam_end` runs on drop.
pub struct Pam<C: Conversation> {
    handle: *mut PamHandleT,
    /// Boxed so the address registered with libpam as `appdata_ptr` never moves.
    conversation: Box<C>,
    last: c_int,
}

impl<C: Conversation> Pam<C> {
    /// `pam_start(service, user, conv)`; on failure, the PAM result code.
    pub fn start(service: &CStr, user: &CStr, conversation: C) -> Result<Pam<C>, c_int> {
        let mut conversation = Box::new(conversation);
        let conv = PamConv {
            conv: Some(converse::<C>),
            appdata_ptr: (&mut *conversation as *mut C).cast::<c_void>(),
        };
        let mut handle: *mut PamHandleT = std::ptr::null_mut();
        // SAFETY: service and user are NUL-terminated; libpam copies `conv` (the struct)
        // and keeps `appdata_ptr`, which points into the box owned by the returned `Pam`
        // and so stays valid until pam_end in Drop; handle is valid for writes.
        let ret = unsafe { pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut handle) };
        if ret != SUCCESS || handle.is_null() {
            return Err(if ret == SUCCESS { BUF_ERR } else { ret });
        }
        Ok(Pam {
            handle,
            conversation,
            last: SUCCESS,
        })
    }

    /// Set a string item (PAM_TTY, PAM_RUSER, ...).
    pub fn set_item(&mut self, item: ItemType, value: &CStr) -> Result<(), c_int> {
        // SAFETY: handle is live; libpam copies the NUL-terminated string.
        let ret =
            unsafe { pam_set_item(self.handle, item as c_int, value.as_ptr().cast::<c_void>()) };
        if ret == SUCCESS {
            Ok(())
        } else {
            Err(ret)
        }
    }

    pub fn authenticate(&mut self) -> c_int {
        // SAFETY: handle is live; the conversation it calls borrows `self.conversation`,
        // which nothing else touches while we hold `&mut self`.
        self.last = unsafe { pam_authenticate(self.handle, 0) };
        self.last
    }

    pub fn acct_mgmt(&mut self) -> c_int {
        // SAFETY: as for authenticate.
        self.last = unsafe { pam_acct_mgmt(self.handle, 0) };
        self.last
    }

    /// libpam's text for a result code.
    pub fn describe(&self, code: c_int) -> String {
        // SAFETY: handle is live; pam_strerror returns a static string or null.
        let text = unsafe { pam_strerror(self.handle, code) };
        if text.is_null() {
            return format!("PAM error {code}");
        }
        // SAFETY: a non-null result is a NUL-terminated static string.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }

    pub fn conversation(&mut self) -> &mut C {
        &mut self.conversation
    }
}

impl<C: Conversation> Drop for Pam<C> {
    fn drop(&mut self) {
        // SAFETY: handle came from a successful pam_start and is ended exactly once.
        unsafe { pam_end(self.handle, self.last) };
    }
}

/// The conversation function libpam calls. Never unwinds into C.
extern "C" fn converse<C: Conversation>(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: libpam passes the arguments as documented in pam_conv(3), and
        // appdata_ptr is the `C` registered by `Pam::<C>::start`.
        unsafe { converse_inner::<C>(num_msg, msg, resp, appdata_ptr) }
    }))
    .unwrap_or(CONV_ERR)
}

/// # Safety
/// `msg` must point to `num_msg` message pointers (Linux-PAM layout), `resp` must be
/// valid for a write, and `appdata_ptr` must point to a live `C`.
// SAFETY: an unsafe fn so its one caller (`converse`) states why libpam's pointers hold.
unsafe fn converse_inner<C: Conversation>(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    if !(1..=MAX_NUM_MSG).contains(&num_msg)
        || msg.is_null()
        || resp.is_null()
        || appdata_ptr.is_null()
    {
        return CONV_ERR;
    }
    let count = num_msg as usize;
    // SAFETY: guaranteed by the caller; no other reference to the conversation exists
    // while libpam is inside pam_authenticate / pam_acct_mgmt.
    let app = unsafe { &mut *appdata_ptr.cast::<C>() };
    // SAFETY: calloc has no preconditions; zeroed responses have null `resp` pointers.
    let replies =
        unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if replies.is_null() {
        return BUF_ERR;
    }
    for i in 0..count {
        // SAFETY: `msg` holds `count` pointers (caller's guarantee).
        let message = unsafe { *msg.add(i) };
        if message.is_null() {
            // SAFETY: replies holds `count` entries from calloc.
            unsafe { free_replies(replies, count) };
            return CONV_ERR;
        }
        // SAFETY: a non-null message pointer points to a valid pam_message.
        let message = unsafe { &*message };
        let text = if message.msg.is_null() {
            String::new()
        } else {
            // SAFETY: the message text is a NUL-terminated string owned by the module.
            unsafe { CStr::from_ptr(message.msg) }
                .to_string_lossy()
                .into_owned()
        };
        match message.msg_style {
            PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON => {
                let Some(answer) = app.ask(&text, message.msg_style == PAM_PROMPT_ECHO_ON) else {
                    // SAFETY: as above.
                    unsafe { free_replies(replies, count) };
                    return CONV_ERR;
                };
                let len = answer
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(answer.len())
                    .min(MAX_RESPONSE);
                // SAFETY: malloc has no preconditions.
                let copy = unsafe { libc::malloc(len + 1) }.cast::<c_char>();
                if copy.is_null() {
                    // SAFETY: as above.
                    unsafe { free_replies(replies, count) };
                    return BUF_ERR;
                }
                // SAFETY: copy has len + 1 bytes; answer has at least len bytes; the
                // regions cannot overlap (fresh allocation).
                unsafe {
                    std::ptr::copy_nonoverlapping(answer.as_ptr().cast::<c_char>(), copy, len);
                    *copy.add(len) = 0;
                    (*replies.add(i)).resp = copy;
                }
            }
            PAM_ERROR_MSG => app.tell(&text, true),
            PAM_TEXT_INFO => app.tell(&text, false),
            _ => {
                // SAFETY: as above.
                unsafe { free_replies(replies, count) };
                return CONV_ERR;
            }
        }
    }
    // SAFETY: resp is valid for a write (caller's guarantee); libpam frees the array.
    unsafe { *resp = replies };
    SUCCESS
}

/// Wipe and free the answers given so far, then the array.
///
/// # Safety
/// `replies` must come from calloc with `count` entries whose `resp` are null or malloc'd
/// NUL-terminated strings.
// SAFETY: an unsafe fn so each caller states where `replies` came from.
unsafe fn free_replies(replies: *mut PamResponse, count: usize) {
    for i in 0..count {
        // SAFETY: i < count.
        let reply = unsafe { &mut *replies.add(i) };
        if !reply.resp.is_null() {
            // SAFETY: resp is a NUL-terminated string we allocated.
            let len = unsafe { libc::strlen(reply.resp) };
            // SAFETY: resp has len writable bytes.
            unsafe { std::slice::from_raw_parts_mut(reply.resp.cast::<u8>(), len) }.zeroize();
            // SAFETY: allocated with malloc, freed once.
            unsafe { libc::free(reply.resp.cast::<c_void>()) };
        }
    }
    // SAFETY: allocated with calloc, freed once.
    unsafe { libc::free(replies.cast::<c_void>()) };
}

// ---- process ---------------------------------------------------------------------------

/// True when real and effective uid are both root (how jitsudo runs this helper).
pub fn running_as_root() -> bool {
    // SAFETY: getuid/geteuid cannot fail.
    unsafe { libc::getuid() == 0 && libc::geteuid() == 0 }
}

// ---- the caller's terminal -------------------------------------------------------------

/// Terminal settings to put back if a signal ends us while echo is off.
static SAVED_TERMIOS: OnceLock<libc::termios> = OnceLock::new();
static SAVED_FD: AtomicI32 = AtomicI32::new(-1);
static ECHO_OFF: AtomicBool = AtomicBool::new(false);

/// Signals that end us while reading a password; the handler restores echo first.
const FATAL_SIGNALS: [c_int; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn restore_echo_and_die(signal: c_int) {
    if ECHO_OFF.load(Ordering::SeqCst) {
        if let Some(saved) = SAVED_TERMIOS.get() {
            // SAFETY: tcsetattr is async-signal-safe; `saved` is initialised.
            unsafe { libc::tcsetattr(SAVED_FD.load(Ordering::SeqCst), libc::TCSANOW, saved) };
        }
    }
    // SAFETY: SA_RESETHAND already restored the default action; raise is
    // async-signal-safe and ends the process the way the signal meant to.
    unsafe { libc::raise(signal) };
}

/// The controlling terminal of the caller, `/dev/tty`.
pub struct Terminal {
    file: File,
}

impl Terminal {
    /// `None` when the process has no controlling terminal.
    pub fn open() -> Option<Terminal> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/tty")
            .ok()
            .map(|file| Terminal { file })
    }

    pub fn write(&mut self, text: &str) {
        let _ = self.file.write_all(text.as_bytes());
        let _ = self.file.flush();
    }

    /// Show `prompt` and read one line (without its newline). With `echo` false the
    /// terminal stops showing what is typed before the prompt appears (so nothing typed
    /// at the prompt is shown), and a signal that ends us puts echo back first.
    pub fn ask(&mut self, prompt: &str, echo: bool) -> io::Result<Zeroizing<Vec<u8>>> {
        if echo {
            self.write(prompt);
            return self.read_raw_line();
        }
        let fd = self.file.as_raw_fd();
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is open; saved is valid for writes.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let _ = SAVED_TERMIOS.set(saved);
        SAVED_FD.store(fd, Ordering::SeqCst);
        let old_tstp = install_echo_guards();
        let mut quiet = saved;
        quiet.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHONL);
        ECHO_OFF.store(true, Ordering::SeqCst);
        // SAFETY: fd is open; quiet is an initialised termios. TCSADRAIN keeps what was
        // typed ahead, as sudo does.
        let line = if unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, &quiet) } != 0 {
            Err(io::Error::last_os_error())
        } else {
            self.write(prompt);
            self.read_raw_line()
        };
        // SAFETY: as above, with the settings read at the start.
        unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, &saved) };
        ECHO_OFF.store(false, Ordering::SeqCst);
        // SAFETY: restores the SIGTSTP disposition saved by install_echo_guards.
        unsafe { libc::signal(libc::SIGTSTP, old_tstp) };
        self.write("\n");
        line
    }

    fn read_raw_line(&mut self) -> io::Result<Zeroizing<Vec<u8>>> {
        let mut line = Zeroizing::new(Vec::with_capacity(64));
        let mut byte = [0u8; 1];
        loop {
            match self.file.read(&mut byte) {
                Ok(0) if line.is_empty() => {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof))
                }
                Ok(0) => break,
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) if line.len() < MAX_RESPONSE => line.push(byte[0]),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        byte.zeroize();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }
}

/// Handlers that restore echo before a fatal signal ends us, and SIGTSTP ignored while
/// echo is off (a stopped helper would leave the terminal silent). Returns the previous
/// SIGTSTP disposition.
fn install_echo_guards() -> libc::sighandler_t {
    for signal in FATAL_SIGNALS {
        // SAFETY: sigaction is plain data; zeroed is a valid value (empty mask).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = restore_echo_and_die as extern "C" fn(c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND;
        // SAFETY: action is initialised; the handler only makes async-signal-safe calls.
        unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
    }
    // SAFETY: setting SIG_IGN takes no pointers.
    unsafe { libc::signal(libc::SIGTSTP, libc::SIG_IGN) }
}

/// A C string for libpam, refusing interior NULs.
pub fn c_string(text: &str) -> Option<CString> {
    CString::new(text).ok()
}
