//! `jitsudod`: the approval service. See the library for everything it does.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use jitsudod::cli::{Cli, Command};
use jitsudod::store::Db;
use jitsudod::{config, serve, service};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JITSUDOD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve { config, fake_now } => run_serve(config, fake_now),
        Command::AddAdmin {
            name,
            groups,
            config,
        } => add_admin(&config, &name, &groups),
        Command::CheckPolicy { file } => jitsudo_policy::policy::load(&file)
            .map(|p| {
                println!("{}: {} rule(s) OK", file.display(), p.rules.len());
            })
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jitsudod: {e}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn run_serve(config: PathBuf, fake_now: Option<String>) -> Result<(), String> {
    let fake_now = match fake_now {
        None => None,
        Some(t) => {
            Some(jitsudo_core::grant::parse_time(&t).map_err(|e| format!("--fake-now: {e}"))?)
        }
    };
    runtime()?.block_on(serve::serve(serve::Options { config, fake_now }))
}

fn add_admin(config: &std::path::Path, name: &str, groups: &[String]) -> Result<(), String> {
    if !jitsudo_core::grant::valid_user_name(name)
        || groups
            .iter()
            .any(|g| !jitsudo_core::grant::valid_user_name(g))
    {
        return Err(format!("{name:?} (or a group) is not a valid name"));
    }
    let cfg = config::load(config)?;
    runtime()?.block_on(async {
        let db = Db::connect(&cfg.database).await.map_err(|e| e.to_string())?;
        let token = service::new_api_token()?;
        db.add_approver(name, groups, &service::token_hash(&token), true, jitsudo_core::grant::now())
            .await
            .map_err(|e| e.to_string())?;
        db.close().await;
        eprintln!("admin {name} created; this token is shown once (store it, e.g. in a file read with --token-file):");
        println!("{token}");
        Ok(())
    })
}
