//! `/usr/libexec/jitsudo/jitsudo-nss`: user and group lookups through glibc's NSS for
//! the statically linked (musl) `jitsudo`, which has no NSS of its own. Not setuid;
//! jitsudo runs it as root with an empty environment. See `jitsudo_core::system::nss`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if cfg!(not(target_env = "gnu")) {
        eprintln!("jitsudo-nss: must be built against glibc (it is the NSS bridge for musl)");
        return ExitCode::from(2);
    }
    match jitsudo_core::system::nss::helper_main(&args, &mut std::io::stdout().lock()) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("jitsudo-nss: {e}");
            ExitCode::from(2)
        }
    }
}
