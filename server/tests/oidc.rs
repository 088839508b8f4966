//! Approvers sign in to the web page through a real OpenID provider started here (the
//! npm package oidc-provider, OpenID Certified, on 127.0.0.1, configured by
//! tests/oidc/provider.mjs), in a real headless Chromium: sign-in; groups from the ID
//! token counting for `approvers = ["group:sre"]` (bob is no registered approver);
//! an approval counted and its audit record naming how bob authenticated; a rule with
//! `approver_mfa = true` sending him back to the provider until he signs in with a
//! second factor; ID tokens with another audience, expired, signed by an unknown key
//! or tampered with refused; a replayed `state` refused (in this browser and from
//! another client); the provider's signing key rotated, and the next sign-in working;
//! `jitsudoctl login` (the device authorization grant, confirmed in the browser), its
//! token used, refused once altered, removed by `logout`; a person in no group signed
//! in but refused the approval.
//!
//! Needs chromium, chromium-driver, nodejs and npm (Debian); installs oidc-provider
//! under target/oidc-provider with npm. Fails, not skips, without them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::browser::{agent, Driver};
use common::TempDir;
use jitsudo_core::grant::keys::SecretKey;
use jitsudo_core::wire::{self, NewRequest, Signed};
use jitsudo_testbed::{artifact, run_ok};
use serde_json::Value;

const PROVIDER_VERSION: &str = "8.8.1";
const CLIENT_SECRET: &str = "test-client-secret-0123456789";

const POLICY: &str = r#"
[[rule]]
name = "sre-approves"
commands = ["/usr/bin/whoami"]
decision = "approve"
approvers = ["group:sre"]

