//! Headless Chromium through chromedriver's WebDriver HTTP API, for the suites that
//! drive the approver web page (web.rs) and the identity provider's pages (oidc.rs).
//! Chromium resolves no name but 127.0.0.1: no page under test reaches out.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::TempDir;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver (and the Chromium it starts) in their own process group; the guard
/// closes the browser session and kills the whole group.
pub struct Driver {
    child: Child,
    base: String,
    session: Option<String>,
    _profile: TempDir,
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

impl Driver {
    pub fn start() -> Driver {
        for (bin, pkg) in [
            ("/usr/bin/chromium", "chromium"),
            ("/usr/bin/chromedriver", "chromium-driver"),
        ] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: this test needs a real browser (apt-get install -y chromium chromium-driver)"
            );
            let _ = pkg;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let mut d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            _profile: TempDir::new("chromium"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while agent().get(format!("{}/status", d.base)).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = d._profile.path().display().to_string();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={profile}"),
                    "--window-size=430,1000", "--hide-scrollbars",
                    // Loopback only: no page of the test provider reaches out.
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                ]
            },
            // The console, where Chromium reports Content-Security-Policy violations.
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let v = d.call("POST", "/session", Some(caps));
        d.session = Some(
            v["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("{v}"))
                .to_string(),
        );
        d
    }

    /// A WebDriver command; the `value` of the answer. Errors panic with the answer.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.try_call(method, path, body);
        assert!(status < 300, "WebDriver {method} {path}: {status} {v}");
        v["value"].clone()
    }

    pub fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let a = agent();
        let mut resp = match method {
            "GET" => a.get(&url).call(),
            "DELETE" => a.delete(&url).call(),
            _ => a
                .post(&url)
                .header("content-type", "application/json")
                .send(serde_json::to_string(&body.unwrap_or(json!({}))).unwrap()),
        }
        .unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_json().unwrap_or(Value::Null))
    }

    pub fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session.as_ref().unwrap())
    }

    pub fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    pub fn find_all(&self, css: &str) -> Vec<String> {
        self.call(
            "POST",
            &self.s("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[ELEMENT].as_str().unwrap().to_string())
        .collect()
    }

    /// The one element matching `css`, waiting (up to 10 s) for a submitted form's
    /// next page to load.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.find_all(css);
            if all.len() == 1 {
                return all[0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "expected one element for {css:?}, found {}: {}",
                all.len(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &self.s(&format!("/element/{e}/text")), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(json!({"text": text})),
        );
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/click")),
            Some(json!({})),
        );
    }

    /// Click a submit button and wait until the next page has replaced this one.
    pub fn submit(&self, css: &str) {
        let old = self.find("html");
        self.click(css);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .try_call("GET", &self.s(&format!("/element/{old}/name")), None)
            .0
            == 200
        {
            assert!(Instant::now() < deadline, "{css} did not load a new page");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The browser console's messages since the last call.
    pub fn console(&self) -> Vec<String> {
        self.call("POST", &self.s("/se/log"), Some(json!({"type": "browser"})))
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Run `script` in the page (WebDriver's own channel, not subject to the page's
    /// policy); its return value.
    pub fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Wait (up to 20 s) until the text of `css` contains `needle`; the text.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text(css);
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared in {css}: {text:?}; console: {:?}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// No JavaScript dialog is open.
    pub fn assert_no_alert(&self) {
        let (status, v) = self.try_call("GET", &self.s("/alert/text"), None);
        assert_eq!(status, 404, "an alert is open: {v}");
        assert_eq!(v["value"]["error"], "no such alert", "{v}");
    }

    pub fn cookie(&self, name: &str) -> Value {
        self.call("GET", &self.s(&format!("/cookie/{name}")), None)
    }

    pub fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", &self.s("/screenshot"), None);
        let png = base64_decode(b64.as_str().unwrap());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.session.is_some() {
            let _ = self.try_call("DELETE", &self.s(""), None);
        }
        // chromedriver and every Chromium process it started share its process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
fn base64_decode(text: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|b| *b != b'=').collect();
        let mut n = 0u32;
        for (i, b) in data.iter().enumerate() {
            n |= val(*b) << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..data.len().saturating_sub(1)]);
    }
    out
}
