//! `jitsudoctl`: the admin tool (keys, offline grants). Not setuid.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    jitsudoctl::ctl::ctl_main()
}