[[rule]]
name = "with-mfa"
commands = ["/usr/bin/uptime"]
decision = "approve"
approvers = ["group:sre"]
approver_mfa = true
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// target/oidc-provider: the npm package, installed once, and the provider script.
fn provider_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| jitsudo_testbed::workspace_root().join("target"));
    let dir = target.join("oidc-provider");
    let installed = dir.join("node_modules/oidc-provider/package.json").exists();
    if !installed {
        for bin in ["/usr/bin/node", "/usr/bin/npm"] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: this test runs a real OpenID provider (apt-get install -y nodejs npm)"
            );
        }
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&dir)
            .arg(format!("oidc-provider@{PROVIDER_VERSION}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "npm install oidc-provider failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(dir.join("provider.mjs"), include_str!("oidc/provider.mjs")).unwrap();
    dir
}

/// The node process of the provider; killed on drop.
struct Provider {
    child: Child,
    url: String,
}

impl Provider {
    fn start(dir: &Path, port: u16, redirect: &str, kid: &str, log: &Path) -> Provider {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .current_dir(dir)
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT", redirect)
            .env("OIDC_KID", kid)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start node");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = agent()
                .get(format!("{url}/.well-known/openid-configuration"))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the OpenID provider did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Provider { child, url }
    }

    fn get(&self, path: &str) -> Value {
        agent()
            .get(format!("{}{path}", self.url))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// jitsudod with `[oidc]` on a port chosen before (the provider knows its callback).
struct Svc {
    child: Child,
    url: String,
    admin: String,
    dir: TempDir,
}

impl Drop for Svc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Svc {
    fn start(port: u16, issuer: &str) -> Svc {
        let dir = TempDir::new("oidc-svc");
        let d = dir.path();
        run_ok(
            Command::new(artifact("jitsudoctl"))
                .args(["keygen", "--id", "k1", "--out"])
                .arg(d.join("keys")),
        );
        std::fs::write(d.join("policy.toml"), POLICY).unwrap();
        let secret = d.join("oidc.secret");
        std::fs::write(&secret, CLIENT_SECRET).unwrap();
        let config = d.join("jitsudod.toml");
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{}/db.sqlite\"\npolicy = \"policy.toml\"\nactive_key = \"k1\"\n\
             [[signing_key]]\nfile = \"keys/k1.key\"\n\
             [oidc]\nissuer = \"{issuer}\"\nclient_id = \"jitsudod\"\nclient_secret_file = \"oidc.secret\"\n\
             redirect_url = \"http://127.0.0.1:{port}/ui/oidc/callback\"\nacr_values = \"mfa\"\ncli_client_id = \"jitsudoctl\"\n",
            d.display()
        );
        std::fs::write(&config, &text).unwrap();
        // The client secret must be its owner's alone, as the Slack secret.
        let mode = |m: u32| {
            std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(m))
                .unwrap()
        };
        mode(0o644);
        let refused = Command::new(artifact("jitsudod"))
            .args(["add-admin", "admin", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && err.contains("oidc.secret") && err.contains("chmod 600"),
            "a client secret readable by others is refused: {err}"
        );
        mode(0o600);
        let admin = run_ok(
            Command::new(artifact("jitsudod"))
                .args(["add-admin", "admin", "--config"])
                .arg(&config),
        );
        let admin = String::from_utf8(admin.stdout).unwrap().trim().to_string();
        let (child, url) = jitsudo_testbed::serve(&config, None, &d.join("service.log"));
        Svc {
            child,
            url,
            admin,
            dir,
        }
    }

    fn get_json(&self, path: &str) -> Value {
        agent()
            .get(format!("{}{path}", self.url))
            .header("authorization", format!("Bearer {}", self.admin))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }

    fn ask(&self, key: &SecretKey, user: &str, argv: &[&str]) -> String {
        let body = NewRequest {
            kind: jitsudo_core::grant::Kind::Exec,
            user: user.into(),
            uid: 1000,
            groups: vec![],
            run_as: "root".into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            reason: "INC-1 look".into(),
            duration: None,
            once: false,
            source: None,
            ticket: None,
            extends: None,
        };
        let env = wire::sign_envelope(
            key,
            "web-01",
            wire::PATH_REQUESTS,
            jitsudo_core::grant::now(),
            &body,
        )
        .unwrap();
        let v: Value = agent()
            .post(format!("{}{}", self.url, wire::PATH_REQUESTS))
            .header("content-type", "application/json")
            .send(serde_json::to_string(&Signed { envelope: env }).unwrap())
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        v["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_string()
    }

    fn approval_auth(&self, id: &str) -> Vec<Value> {
        let Value::Array(records) = self.get_json(&format!("/v1/audit?request={id}")) else {
            panic!("audit")
        };
        records
            .iter()
            .filter(|r| r["kind"] == "request.approval")
            .map(|r| match &r["detail"] {
                Value::String(t) => serde_json::from_str::<Value>(t).unwrap()["auth"].clone(),
                other => other["auth"].clone(),
            })
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }
}

/// At the provider's sign-in form: sign in as `who`, with or without the second factor.
fn provider_form(b: &Driver, who: &str, mfa: bool) {
    b.find("#login");
    b.type_into("#login", who);
    if mfa {
        b.click("#mfa");
    }
    b.submit("#submit");
}

/// Wait until the browser shows the page (the callback's page moves on by itself).
fn wait_signed_in(b: &Driver, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.find_all("#me").is_empty() {
        assert!(Instant::now() < deadline, "not signed in: {}", b.source());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(b.text("#me"), who);
}

fn sign_out(b: &Driver) {
    b.submit("header button[type=submit]");
    b.find("#token");
}

#[test]
fn approvers_sign_in_through_a_real_openid_provider() {
    common::require_root();
    let modules = provider_dir();
    let (svc_port, idp_port) = (free_port(), free_port());
    let redirect = format!("http://127.0.0.1:{svc_port}/ui/oidc/callback");
    let logs = TempDir::new("oidc-logs");
    let idp_log = logs.path().join("provider.log");
    let mut idp = Provider::start(&modules, idp_port, &redirect, "key-1", &idp_log);
    let svc = Svc::start(svc_port, &idp.url);
    let key = SecretKey::generate("host").unwrap();
    run_ok(
        Command::new(artifact("jitsudoctl"))
            .env("JITSUDO_SERVICE", &svc.url)
            .env("JITSUDO_TOKEN", &svc.admin)
            .args(["host", "add", "web-01", &key.public.to_paserk()]),
    );
    let plain = svc.ask(&key, "alice", &["/usr/bin/whoami"]);
    let mfa_req = svc.ask(&key, "alice", &["/usr/bin/uptime"]);

    // Sign-in: the page offers the provider; bob signs in there (password only).
    let b = Driver::start();
    b.go(&format!("{}/ui", svc.url));
    b.click("#oidc");
    assert!(b.text("#prompt").contains("login"), "{}", b.source());
    provider_form(&b, "bob", false);
    wait_signed_in(&b, "bob");
    let session = b.cookie("jitsudo_session");
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");

    // A replayed state: the callback this browser just used, again.
    let last = idp.get("/test/last-callback")["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(last.contains("state=") && last.contains("code="), "{last}");
    // From another client that even brings the state's cookie: the state was taken.
    let state = last
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("state="))
        .unwrap()
        .to_string();
    let state_cookie = {
        use sha2::Digest;
        jitsudo_policy::audit::hex(&sha2::Sha256::digest(state.as_bytes()))
    };
    let replay = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
        .get(&last)
        .header("cookie", format!("jitsudo_oidc_state={state_cookie}"))
        .call()
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert!(
        replay
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("jitsudo_session=")),
        "no session for a replayed state"
    );
    let body = replay.into_body().read_to_string().unwrap();
    assert!(body.contains("was used already"), "{body}");

    // Groups: bob is in sre by the ID token alone, and his approval counts.
    let card = format!("#req-{plain}");
    b.type_into(
        &format!("{card} form[action='/ui/approve'] input[name=comment]"),
        "via the IdP",
    );
    b.submit(&format!("{card} button.approve"));
    assert!(
        b.text("#flash").contains("approved; grant"),
        "{}",
        b.source()
    );
    let view = svc.get_json(&format!("/v1/requests/{plain}"));
    assert_eq!(view["status"], "approved", "{view}");
    let auth = svc.approval_auth(&plain);
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0]["method"], "oidc", "{auth:?}");
    assert_eq!(auth[0]["issuer"], idp.url.as_str(), "{auth:?}");
    assert_eq!(auth[0]["amr"], serde_json::json!(["pwd"]), "{auth:?}");
    assert_eq!(auth[0]["mfa"], false, "{auth:?}");

    // MFA: the rule counts only an approval with a second factor; bob is sent back to
    // the provider for a fresh login, first signs in without one (still not counted),
    // then with one.
    let card = format!("#req-{mfa_req}");
    b.submit(&format!("{card} button.approve"));
    assert!(b.text("#prompt").contains("login"), "{}", b.source());
    provider_form(&b, "bob", false);
    wait_signed_in(&b, "bob");
    assert!(svc.approval_auth(&mfa_req).is_empty());
    b.submit(&format!("{card} button.approve"));
    provider_form(&b, "bob", true);
    wait_signed_in(&b, "bob");
    assert!(
        svc.approval_auth(&mfa_req).is_empty(),
        "nothing counted yet"
    );
    b.submit(&format!("{card} button.approve"));
    assert!(
        b.text("#flash").contains("approved; grant"),
        "{}",
        b.source()
    );
    let auth = svc.approval_auth(&mfa_req);
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(auth[0]["mfa"], true, "{auth:?}");
    assert_eq!(auth[0]["acr"], "mfa", "{auth:?}");
    assert!(
        auth[0]["amr"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "otp"),
        "{auth:?}"
    );
    // The same rule refuses a token approver outright, naming the reason.
    let carol_req = svc.ask(&key, "alice", &["/usr/bin/uptime"]);
    let carol = {
        let out = run_ok(
            Command::new(artifact("jitsudoctl"))
                .env("JITSUDO_SERVICE", &svc.url)
                .env("JITSUDO_TOKEN", &svc.admin)
                .args(["approver", "add", "carol", "--group", "sre"]),
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let out = Command::new(artifact("jitsudoctl"))
        .env("JITSUDO_SERVICE", &svc.url)
        .env("JITSUDO_TOKEN", &carol)
        .args(["approve", &carol_req])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("approver_mfa") && err.contains("MFA"),
        "{err}"
    );

    // ID tokens the provider's token endpoint hands back with a fault are refused, and
    // sign nobody in.
    sign_out(&b);
    for (fault, why) in [
        ("aud", "Invalid audiences"),
        ("expired", "Expired"),
        ("unknown-key", "Signature verification failed"),
        ("tampered", "Signature verification failed"),
    ] {
        assert_eq!(
            idp.get(&format!("/test/next?mutate={fault}"))["mutate"],
            fault
        );
        b.go(&format!("{}/ui/oidc/login", svc.url));
        let text = b.text("#error");
        assert!(
            text.contains("Sign-in refused") && text.contains(why),
            "{fault}: {text}"
        );
        b.go(&format!("{}/ui", svc.url));
        b.find("#token");
        assert!(b.find_all("#me").is_empty(), "{fault}: signed in");
    }
    assert!(svc
        .log()
        .contains("sign-in through the identity provider refused"));

    // The replayed callback in this browser: its state cookie is gone with the sign-in.
    b.go(&last);
    assert!(b.text("#error").contains("state refused"), "{}", b.source());

    // Key rotation: the provider restarts with a new signing key; the service, holding
    // only the old key, fetches the key set again and the next sign-in works.
    drop(idp);
    idp = Provider::start(&modules, idp_port, &redirect, "key-2", &idp_log);
    let jwks = idp.get("/jwks");
    assert_eq!(jwks["keys"][0]["kid"], "key-2", "{jwks}");
    b.go(&format!("{}/ui", svc.url));
    b.click("#oidc");
    provider_form(&b, "carol", false);
    wait_signed_in(&b, "carol");

    // jitsudoctl login: the device authorization grant, completed in the browser (where
    // carol is signed in at the provider); the ID token is kept 0600 in the caller's
    // config directory and is the API's bearer token from then on.
    let home = TempDir::new("oidc-home");
    let ctl = |args: &[&str]| {
        let mut c = Command::new(artifact("jitsudoctl"));
        c.args(args)
            .env("JITSUDO_SERVICE", &svc.url)
            .env("HOME", home.path())
            .env_remove("JITSUDO_TOKEN")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null());
        c
    };
    let mut login = ctl(&["login"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    let url = {
        use std::io::BufRead;
        let mut err = std::io::BufReader::new(login.stderr.take().unwrap());
        loop {
            let mut line = String::new();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "jitsudoctl login said: {said}"
            );
            said.push_str(&line);
            if let Some(u) = line.trim().strip_prefix("(or open ") {
                break u.trim_end_matches(')').to_string();
            }
        }
    };
    assert!(said.contains("enter the code"), "{said}");
    b.go(&url);
    b.submit("#confirm");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if !b.find_all("#device-done").is_empty() {
            break;
        }
        if !b.find_all("#login").is_empty() {
            provider_form(&b, "carol", false);
        }
        assert!(Instant::now() < deadline, "{}", b.source());
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = login.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("signed in"),
        "{stdout}"
    );
    let saved = home.path().join(".config/jitsudo/token");
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&saved).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(saved.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
    }
    let cli_req = svc.ask(&key, "alice", &["/usr/bin/whoami"]);
    let out = ctl(&["approve", &cli_req]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let auth = svc.approval_auth(&cli_req);
    assert_eq!(
        (&auth[0]["method"], &auth[0]["subject"]),
        (&"oidc".into(), &"carol".into()),
        "{auth:?}"
    );
    // A token altered in the file is refused by the service.
    let token = std::fs::read_to_string(&saved).unwrap();
    let mut parts: Vec<String> = token.trim().split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    std::fs::write(&saved, parts.join(".")).unwrap();
    let out = ctl(&["requests"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("401") && err.contains("jitsudoctl login"),
        "{err}"
    );
    let out = ctl(&["logout"]).output().unwrap();
    assert!(out.status.success());
    assert!(!saved.exists());
    let out = ctl(&["requests"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("run jitsudoctl login"),
        "{err}"
    );

    // Groups are the token's alone: dave, in no group, is signed in but may not approve.
    b.go(&format!("{}/ui", svc.url));
    sign_out(&b);
    b.go(&format!("{}/ui/oidc/login?step_up=1", svc.url));
    provider_form(&b, "dave", false);
    wait_signed_in(&b, "dave");
    let dave_req = svc.ask(&key, "alice", &["/usr/bin/whoami"]);
    b.go(&format!("{}/ui", svc.url));
    b.submit(&format!("#req-{dave_req} button.approve"));
    let text = b.text("#flash");
    assert!(
        text.contains("dave may not approve") && text.contains("group:sre"),
        "{text}"
    );
    assert!(svc.approval_auth(&dave_req).is_empty());
    drop(idp);
}

/// Approver tokens for bootstrap and automation: a scope (`approve`, `admin`, `read`)
/// and an expiry, which `jitsudoctl approver add` prints; a `read` token reads but
/// never votes or revokes; an expired token is unknown.
#[test]
fn approver_tokens_have_a_scope_and_an_expiry() {
    common::require_root();
    let db = TempDir::new("oidc-tokens");
    let url = format!("sqlite://{}/x.db", db.path().display());
    let svc = common::world::Service::start(&url, POLICY, None);
    let key = SecretKey::generate("host").unwrap();
    run_ok(
        svc.ctl(&svc.admin_token)
            .args(["host", "add", "web-01", &key.public.to_paserk()]),
    );
    let add = |args: &[&str]| {
        svc.ctl(&svc.admin_token)
            .args(["approver", "add"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = add(&["reader", "--group", "sre", "--scope", "read"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("scope read, expires "),
        "{said}"
    );
    let reader = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = add(&["robot", "--group", "sre", "--expires", "never"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("scope approve, never expires"),
        "{said}"
    );
    let out = add(&["both", "--admin", "--scope", "read"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("contradicts"),
        "{said}"
    );
    let out = add(&["soon", "--expires", "5s"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("60 seconds"),
        "{said}"
    );

    let id = {
        let body = NewRequest {
            kind: jitsudo_core::grant::Kind::Exec,
            user: "alice".into(),
            uid: 1000,
            groups: vec![],
            run_as: "root".into(),
            argv: vec!["/usr/bin/whoami".into()],
            reason: "INC-1".into(),
            duration: None,
            once: false,
            source: None,
            ticket: None,
            extends: None,
        };
        let env = wire::sign_envelope(
            &key,
            "web-01",
            wire::PATH_REQUESTS,
            jitsudo_core::grant::now(),
            &body,
        )
        .unwrap();
        let v: Value = agent()
            .post(format!("{}{}", svc.url, wire::PATH_REQUESTS))
            .header("content-type", "application/json")
            .send(serde_json::to_string(&Signed { envelope: env }).unwrap())
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    // The reader lists, and is refused a vote and a revocation with the reason.
    run_ok(svc.ctl(&reader).args(["requests", "--pending"]));
    for args in [
        vec!["approve", id.as_str()],
        vec!["deny", id.as_str(), "--reason", "no"],
        vec!["revoke", "0123456789abcdef", "--reason", "no"],
    ] {
        let out = svc.ctl(&reader).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("403") && err.contains("scope read"),
            "{args:?}: {err}"
        );
    }
    let robot = String::from_utf8(add(&["robot2", "--group", "sre"]).stdout).unwrap();
    run_ok(svc.ctl(robot.trim()).args(["approve", &id]));
    drop(svc);

    // Past its expiry a token is unknown (set in the database: no test waits 60 s).
    common::multi_threaded().block_on(async {
        let db = jitsudod::store::Db::connect(&url).await.unwrap();
        let hash = jitsudod::service::token_hash(&reader);
        assert!(
            db.approver_by_token_hash(&hash)
                .await
                .unwrap()
                .unwrap()
                .read_only
        );
        db.set_token_terms("reader", "read", Some(jitsudo_core::grant::now() - 1))
            .await
            .unwrap();
        assert_eq!(db.approver_by_token_hash(&hash).await.unwrap(), None);
        db.close().await;
    });
}
