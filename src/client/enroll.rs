//! `jitsudo --enroll` (root): create this host's identity key if missing and print the
//! line an admin runs to register it with the approval service.
#![forbid(unsafe_code)]

use std::path::Path;

use super::hostkey;
use crate::context::{Context, Refused};
use crate::log::Outcome;

pub fn enroll(ctx: &Context) -> Result<(), Refused> {
    let fail = |message: String| ctx.refuse("enroll", message);
    if ctx.caller.user.uid.get() != 0 {
        return Err(fail(
            "--enroll creates /etc/jitsudo/host.key and must be run by root".into(),
        ));
    }
    let (key, created) =
        hostkey::create_if_absent(Path::new(hostkey::HOST_KEY_PATH)).map_err(fail)?;
    let public = key.public.to_paserk();
    let event = if created {
        "created host key"
    } else {
        "host key exists"
    };
    ctx.audit
        .send_best_effort(&ctx.record(Outcome::Event(event.into()), None, vec![]));
    println!(
        "{} {} ({})",
        if created { "created" } else { "using existing" },
        hostkey::HOST_KEY_PATH,
        ctx.config.host
    );
    println!("public key: {public}");
    println!("register this host on the approval service (an admin runs):");
    println!("  jitsudoctl host add {} {public}", ctx.config.host);
    Ok(())
}
