//! The setuid-root `jitsudo` binary. All logic lives in the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    jitsudo::jitsudo_main()
}
