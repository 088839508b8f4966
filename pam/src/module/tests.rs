//! The phases driven by a scripted fake PAM handle, a fake directory and log, a fixed
//! clock, and a real grant store in a root-owned scratch directory.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::login::{LoginEvent, LoginRecord};
use jitsudo_core::config::HostConfig;
use jitsudo_core::grant::keys::SecretKey;
use jitsudo_core::grant::{self, format_time, Claims, Kind};
use jitsudo_core::store::{Revocations, Store};
use jitsudo_core::system::{Gid, Uid, User};
use zeroize::Zeroizing;

use super::*;
use crate::handler::{Item, PamHandler};

const NOW: i64 = 1_800_000_000;
const ALICE_UID: u32 = 61001;

// ---- the fake PAM handle --------------------------------------------------------------

#[derive(Debug)]
enum Step {
    /// Expect a prompt containing the text; answer with the reply.
    Prompt(&'static str, Result<Option<String>, String>),
    /// Expect an error message containing the text.
    Error(&'static str),
}

struct FakePam {
    user: Result<String, String>,
    items: HashMap<&'static str, String>,
    script: VecDeque<Step>,
    note: Option<String>,
    silent: bool,
}

impl FakePam {
    fn new(user: &str, script: Vec<Step>) -> FakePam {
        FakePam {
            user: Ok(user.to_string()),
            items: [("service", "sshd"), ("rhost", "192.0.2.7"), ("tty", "ssh")]
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect(),
            script: script.into(),
            note: None,
            silent: false,
        }
    }
}

impl Drop for FakePam {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.script.is_empty(),
                "conversation steps not used: {:?}",
                self.script
            );
        }
    }
}

impl PamHandler for FakePam {
    fn user(&mut self) -> Result<String, String> {
        self.user.clone()
    }

    fn item(&self, item: Item) -> Option<String> {
        let key = match item {
            Item::Service => "service",
            Item::RHost => "rhost",
            Item::Tty => "tty",
        };
        self.items.get(key).cloned()
    }

    fn prompt_secret(&mut self, prompt: &str) -> Result<Option<Zeroizing<String>>, String> {
        match self.script.pop_front() {
            Some(Step::Prompt(expect, reply)) => {
                assert!(
                    prompt.contains(expect),
                    "prompt {prompt:?} lacks {expect:?}"
                );
                reply.map(|r| r.map(Zeroizing::new))
            }
            other => panic!("unexpected prompt {prompt:?}; script had {other:?}"),
        }
    }

    fn error_message(&mut self, text: &str) {
        match self.script.pop_front() {
            Some(Step::Error(expect)) => {
                assert!(text.contains(expect), "message {text:?} lacks {expect:?}")
            }
            other => panic!("unexpected message {text:?}; script had {other:?}"),
        }
    }

    fn set_note(&mut self, note: &str) -> Result<(), String> {
        self.note = Some(note.to_string());
        Ok(())
    }

    fn note(&self) -> Option<String> {
        self.note.clone()
    }

    fn silent(&self) -> bool {
        self.silent
    }
}

// ---- fake directory and log -----------------------------------------------------------

struct FakeDirectory {
    users: Vec<User>,
    groups: HashMap<&'static str, Vec<&'static str>>,
}

impl Directory for FakeDirectory {
    fn user(&self, name: &str) -> Result<Option<User>, String> {
        Ok(self.users.iter().find(|u| u.name == name).cloned())
    }

    fn in_group(&self, user: &User, group: &str) -> Result<Option<bool>, String> {
        Ok(self
            .groups
            .get(group)
            .map(|members| members.contains(&user.name.as_str())))
    }
}

#[derive(Default)]
struct FakeLog {
    lines: RefCell<Vec<LoginRecord>>,
    broken: bool,
    require: bool,
}

impl AuditLog for FakeLog {
    fn send(&self, record: &LoginRecord) -> Result<(), String> {
        if self.broken {
            return Err("/dev/log: connection refused".into());
        }
        self.lines.borrow_mut().push(record.clone());
        Ok(())
    }

    fn required(&self) -> bool {
        self.require
    }
}

