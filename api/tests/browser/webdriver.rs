//! A small W3C WebDriver client over reqwest, driving Debian's headless Chromium through
//! chromedriver: the dozen commands the browser tests use. (fantoccini, the maintained crate,
//! needs a TLS stack for its HTTP client: native-tls wants OpenSSL headers and rustls-tls pulls
//! aws-lc with CMake and the ICU segmenter, minutes of build for requests to localhost.)

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process, ended on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child =
            Command::new(std::env::var("KUTANGA_TEST_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into()))
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver runs (cargo xtask test installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(res) = http.get(format!("{url}/status")).send().await
                && res.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser window (a WebDriver session), with its own profile.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

/// An element of the page.
#[derive(Clone, Debug)]
pub struct El(String);

impl Browser {
    pub async fn open(driver: &Driver, width: u32, height: u32) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let binary = std::env::var("KUTANGA_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--force-device-scale-factor=1".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": binary, "args": args },
        }}});
        let res: Value =
            http.post(format!("{}/session", driver.url)).json(&caps).send().await.unwrap().json().await.unwrap();
        let id = res["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no WebDriver session: {res}"));
        let browser = Self { http, session: format!("{}/session/{id}", driver.url), _profile: profile };
        browser.call("POST", "/window/rect", json!({ "width": width, "height": height })).await;
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let res: Value = req.send().await.unwrap().json().await.unwrap();
        res["value"].clone()
    }

    async fn try_call(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let value = self.call(method, path, body).await;
        match value.get("error") {
            Some(e) => Err(format!("{e}: {}", value["message"])),
            None => Ok(value),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.try_call("POST", "/url", json!({ "url": url })).await.unwrap();
    }

    pub async fn find(&self, css: &str) -> Option<El> {
        let v = self.try_call("POST", "/element", json!({ "using": "css selector", "value": css })).await.ok()?;
        v[ELEMENT].as_str().map(|id| El(id.to_owned()))
    }

    pub async fn find_all(&self, css: &str) -> Vec<El> {
        let v = self
            .try_call("POST", "/elements", json!({ "using": "css selector", "value": css }))
            .await
            .unwrap_or_default();
        v.as_array().into_iter().flatten().filter_map(|e| e[ELEMENT].as_str().map(|id| El(id.to_owned()))).collect()
    }

    /// The first element matching `css` (and holding `text`, if given), waiting up to `secs`.
    pub async fn wait_for(&self, css: &str, text: Option<&str>, secs: u64) -> El {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            for el in self.find_all(css).await {
                match text {
                    None => return el,
                    Some(t) if self.text(&el).await.contains(t) => return el,
                    Some(_) => {}
                }
            }
            if Instant::now() > deadline {
                let mut seen = Vec::new();
                for el in self.find_all(css).await {
                    seen.push(self.raw_text(&el).await);
                }
                let body = self.exec("return document.body.innerText", json!([])).await;
                self.screenshot("timeout").await;
                panic!(
                    "no `{css}` holding {text:?} within {secs} s (those there say {seen:?}); the page says:\n{}",
                    body.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn text(&self, el: &El) -> String {
        self.try_call("GET", &format!("/element/{}/text", el.0), Value::Null)
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    async fn raw_text(&self, el: &El) -> String {
        format!("{:?}", self.try_call("GET", &format!("/element/{}/text", el.0), Value::Null).await)
    }

    /// Clicks an element, first scrolled to the middle of the window (the sticky top bar would
    /// cover one scrolled to the top).
    pub async fn click(&self, el: &El) {
        let center = "arguments[0].scrollIntoView({ block: 'center', inline: 'center' })";
        let _ = self.try_call("POST", "/execute/sync", json!({ "script": center, "args": [{ ELEMENT: el.0 }] })).await;
        self.try_call("POST", &format!("/element/{}/click", el.0), json!({})).await.unwrap();
    }

    /// Types into an input (after clearing it); `\u{E007}` is Enter.
    pub async fn type_into(&self, el: &El, text: &str) {
        let _ = self.try_call("POST", &format!("/element/{}/clear", el.0), json!({})).await;
        self.try_call("POST", &format!("/element/{}/value", el.0), json!({ "text": text })).await.unwrap();
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.wait_for(css, None, 10).await;
        self.type_into(&el, text).await;
    }

    pub async fn click_on(&self, css: &str, text: Option<&str>) {
        let el = self.wait_for(css, text, 15).await;
        self.click(&el).await;
    }

    /// Runs a script in the page and returns its value.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.try_call("POST", "/execute/sync", json!({ "script": script, "args": args })).await.unwrap_or(Value::Null)
    }

    /// Saves a PNG of the window as `<workspace>/target/screenshots/<name>.png`, and returns it.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call("GET", "/screenshot", Value::Null).await;
        let png =
            base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap_or_default()).unwrap_or_default();
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/screenshots"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        path
    }

    /// Opens a tab (sharing cookies and storage with the others) and returns its handle.
    pub async fn new_tab(&self) -> String {
        let v = self.try_call("POST", "/window/new", json!({ "type": "tab" })).await.unwrap();
        v["handle"].as_str().unwrap().to_owned()
    }

    /// The handle of the tab commands go to.
    pub async fn tab(&self) -> String {
        self.try_call("GET", "/window", Value::Null).await.unwrap().as_str().unwrap().to_owned()
    }

    pub async fn switch_to(&self, handle: &str) {
        self.try_call("POST", "/window", json!({ "handle": handle })).await.unwrap();
    }

    pub async fn current_path(&self) -> String {
        self.exec("return location.pathname + location.search", json!([])).await.as_str().unwrap_or_default().to_owned()
    }

    pub async fn close(self) {
        let _ = self.try_call("DELETE", "", Value::Null).await;
    }
}
