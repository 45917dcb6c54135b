//! A small W3C WebDriver client for WebKitWebDriver. One `ureq::Agent` keeps the
//! connection alive across requests (a new connection per request proved flaky).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const ENTER: &str = "\u{E007}";
pub const CONTROL: &str = "\u{E009}";
pub const ALT: &str = "\u{E00A}";
pub const ESCAPE: &str = "\u{E00C}";
pub const ARROW_DOWN: &str = "\u{E015}";
pub const SHIFT: &str = "\u{E008}";
pub const TAB: &str = "\u{E004}";

/// JS that names an element as a selector would (`button#send.primary`), for the scripts below.
macro_rules! element_name_js {
    () => {
        "const name = (el) => !el ? null : el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
"
    };
}

/// The page's state as [`Session::describe_page`] reports it.
const DESCRIBE_PAGE: &str = concat!(
    element_name_js!(),
    "
  const shown = (el) => !el.hidden && el.getClientRects().length > 0;
  return {
    title: document.title,
    windowFocused: document.hasFocus(),
    focusedElement: name(document.activeElement),
    openDialogs: Array.from(document.querySelectorAll('dialog[open]'), (d) => d.id),
    views: Array.from(document.querySelectorAll('body > *[id]:not(dialog)'))
      .filter(shown).map((el) => el.id),
    chatTitle: document.getElementById('chat-title')?.textContent ?? null,
    messagesShown: document.querySelectorAll('#messages .message').length,
    lastClick: window.__e2eClick
      ? { on: name(window.__e2eClick.expected), reached: name(window.__e2eClick.got) } : null,
    errorsShown: Array.from(document.querySelectorAll('[role=alert], .banner'))
      .filter((el) => shown(el) && el.textContent.trim())
      .map((el) => name(el) + ': ' + el.textContent.trim()),
  };
"
);

/// Notes the next click anywhere in the page, before the page's own handlers see it.
const ARM_CLICK_WATCH: &str = "
  const watch = { expected: arguments[0], got: null };
  window.__e2eClick = watch;
  document.addEventListener('click', (e) => { watch.got = e.target; }, { capture: true, once: true });
";

/// Where the click that [`ARM_CLICK_WATCH`] watched for landed: `on it` (or inside it),
/// `nowhere` yet, or the element it reached instead.
const CLICK_LANDED: &str = concat!(
    element_name_js!(),
    "
  const watch = window.__e2eClick;
  if (!watch || !watch.got) return 'nowhere';
  if (watch.expected.contains(watch.got)) return 'on it';
  return name(watch.got);
"
);

pub struct Session {
    agent: ureq::Agent,
    base: String,
    id: String,
}

#[derive(Clone, Debug)]
pub struct Element(String);