impl FakeLog {
    fn events(&self) -> Vec<LoginEvent> {
        self.lines
            .borrow()
            .iter()
            .map(|r| r.event.clone())
            .collect()
    }

    fn text(&self) -> String {
        self.lines
            .borrow()
            .iter()
            .map(|r| r.line() + "\n")
            .collect()
    }
}

// ---- a host: config, keys, store ------------------------------------------------------

static SCRATCH: AtomicU32 = AtomicU32::new(0);

/// A store under /run: the grant store trusts only directories that root owns and
/// nobody else may write all the way up, which neither a shared /tmp nor a checkout
/// under it is.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        assert_eq!(
            jitsudo_core::system::effective_uid(),
            0,
            "these tests use a real grant store, which must be root-owned: run them as root"
        );
        let dir = Path::new("/run").join(format!(
            "jitsudo-pam-unit-{}-{}",
            std::process::id(),
            SCRATCH.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Host {
    key: SecretKey,
    config: HostConfig,
    store: Store,
    directory: FakeDirectory,
    log: FakeLog,
    config_error: Option<String>,
    clock: Result<i64, String>,
    _scratch: Scratch,
}

fn user(name: &str, uid: u32) -> User {
    User {
        name: name.into(),
        uid: Uid::new(uid).unwrap(),
        gid: Gid::new(uid).unwrap(),
        home: PathBuf::from("/home").join(name),
        shell: PathBuf::from("/bin/sh"),
    }
}

impl Host {
    fn new() -> Host {
        let key = SecretKey::generate("test-key").unwrap();
        let text = format!("host = \"web-01\"\n{}", key.trusted_key_block());
        let config =
            jitsudo_core::config::parse(Path::new("/etc/jitsudo/jitsudo.toml"), &text).unwrap();
        let scratch = Scratch::new();
        Host {
            key,
            config,
            store: Store::new(&scratch.0.join("state")),
            directory: FakeDirectory {
                users: vec![
                    user("alice", ALICE_UID),
                    user("root", 0),
                    user("bob", 61002),
                ],
                groups: [("wheel", vec!["root"]), ("staff", vec!["bob"])]
                    .into_iter()
                    .collect(),
            },
            log: FakeLog {
                require: true,
                ..FakeLog::default()
            },
            config_error: None,
            clock: Ok(NOW),
            _scratch: scratch,
        }
    }

    fn claims(&self, kind: Kind) -> Claims {
        Claims {
            jti: grant::new_grant_id().unwrap(),
            iss: "test".into(),
            sub: "alice".into(),
            host: "web-01".into(),
            run_as: "root".into(),
            commands: if kind == Kind::Exec {
                vec!["/usr/bin/id".into()]
            } else {
                vec![]
            },
            nbf: format_time(NOW - 60),
            exp: format_time(NOW + 3600),
            iat: format_time(NOW - 60),
            uses: None,
            kind,
            reason: "test".into(),
            approved_by: vec!["admin".into()],
            request: None,
            session_bound: false,
            exec: false,
            record: false,
            ticket: None,
            extends: None,
        }
    }

    fn sign(&self, claims: &Claims) -> String {
        grant::sign(claims, &self.key).unwrap()
    }

    /// Put a token in alice's cache as `jitsudo --import` would.
    fn cache(&self, claims: &Claims) -> String {
        let token = self.sign(claims);
        let uid = Uid::new(ALICE_UID).unwrap();
        let lock = self.store.lock_user(uid).unwrap();
        let mut cache = self.store.load_user(uid).unwrap();
        let exp = grant::parse_time(&claims.exp).unwrap();
        cache.insert(&claims.jti, exp, &token, None);
        self.store.save_user(uid, &cache, &lock).unwrap();
        token
    }

    fn alice_cache(&self) -> jitsudo_core::store::UserCache {
        self.store.load_user(Uid::new(ALICE_UID).unwrap()).unwrap()
    }

    fn run<H: PamHandler>(
        &self,
        phase: fn(&mut H, &[String], &Env<'_>) -> Verdict,
        h: &mut H,
        args: &[&str],
    ) -> Verdict {
        let clock_result = self.clock.clone();
        let clock = move |_: &Store, _: &HostConfig| clock_result.clone();
        let env = Env {
            config: match &self.config_error {
                None => Ok(&self.config),
                Some(e) => Err(e.clone()),
            },
            store: &self.store,
            clock: &clock,
            directory: &self.directory,
            log: &self.log,
        };
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        phase(h, &args, &env)
    }
}

fn account(host: &Host, h: &mut FakePam, args: &[&str]) -> Verdict {
    host.run(super::account, h, args)
}

fn auth(host: &Host, h: &mut FakePam, args: &[&str]) -> Verdict {
    host.run(super::authenticate, h, args)
}

// ---- account --------------------------------------------------------------------------

#[test]
fn account_without_grant_is_denied_and_logged() {
    let host = Host::new();
    let mut h = FakePam::new("alice", vec![Step::Error("no login grant for web-01")]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Denied);
    assert_eq!(
        host.log.text(),
        "alice : login denied: no login grant for web-01 ; SERVICE=sshd ; RHOST=192.0.2.7 ; TTY=ssh\n"
    );
}

#[test]
fn account_with_login_grant_is_allowed_and_noted() {
    let host = Host::new();
    let claims = host.claims(Kind::Login);
    host.cache(&claims);
    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Success);
    assert_eq!(h.note, Some(format!("grant:{}", claims.jti)));
    assert_eq!(
        host.log.text(),
        format!(
            "alice : login allowed ; SERVICE=sshd ; RHOST=192.0.2.7 ; TTY=ssh ; GRANT={}\n",
            claims.jti
        )
    );
}

#[test]
fn account_refuses_exec_expired_revoked_and_foreign_grants() {
    type Edit = Box<dyn Fn(&mut Claims)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "no login grant",
            Box::new(|c: &mut Claims| {
                *c = Claims {
                    kind: Kind::Exec,
                    commands: vec!["/usr/bin/id".into()],
                    ..c.clone()
                }
            }),
        ),
        (
            "grant expired",
            Box::new(|c: &mut Claims| {
                c.nbf = format_time(NOW - 7200);
                c.exp = format_time(NOW - 3600);
            }),
        ),
        (
            "not yet valid",
            Box::new(|c: &mut Claims| c.nbf = format_time(NOW + 3600)),
        ),
        (
            "this host is \"web-01\"",
            Box::new(|c: &mut Claims| c.host = "db-01".into()),
        ),
    ];
    for (why, edit) in cases {
        let host = Host::new();
        let mut claims = host.claims(Kind::Login);
        claims.exp = format_time(NOW + 7200);
        edit(&mut claims);
        host.cache(&claims);
        let mut h = FakePam::new("alice", vec![Step::Error(why)]);
        assert_eq!(account(&host, &mut h, &[]), Verdict::Denied, "{why}");
        assert!(host.log.text().contains(why), "{why}: {}", host.log.text());
    }

    let host = Host::new();
    let claims = host.claims(Kind::Login);
    host.cache(&claims);
    host.store
        .save_revocations(&Revocations {
            issued_at: NOW - 10,
            ids: vec![claims.jti.clone()],
        })
        .unwrap();
    let mut h = FakePam::new("alice", vec![Step::Error("revoked")]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Denied);
    assert!(host.log.text().contains(&format!("login denied: grant has been revoked (grant {0}) ; SERVICE=sshd ; RHOST=192.0.2.7 ; TTY=ssh ; GRANT={0}", claims.jti)), "{}", host.log.text());
}

