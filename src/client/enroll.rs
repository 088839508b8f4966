//! `jitsudo --enroll` (root): create this host's identity key if missing and print the
//! line an admin runs to register it with the approval service.
#![forbid(unsafe_code)]

use std::path::Path;

use super::hostkey;
use crate::log::{Outcome, Record};
use crate::pipeline::{Context, Refused};

pub fn enroll(ctx: &Context) -> Result<(), Refused> {
    let fail = |message: String| {
        ctx.audit
            .send_best_effort(&record(ctx, Outcome::Error(format!("enroll: {message}"))));
        Refused { message }
    };
    if ctx.caller.user.uid.get() != 0 {
        return Err(fail(
            "--enroll creates /etc/jitsudo/host.key and must be run by root".into(),
        ));
    }
    let (key, created) =
        hostkey::create_if_absent(Path::new(hostkey::HOST_KEY_PATH)).map_err(fail)?;
    let public = key.public.to_paserk();
    ctx.audit.send_best_effort(&record(
        ctx,
        Outcome::Event(if created {
            "created host key".into()
        } else {
            "host key exists".into()
        }),
    ));
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

fn record(ctx: &Context, outcome: Outcome) -> Record {
    Record {
        user: ctx.caller.user.name.clone(),
        outcome,
        tty: ctx.caller.tty.clone(),
        pwd: ctx.caller.cwd.clone(),
        run_as: None,
        grant: None,
        command: vec![],
    }
}