impl Element {
    /// The element as a script's argument.
    fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

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
        self.call_within(method, path, body, None)
    }

    /// [`Session::call`], giving up after `timeout` instead of the agent's minute.
    fn call_within(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Option<Duration>,
    ) -> Result<Value, String> {
        let url = format!("{}/session/{}{}", self.base, self.id, path);
        let mut request = self.agent.request(method, &url);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
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

    /// Loads `url` in the window, as following a link would.
    pub fn navigate(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })))
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
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

    /// Clicks `css` as a user would, and checks that the page saw a click on it. A click
    /// that reached nothing or another element is a test failure of its own: the page
    /// swallowed it (an element replaced under the pointer between press and release does
    /// that) or moved.
    pub fn click(&self, css: &str) {
        // An <option> is chosen without mouse events (WebDriver's element click).
        let watched = !css.contains("option");
        // A render between finding the element and clicking it leaves a stale reference:
        // find it again, as a person's eye would.
        let mut tries = 0;
        loop {
            let el = self.wait_visible(css);
            let attempt = (if watched {
                self.try_execute(ARM_CLICK_WATCH, json!([el.as_arg()]))
            } else {
                Ok(Value::Null)
            })
            .and_then(|_| self.call("POST", &format!("/element/{}/click", el.0), Some(json!({}))));
            match attempt {
                Ok(_) => break,
                Err(e) if e.contains("stale element") && tries < 3 => tries += 1,
                Err(e) => panic!("click {css}: {e}"),
            }
        }
        if !watched {
            return;
        }
        let landed = self.wait_until_or_none(Duration::from_secs(2), || {
            let landed = self.execute(CLICK_LANDED, json!([]));
            landed
                .as_str()
                .is_some_and(|l| l != "nowhere")
                .then_some(landed)
        });
        match landed.as_ref().and_then(Value::as_str) {
            Some("on it") => {}
            Some(other) => panic!(
                "the click on {css} landed on {other} instead (did the page move under the \
                 pointer?)\n{}",
                self.describe_page()
            ),
            None => panic!(
                "the click on {css} reached nothing in the page (was it rendered again \
                 between press and release?)\n{}",
                self.describe_page()
            ),
        }
    }

    /// Presses the mouse button on `css` and holds it: the first half of a click that
    /// [`Session::release_mouse`] ends.
    pub fn press_on(&self, css: &str) {
        let el = self.wait_visible(css);
        self.mouse_actions(json!([
            { "type": "pointerMove", "origin": el.as_arg(), "x": 0, "y": 0 },
            { "type": "pointerDown", "button": 0 },
        ]))
        .unwrap_or_else(|e| panic!("press on {css}: {e}"));
    }

    /// Releases the button that [`Session::press_on`] held, where the mouse is.
    pub fn release_mouse(&self) {
        self.mouse_actions(json!([{ "type": "pointerUp", "button": 0 }]))
            .unwrap_or_else(|e| panic!("release the mouse: {e}"));
    }

    /// Presses `keys` (WebDriver key codes, such as [`CONTROL`] or "k") down in order,
    /// then lets them go in reverse: a chord, sent to whatever has focus, as a keyboard
    /// would.
    pub fn chord(&self, keys: &[&str]) {
        let mut actions: Vec<Value> = keys
            .iter()
            .map(|k| json!({ "type": "keyDown", "value": k }))
            .collect();
        actions.extend(
            keys.iter()
                .rev()
                .map(|k| json!({ "type": "keyUp", "value": k })),
        );
        self.key_actions(actions)
            .unwrap_or_else(|e| panic!("press {keys:?}: {e}"));
    }

    /// Sends keyboard `actions` (keyDown and keyUp) to whatever has focus.
    fn key_actions(&self, actions: Vec<Value>) -> Result<Value, String> {
        self.call(
            "POST",
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        )
    }

    /// Types `text` key by key into whatever has focus, as a keyboard would: unlike
    /// [`Session::type_into`], it never moves the focus first.
    pub fn type_keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                let key = c.to_string();
                [
                    json!({ "type": "keyDown", "value": key }),
                    json!({ "type": "keyUp", "value": key }),
                ]
            })
            .collect();
        self.key_actions(actions)
            .unwrap_or_else(|e| panic!("type {text:?}: {e}"));
    }

    /// The id (or else the tag name) of the element that has focus.
    pub fn focused(&self) -> String {
        self.execute(
            "const e = document.activeElement; return e ? (e.id || e.tagName.toLowerCase()) : ''",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    fn mouse_actions(&self, actions: Value) -> Result<Value, String> {
        self.call(
            "POST",
            "/actions",
            Some(json!({ "actions": [{
                "type": "pointer", "id": "mouse",
                "parameters": { "pointerType": "mouse" },
                "actions": actions,
            }] })),
        )
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
        self.try_execute(script, args)
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// [`Session::execute`], with a script that failed (a page being rendered again) as an error.
    pub fn try_execute(&self, script: &str, args: Value) -> Result<Value, String> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Waits until the page shows the login view or the main view. An error if the session
    /// is gone (the page crashed or hung), or after `timeout`.
    pub fn wait_for_a_view(&self, timeout: Duration) -> Result<(), String> {
        let script = "return !!document.querySelector('#login-view:not([hidden]), #main-view:not([hidden])')";
        let mut last = Ok(Value::Null);
        let shown = self.wait_until_or_none(timeout, || {
            last = self.try_execute(script, json!([]));
            match &last {
                Ok(Value::Bool(true)) => Some(Ok(())),
                Err(e) if e.contains("invalid session id") => Some(Err(e.clone())),
                _ => None,
            }
        });
        shown.unwrap_or_else(|| Err(format!("no view shown after {timeout:?} (last: {last:?})")))
    }

    /// Runs asynchronous JS in the page: the script calls its last argument with the result.
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
        self.try_screenshot_png(None)
            .unwrap_or_else(|e| panic!("screenshot: {e}"))
    }

    /// The window as a PNG, giving up after `timeout` (the agent's minute with `None`).
    fn try_screenshot_png(&self, timeout: Option<Duration>) -> Result<Vec<u8>, String> {
        use base64::Engine;
        let b64 = self.call_within("GET", "/screenshot", None, timeout)?;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .map_err(|e| format!("the screenshot is not base64: {e}"))
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

    /// Polls `check` every 50 ms until it gives a value, or gives `None` after `timeout`.
    fn wait_until_or_none<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        let start = Instant::now();
        loop {
            if let Some(value) = check() {
                return Some(value);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `check` every 50 ms until it gives a value, or panics after `timeout`.
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl FnMut() -> Option<T>,
    ) -> T {
        self.wait_until_or_none(timeout, check).unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.describe_page()
            )
        })
    }

    /// What the page shows, for a failed wait: enough to tell a click that did nothing from a
    /// hung page or a dialog in the way. Also saves a screenshot and names it.
    pub fn describe_page(&self) -> String {
        let asked = Instant::now();
        let state = self.call_within(
            "POST",
            "/execute/sync",
            Some(json!({ "script": DESCRIBE_PAGE, "args": [] })),
            Some(Duration::from_secs(10)),
        );
        let took = asked.elapsed();
        let state = match state {
            Ok(state) => serde_json::to_string_pretty(&state).unwrap_or_default(),
            Err(e) => format!("the page did not answer: {e}"),
        };
        let shot = crate::harness::profile_dir().join("screenshots");
        let shot = std::fs::create_dir_all(&shot)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                // WebKitWebDriver's screenshot of a window left alone for ~10 s never comes,
                // though the window still paints (seen with xwd): give up on it.
                let png = self.try_screenshot_png(Some(Duration::from_secs(10)))?;
                let at = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                let path = shot.join(format!("failed-{at}.png"));
                std::fs::write(&path, png).map_err(|e| e.to_string())?;
                Ok(path.display().to_string())
            })
            .unwrap_or_else(|e| format!("none ({e})"));
        format!("the page, which answered in {took:?}: {state}\nscreenshot: {shot}")
    }

    /// Waits until the `textContent` of `css` contains `needle`, shown or not (a line in a
    /// closed dialog has no rendered text for WebDriver).
    pub fn wait_content_contains(&self, css: &str, needle: &str, timeout: Duration) -> String {
        self.wait_until(
            &format!("{css}'s content to contain {needle:?}"),
            timeout,
            || {
                let text = self.execute(
                    "return document.querySelector(arguments[0])?.textContent ?? ''",
                    json!([css]),
                );
                let text = text.as_str().unwrap_or_default().to_string();
                text.contains(needle).then_some(text)
            },
        )
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