#[test]
fn one_time_login_grant_admits_once() {
    let host = Host::new();
    let mut claims = host.claims(Kind::Login);
    claims.uses = Some(1);
    host.cache(&claims);
    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Success);
    assert_eq!(host.alice_cache().used(&claims.jti), 1);
    let mut h = FakePam::new(
        "alice",
        vec![Step::Error("one-time grant has already been used")],
    );
    assert_eq!(account(&host, &mut h, &[]), Verdict::Denied);
    assert_eq!(host.alice_cache().used(&claims.jti), 1);
}

#[test]
fn unlogged_login_is_refused_and_spends_no_use() {
    let mut host = Host::new();
    host.log.broken = true;
    let mut claims = host.claims(Kind::Login);
    claims.uses = Some(2);
    host.cache(&claims);
    let mut h = FakePam::new("alice", vec![Step::Error("cannot log the login")]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Denied);
    assert_eq!(host.alice_cache().used(&claims.jti), 0);

    host.log.require = false;
    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Success);
    assert_eq!(host.alice_cache().used(&claims.jti), 1);
}

#[test]
fn exempt_group_members_pass_without_grant() {
    let host = Host::new();
    let mut h = FakePam::new("root", vec![]);
    assert_eq!(
        account(&host, &mut h, &["exempt_group=wheel"]),
        Verdict::Success
    );
    assert_eq!(h.note.as_deref(), Some("exempt:wheel"));
    assert_eq!(host.log.events(), vec![LoginEvent::Exempt("wheel".into())]);

    // Not a member: the grant check applies.
    let mut h = FakePam::new("alice", vec![Step::Error("no login grant")]);
    assert_eq!(
        account(&host, &mut h, &["exempt_group=wheel"]),
        Verdict::Denied
    );

    // A group that does not exist exempts nobody, and says so.
    let host = Host::new();
    let mut h = FakePam::new("root", vec![Step::Error("no login grant")]);
    assert_eq!(
        account(&host, &mut h, &["exempt_group=whee1"]),
        Verdict::Denied
    );
    assert!(
        host.log
            .text()
            .contains("error: exempt_group=whee1: no such group\\x3b nobody is exempt"),
        "{}",
        host.log.text()
    );
}

