//! A small W3C WebDriver client for WebKitWebDriver. One `ureq::Agent` keeps the
//! connection alive across requests (a new connection per request proved flaky).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const ENTER: &str = "\u{E007}";
pub const SHIFT: &str = "\u{E008}";

pub struct Session {
    agent: ureq::Agent,
    base: String,
    id: String,
}

#[derive(Clone, Debug)]
pub struct Element(String);

impl Session {
    /// Starts the app through the driver at `base` (e.g. `http://127.0.0.1:4444`). A session
    /// that has not opened in 30 s will not: the caller starts over with a fresh driver.
    pub fn try_start(base: &str, binary: &str) -> Result<Session, String> {
        let opening = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "webkitgtk:browserOptions": { "binary": binary, "args": [] }
        }}});
        let response: Value = opening
            .post(&format!("{base}/session"))
            .send_json(caps)
            .map_err(|e| format!("opening a session: {e}"))?
            .into_json()
            .map_err(|e| format!("reading the new session: {e}"))?;
        let id = response["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {response}"))?
            .to_string();
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        Ok(Session {
            agent,
            base: base.to_string(),
            id,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}/session/{}{}", self.base, self.id, path);
        let request = self.agent.request(method, &url);
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match response {
            Ok(r) => Ok(r.into_json::<Value>().map_err(|e| e.to_string())?["value"].take()),
            Err(ureq::Error::Status(code, r)) => Err(format!(
                "{method} {path}: HTTP {code}: {}",
                r.into_string().unwrap_or_default()
            )),
            Err(e) => Err(format!("{method} {path}: {e}")),
        }
    }

    pub fn find(&self, css: &str) -> Result<Element, String> {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        Ok(Element(
            v[ELEMENT_KEY].as_str().ok_or("no element")?.to_string(),
        ))
    }

    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.call(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        )
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e[ELEMENT_KEY].as_str().map(|s| Element(s.to_string())))
        .collect()
    }

    pub fn click(&self, css: &str) {
        let el = self.wait_visible(css);
        self.call("POST", &format!("/element/{}/click", el.0), Some(json!({})))
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.wait_visible(css);
        self.call(
            "POST",
            &format!("/element/{}/value", el.0),
            Some(json!({ "text": text })),
        )
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub fn clear(&self, css: &str) {
        let el = self.wait_visible(css);
        self.call("POST", &format!("/element/{}/clear", el.0), Some(json!({})))
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
    }

    pub fn text_of(&self, el: &Element) -> String {
        self.call("GET", &format!("/element/{}/text", el.0), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn text(&self, css: &str) -> String {
        self.find(css)
            .map(|el| self.text_of(&el))
            .unwrap_or_default()
    }

    /// The `textContent` of every element matching `css`, in document order.
    pub fn texts(&self, css: &str) -> Vec<String> {
        self.execute(
            "return Array.from(document.querySelectorAll(arguments[0]), (e) => e.textContent)",
            json!([css]),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
    }

    pub fn is_displayed(&self, css: &str) -> bool {
        self.find(css)
            .and_then(|el| self.call("GET", &format!("/element/{}/displayed", el.0), None))
            .is_ok_and(|v| v == Value::Bool(true))
    }

    /// Runs synchronous JS in the page and returns its result.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs asynchronous JS in the page: the script calls its last argument with the result.
    #[allow(dead_code)] // for a test that waits on a promise
    pub fn execute_async(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Resizes the app window (there is no window manager, so this is exact).
    pub fn set_window_size(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .unwrap_or_else(|e| panic!("resize to {width}×{height}: {e}"));
    }

    pub fn screenshot_png(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.call("GET", "/screenshot", None).expect("screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("screenshot is base64")
    }

    pub fn wait_visible(&self, css: &str) -> Element {
        self.wait_until(
            &format!("{css} to be visible"),
            Duration::from_secs(10),
            || {
                if self.is_displayed(css) {
                    self.find(css).ok()
                } else {
                    None
                }
            },
        )
    }

    /// Polls `check` every 50 ms until it gives a value, or panics after `timeout`.
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(value) = check() {
                return value;
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_text_contains(&self, css: &str, needle: &str, timeout: Duration) -> String {
        self.wait_until(&format!("{css} to contain {needle:?}"), timeout, || {
            let text = self.text(css);
            text.contains(needle).then_some(text)
        })
    }

    pub fn end(&self) {
        let _ = self
            .agent
            .delete(&format!("{}/session/{}", self.base, self.id))
            .call();
    }
}