#[test]
fn audit_only_logs_what_it_would_deny_and_allows() {
    let host = Host::new();
    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(account(&host, &mut h, &["audit_only"]), Verdict::Success);
    assert_eq!(
        host.log.events(),
        vec![LoginEvent::AuditOnly("no login grant for web-01".into())]
    );
}

#[test]
fn bad_arguments_and_missing_config_are_service_errors() {
    let host = Host::new();
    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(
        account(&host, &mut h, &["exmpt_group=wheel"]),
        Verdict::ServiceError
    );
    let text = host.log.text();
    assert!(text.starts_with("alice : error: account: bad module arguments: unknown module argument \"exmpt_group=wheel\""), "{text}");

    let mut host = Host::new();
    host.config_error = Some("cannot use /etc/jitsudo/jitsudo.toml: it does not exist".into());
    for phase in [
        super::account,
        super::authenticate,
        super::open_session,
        super::close_session,
    ] {
        let mut h = FakePam::new("alice", vec![]);
        assert_eq!(host.run(phase, &mut h, &[]), Verdict::ServiceError);
    }
    assert!(
        host.log
            .text()
            .contains("it does not exist\\x3b refusing every login until it is fixed"),
        "{}",
        host.log.text()
    );

    // audit_only does not turn a broken setup into an open door.
    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(
        account(&host, &mut h, &["audit_only"]),
        Verdict::ServiceError
    );
    assert_eq!(super::setcred(&["debug".into()]), Verdict::Success);
    assert_eq!(super::setcred(&["bogus".into()]), Verdict::ServiceError);
}

#[test]
fn unknown_user_clock_trouble_and_user_errors() {
    let host = Host::new();
    // Refused, logged, and not told (nothing about which accounts exist).
    let mut h = FakePam::new("mallory", vec![]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Denied);
    assert!(
        host.log
            .text()
            .contains("mallory : login denied: unknown user"),
        "{}",
        host.log.text()
    );
    // The auth phase asks and answers as for anyone without a grant.
    let mut h = FakePam::new(
        "mallory",
        vec![
            Step::Prompt("login grant for mallory on web-01", Ok(Some("junk".into()))),
            Step::Error("grant token refused: malformed grant: not a PASETO"),
        ],
    );
    assert_eq!(auth(&host, &mut h, &[]), Verdict::Denied);
    let mut for_mallory = host.claims(Kind::Login);
    for_mallory.sub = "mallory".into();
    let token = host.sign(&for_mallory);
    let mut h = FakePam::new(
        "mallory",
        vec![
            Step::Prompt("paste", Ok(Some(token))),
            Step::Error("unknown user"),
        ],
    );
    assert_eq!(auth(&host, &mut h, &[]), Verdict::Denied);
    let text = host.log.text();
    assert!(
        text.contains("mallory : login grant refused: malformed grant: not a PASETO v4.public token (it must start with \"v4.public.\") (unknown user) ;")
            && text.contains("mallory : login grant refused: unknown user ;"),
        "{text}"
    );

    let mut h = FakePam::new("alice", vec![]);
    h.user = Err("pam_get_user failed (PAM_CONV_ERR)".into());
    assert_eq!(account(&host, &mut h, &[]), Verdict::ServiceError);

    let mut host = Host::new();
    host.cache(&host.claims(Kind::Login));
    host.clock = Err("the system clock is 2h behind".into());
    let mut h = FakePam::new("alice", vec![Step::Error("clock")]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Denied);
}

#[test]
fn silent_flag_sends_no_messages_and_debug_adds_lines() {
    let host = Host::new();
    let mut h = FakePam::new("alice", vec![]);
    h.silent = true;
    assert_eq!(account(&host, &mut h, &["debug"]), Verdict::Denied);
    let text = host.log.text();
    assert!(text.contains("debug: account: answer: denied"), "{text}");
}

// ---- auth -----------------------------------------------------------------------------

/// A cached grant is not proof: the user is asked like anyone, and no token pasted is
/// PAM_IGNORE (the rest of the stack decides), never success.
#[test]
fn auth_with_cached_grant_still_asks_and_ignores_no_answer() {
    let host = Host::new();
    host.cache(&host.claims(Kind::Login));
    for reply in [Ok(None), Ok(Some(String::new())), Ok(Some(" \n".into()))] {
        let mut h = FakePam::new(
            "alice",
            vec![Step::Prompt("login grant for alice on web-01", reply)],
        );
        assert_eq!(auth(&host, &mut h, &[]), Verdict::Ignore);
    }
    assert_eq!(host.log.text(), "", "nothing was refused or allowed");
    // The account phase, which does the authorization, still admits with it.
    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Success);
}

/// Every kind of user meets the same prompt and the same answers for no token and for
/// a bad one: with a cached grant, without, exempt, and no account at all.
#[test]
fn auth_answers_alike_whoever_is_asked() {
    let host = Host::new();
    host.cache(&host.claims(Kind::Login));
    let args = ["exempt_group=wheel"];
    for name in ["alice", "bob", "root", "mallory"] {
        let prompt: &'static str = Box::leak(format!("login grant for {name} on web-01").into());
        let mut h = FakePam::new(name, vec![Step::Prompt(prompt, Ok(None))]);
        assert_eq!(auth(&host, &mut h, &args), Verdict::Ignore, "{name}");
        let mut h = FakePam::new(
            name,
            vec![
                Step::Prompt(prompt, Ok(Some("junk".into()))),
                Step::Error("jitsudo: grant token refused: malformed grant: not a PASETO"),
            ],
        );
        assert_eq!(auth(&host, &mut h, &args), Verdict::Denied, "{name}");
        let mut h = FakePam::new(
            name,
            vec![Step::Prompt(prompt, Err("conversation failed".into()))],
        );
        assert_eq!(auth(&host, &mut h, &args), Verdict::ServiceError, "{name}");
    }
    // Only the log tells the unknown name apart.
    let text = host.log.text();
    assert!(
        text.contains("mallory : login grant refused: malformed grant: not a PASETO v4.public token (it must start with \"v4.public.\") (unknown user) ;")
            && text.contains("alice : login grant refused: malformed grant: not a PASETO v4.public token (it must start with \"v4.public.\") ;"),
        "{text}"
    );
}

/// A pasted grant that is valid but does not admit now is refused, even when another
/// cached grant would: success means the pasted token is the proof.
#[test]
fn auth_succeeds_only_on_the_grant_pasted() {
    let host = Host::new();
    host.cache(&host.claims(Kind::Login));
    let mut spent = host.claims(Kind::Login);
    spent.uses = Some(1);
    let token = host.cache(&spent);
    // Its one use spent (the account phase would spend the unlimited grant first).
    let uid = Uid::new(ALICE_UID).unwrap();
    let lock = host.store.lock_user(uid).unwrap();
    let mut cache = host.store.load_user(uid).unwrap();
    cache.count_use(&spent.jti, grant::parse_time(&spent.exp).unwrap());
    host.store.save_user(uid, &cache, &lock).unwrap();
    drop(lock);

    let mut h = FakePam::new(
        "alice",
        vec![
            Step::Prompt("paste", Ok(Some(token))),
            Step::Error("one-time grant has already been used"),
        ],
    );
    assert_eq!(auth(&host, &mut h, &[]), Verdict::Denied);
    assert!(
        host.log.text().contains(&format!(
            "alice : login denied: one-time grant has already been used (grant {0}) ; SERVICE=sshd ; RHOST=192.0.2.7 ; TTY=ssh ; GRANT={0}",
            spent.jti
        )),
        "{}",
        host.log.text()
    );

    // A revoked grant pasted while a usable one is cached: refused at verification.
    let revoked = host.claims(Kind::Login);
    host.store
        .save_revocations(&Revocations {
            issued_at: NOW - 10,
            ids: vec![revoked.jti.clone()],
        })
        .unwrap();
    let mut h = FakePam::new(
        "alice",
        vec![
            Step::Prompt("paste", Ok(Some(host.sign(&revoked)))),
            Step::Error("has been revoked"),
        ],
    );
    assert_eq!(auth(&host, &mut h, &[]), Verdict::Denied);
}

/// A revocation list that cannot be read refuses a pasted token before it is cached,
/// and every login with a cached grant: neither phase takes it for "nothing revoked".
#[test]
fn broken_revocation_list_refuses_auth_and_account() {
    let host = Host::new();
    let cached = host.claims(Kind::Login);
    host.cache(&cached);
    let list = host._scratch.0.join("state/revocations.json");
    std::fs::write(&list, "[]").unwrap();
    let shown = list.display().to_string();

    let pasted = host.claims(Kind::Login);
    let mut h = FakePam::new(
        "alice",
        vec![
            Step::Prompt("paste", Ok(Some(host.sign(&pasted)))),
            Step::Error("corrupt revocation list"),
        ],
    );
    assert_eq!(auth(&host, &mut h, &[]), Verdict::Denied);
    assert!(
        host.log.text().contains(&format!(
            "alice : login denied: {shown}: corrupt revocation list"
        )),
        "{}",
        host.log.text()
    );
    assert!(!host.log.text().contains("login grant imported"));
    let ids: Vec<String> = host
        .alice_cache()
        .tokens()
        .map(|(e, _)| e.jti.clone())
        .collect();
    assert_eq!(ids, vec![cached.jti.clone()]);

    let mut h = FakePam::new("alice", vec![Step::Error("corrupt revocation list")]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Denied);
}

/// A clock the host does not trust refuses a pasted token, for a name with no account
/// as for anyone, and only after the prompt.
#[test]
fn auth_with_clock_trouble_refuses_after_asking() {
    let mut host = Host::new();
    host.clock = Err("the system clock is 2h behind".into());
    for name in ["alice", "mallory"] {
        let mut h = FakePam::new(
            name,
            vec![
                Step::Prompt("paste", Ok(Some("junk".into()))),
                Step::Error("clock is 2h behind"),
            ],
        );
        assert_eq!(auth(&host, &mut h, &[]), Verdict::Denied, "{name}");
        let mut h = FakePam::new(name, vec![Step::Prompt("paste", Ok(None))]);
        assert_eq!(auth(&host, &mut h, &[]), Verdict::Ignore, "{name}");
    }
}

#[test]
fn auth_prompts_verifies_and_caches_a_pasted_token() {
    let host = Host::new();
    let claims = host.claims(Kind::Login);
    let token = host.sign(&claims);
    let pasted = format!("  {token}\n");
    let mut h = FakePam::new(
        "alice",
        vec![Step::Prompt(
            "login grant for alice on web-01",
            Ok(Some(pasted)),
        )],
    );
    assert_eq!(auth(&host, &mut h, &[]), Verdict::Success);
    let cache = host.alice_cache();
    assert_eq!(
        cache.entry(&claims.jti).and_then(|e| e.token.clone()),
        Some(token)
    );
    assert_eq!(host.log.events(), vec![LoginEvent::Imported]);
    // The account phase then admits with it.
    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Success);
}

#[test]
fn auth_refuses_malformed_and_wrong_tokens_clearly() {
    let host = Host::new();
    let other_key = SecretKey::generate("test-key").unwrap();
    let mut for_bob = host.claims(Kind::Login);
    for_bob.sub = "bob".into();
    let cases: Vec<(String, &'static str)> = vec![
        (
            "hello".into(),
            "malformed grant: not a PASETO v4.public token",
        ),
        (
            "v4.public.%%%".into(),
            "malformed grant: bad token encoding",
        ),
        ("eyJhbGciOi.x.y".into(), "looks like a JWT"),
        (
            host.sign(&host.claims(Kind::Exec)),
            "this is an exec grant; logging in needs a login grant",
        ),
        (
            host.sign(&for_bob),
            "grant is for user \"bob\", not \"alice\"",
        ),
        (
            grant::sign(&host.claims(Kind::Login), &other_key).unwrap(),
            "grant signature invalid for key \"test-key\"",
        ),
        (
            host.sign(&Claims {
                exp: format_time(NOW - 7200),
                nbf: format_time(NOW - 9000),
                ..host.claims(Kind::Login)
            }),
            "grant expired",
        ),
        ("x".repeat(40_000), "token is 40000 bytes"),
    ];
    for (pasted, why) in cases {
        let mut h = FakePam::new(
            "alice",
            vec![Step::Prompt("paste", Ok(Some(pasted))), Step::Error(why)],
        );
        assert_eq!(auth(&host, &mut h, &[]), Verdict::Denied, "{why}");
        let text = host.log.text();
        let last = text.lines().last().unwrap_or_default();
        assert!(
            // The log escapes ';', its field separator, as \x3b.
            last.starts_with("alice : login grant refused: ")
                && last.contains(&why.replace(';', "\\x3b")),
            "{why}: {text}"
        );
    }
    assert_eq!(
        host.alice_cache().tokens().count(),
        0,
        "nothing refused may be cached"
    );

    // No reply at all leaves the decision to the stack; a broken conversation is a
    // service error.
    let mut h = FakePam::new("alice", vec![Step::Prompt("paste", Ok(None))]);
    assert_eq!(auth(&host, &mut h, &[]), Verdict::Ignore);
    let mut h = FakePam::new(
        "alice",
        vec![Step::Prompt("paste", Err("conversation failed".into()))],
    );
    assert_eq!(auth(&host, &mut h, &[]), Verdict::ServiceError);
}

#[test]
fn auth_caches_a_future_grant_but_does_not_admit_yet() {
    let host = Host::new();
    let mut claims = host.claims(Kind::Login);
    claims.nbf = format_time(NOW + 600);
    let token = host.sign(&claims);
    let mut h = FakePam::new(
        "alice",
        vec![
            Step::Prompt("paste", Ok(Some(token))),
            Step::Error("not yet valid"),
        ],
    );
    assert_eq!(auth(&host, &mut h, &[]), Verdict::Denied);
    assert!(host.alice_cache().entry(&claims.jti).is_some());
}

#[test]
fn auth_asks_exempt_users_and_is_out_of_the_way_in_audit_only_mode() {
    let host = Host::new();
    // Exempt users are asked like anyone (the prompt must not tell who is exempt); with
    // nothing pasted the stack decides, and their account phase lets them in.
    let mut h = FakePam::new("root", vec![Step::Prompt("for root", Ok(None))]);
    assert_eq!(
        auth(&host, &mut h, &["exempt_group=wheel"]),
        Verdict::Ignore
    );
    // audit_only asks nobody, whatever the cache holds and whether the account exists.
    host.cache(&host.claims(Kind::Login));
    for name in ["alice", "bob", "mallory"] {
        let mut h = FakePam::new(name, vec![]);
        assert_eq!(
            auth(&host, &mut h, &["audit_only"]),
            Verdict::Ignore,
            "{name}"
        );
    }
    assert_eq!(host.log.text(), "");
}

// ---- session --------------------------------------------------------------------------

#[test]
fn session_lines_name_user_rhost_tty_and_grant() {
    let host = Host::new();
    let claims = host.claims(Kind::Login);
    host.cache(&claims);
    let mut h = FakePam::new("alice", vec![]);
    h.items.insert("tty", "pts/4".into());
    assert_eq!(account(&host, &mut h, &[]), Verdict::Success);
    assert_eq!(host.run(super::open_session, &mut h, &[]), Verdict::Success);
    assert_eq!(
        host.run(super::close_session, &mut h, &[]),
        Verdict::Success
    );
    let text = host.log.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[1],
        format!(
            "alice : session opened ; SERVICE=sshd ; RHOST=192.0.2.7 ; TTY=pts/4 ; GRANT={}",
            claims.jti
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "alice : session closed ; SERVICE=sshd ; RHOST=192.0.2.7 ; TTY=pts/4 ; GRANT={}",
            claims.jti
        )
    );
    // Not session-bound: still cached.
    assert!(host
        .alice_cache()
        .tokens()
        .any(|(e, _)| e.jti == claims.jti));
}

#[test]
fn session_open_finds_the_grant_without_a_note() {
    let host = Host::new();
    let mut claims = host.claims(Kind::Login);
    claims.uses = Some(1);
    host.cache(&claims);
    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(host.run(super::open_session, &mut h, &[]), Verdict::Success);
    assert!(
        host.log.text().contains(&format!("GRANT={}", claims.jti)),
        "{}",
        host.log.text()
    );
    assert_eq!(
        host.alice_cache().used(&claims.jti),
        0,
        "a session does not spend a use"
    );
}

#[test]
fn session_open_requires_its_line_unless_exempt() {
    let mut host = Host::new();
    host.cache(&host.claims(Kind::Login));
    host.log.broken = true;
    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(
        host.run(super::open_session, &mut h, &[]),
        Verdict::ServiceError
    );
    let mut h = FakePam::new("root", vec![]);
    assert_eq!(
        host.run(super::open_session, &mut h, &["exempt_group=wheel"]),
        Verdict::Success
    );
}

#[test]
fn session_close_ends_session_bound_grants_and_keeps_counters() {
    let host = Host::new();
    let mut bound = host.claims(Kind::Login);
    bound.session_bound = true;
    bound.uses = Some(5);
    host.cache(&bound);
    let mut bound_exec = host.claims(Kind::Exec);
    bound_exec.session_bound = true;
    host.cache(&bound_exec);
    let other = host.claims(Kind::Exec);
    host.cache(&other);

    let mut h = FakePam::new("alice", vec![]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Success);
    assert_eq!(host.run(super::open_session, &mut h, &[]), Verdict::Success);
    assert_eq!(
        host.run(super::close_session, &mut h, &[]),
        Verdict::Success
    );

    let cache = host.alice_cache();
    let cached: Vec<&str> = cache.tokens().map(|(e, _)| e.jti.as_str()).collect();
    assert_eq!(cached, vec![other.jti.as_str()]);
    assert_eq!(
        cache.used(&bound.jti),
        1,
        "the counter stays as a tombstone"
    );
    let text = host.log.text();
    assert!(
        text.contains(&format!(
            "session-bound grant dropped ; SERVICE=sshd ; RHOST=192.0.2.7 ; TTY=ssh ; GRANT={}",
            bound.jti
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("GRANT={}", bound_exec.jti)),
        "{text}"
    );

    // The login after that is refused: the grant ended with the session.
    let mut h = FakePam::new("alice", vec![Step::Error("no login grant")]);
    assert_eq!(account(&host, &mut h, &[]), Verdict::Denied);
}
