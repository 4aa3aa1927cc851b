//! A headless Chromium for end-to-end tests of the coordinator's web pages: [`Browser`] starts
//! Debian's `chromedriver` (package `chromium-driver`) on a loopback port and drives one
//! Chromium session through it over the W3C WebDriver HTTP protocol: navigate, wait until a
//! JavaScript predicate holds, fill and click by CSS selector, read text and attributes, save
//! PNG screenshots under [`screenshot_dir`].
//!
//! Decisions, and what is deliberately absent:
//! - No WebDriver client crate (fantoccini, thirtyfour): they bring TLS stacks and a second
//!   HTTP client for a protocol that here only ever runs as JSON over loopback HTTP/1.1. The
//!   workspace's hyper client, one request per connection, is enough.
//! - No element handles are kept: every helper finds its element by CSS selector when called,
//!   so a page that re-renders never leaves a test holding a stale reference.
//! - No implicit waits: a helper on a missing element fails at once with WebDriver's "no such
//!   element"; waiting is always explicit, through [`Browser::wait_for`], with a timeout.
//! - Every wait is bounded: chromedriver's start ([`DRIVER_START`]), Chromium's
//!   ([`SESSION_START`]), each WebDriver request ([`REQUEST_BUDGET`]), page loads and scripts
//!   (session timeouts [`PAGE_LOAD`], [`SCRIPT`]).
//! - Nothing survives the [`Browser`]: chromedriver runs as the leader of its own process
//!   group, which Chromium and all its helper processes inherit, and the whole group is killed
//!   on drop, even when a test panics before [`Browser::close`].
//!
//! Pages are only ever the tests' own servers on 127.0.0.1; Chromium is started with its
//! background networking (component updates, sync, QUIC probes) turned off.
//!
//! One cohesive client of one protocol, so it stays in one file past the usual module size.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};

/// Debian's chromedriver (package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's Chromium launcher (package `chromium`), a shell script that execs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long chromedriver may take to print the port it listens on.
pub const DRIVER_START: Duration = Duration::from_secs(10);
/// How long creating the session may take: Chromium starting with a fresh profile (well under
/// a second on an idle machine; the slack is for a machine busy compiling other tests).
pub const SESSION_START: Duration = Duration::from_secs(30);
/// Session timeout for a navigation to finish loading.
pub const PAGE_LOAD: Duration = Duration::from_secs(20);
/// Session timeout for one synchronous script.
pub const SCRIPT: Duration = Duration::from_secs(10);
/// Bound on any single WebDriver request: above [`PAGE_LOAD`] and [`SCRIPT`], so Chromium's
/// own timeout answers first, with its clearer error.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(30);
/// How often [`Browser::wait_for`] evaluates its predicate.
pub const POLL: Duration = Duration::from_millis(100);
/// Characters of the page's text quoted in a timeout error.
const EXCERPT_CHARS: usize = 300;

/// The W3C key of a web element reference in JSON (a constant of the spec).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium's command line. `--no-sandbox`: tests and CI run as root, where Chromium's sandbox
/// refuses to start. `--disable-dev-shm-usage`: containers have a small /dev/shm. The
/// `--disable-*` networking flags keep the browser from contacting anything but the page's own
/// server. A fixed window size makes screenshots and layout comparable between runs.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,800",
];

/// An error answer from chromedriver, as the W3C protocol reports it.
#[derive(Debug, Clone)]
pub struct WebDriverError {
    /// What was asked, "METHOD /path".
    pub request: String,
    /// The W3C error code: "no such element", "javascript error", "timeout", ...
    pub code: String,
    /// chromedriver's message, without its "(Session info: ...)" trailer.
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WebDriver {}: {}: {}",
            self.request, self.code, self.message
        )
    }
}

impl std::error::Error for WebDriverError {}

/// Where screenshots go: `<target>/screenshots/`, created if missing.
///
/// `<target>` is the directory this build writes to (`CARGO_TARGET_DIR` when set, else the
/// workspace's `target/`), derived from the running executable rather than from the
/// environment, which `cargo test` does not pass on: a test executable is
/// `<target>/<profile>/deps/NAME-HASH`, a harness binary `<target>/<profile>/NAME`. (With an
/// explicit `--target TRIPLE`, `<target>` is `target/TRIPLE`.)
pub fn screenshot_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let dir = exe.parent().context("the executable has no directory")?;
    let profile = if dir.file_name() == Some("deps".as_ref()) {
        dir.parent().context("deps/ has no parent")?
    } else {
        dir
    };
    let target = profile
        .parent()
        .with_context(|| format!("{} is not in a target directory", exe.display()))?;
    let shots = target.join("screenshots");
    std::fs::create_dir_all(&shots).with_context(|| format!("creating {}", shots.display()))?;
    Ok(shots)
}

/// Prints the SKIP line once per process, straight to stderr (past the test harness's output
/// capture, so that `cargo test` shows it).
fn skip(missing: &str) {
    static PRINTED: Once = Once::new();
    PRINTED.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: chromedriver not installed ({missing} is missing; `apt-get install chromium \
             chromium-driver fonts-dejavu-core`): the browser tests did not run"
        );
    });
}

/// chromedriver as a child process, leader of its own process group. Dropping it kills the
/// whole group (chromedriver, Chromium, Chromium's renderers and helpers) with SIGKILL.
struct Driver {
    /// The process, held for its `kill_on_drop` (tokio reaps it, after the group kill).
    _child: Child,
    /// Its process group: its pid, taken at spawn (`process_group(0)`). Kept rather than asked
    /// of the child at drop, which forgets the pid once it has reaped the process: a chromedriver
    /// that crashed would leave its Chromium running.
    pgid: nix::unistd::Pid,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Linux does not reuse a pid while a group of that id has members, so while any of
        // chromedriver's processes lives this cannot hit a stranger's group; once all are gone
        // the kill fails with ESRCH, which is why its result is ignored.
        let _ = nix::sys::signal::killpg(self.pgid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// A headless Chromium session driven through chromedriver. Every method acts on the current
/// page of its single window; selectors are CSS.
pub struct Browser {
    /// chromedriver's port on 127.0.0.1.
    port: u16,
    /// The WebDriver session: one Chromium per [`Browser`].
    session: String,
    /// Where [`Browser::screenshot`] writes.
    shots: PathBuf,
    /// chromedriver and everything it started; killed on drop. Declared before `dir` so the
    /// processes are gone before their profile directory is removed.
    driver: Driver,
    /// Chromium's fresh profile (`profile/`) and chromedriver's stderr (`chromedriver.log`).
    dir: tempfile::TempDir,
}

/// Screenshots saved by timed-out waits in this process, for `timeout-<n>.png`.
static TIMEOUTS: AtomicU32 = AtomicU32::new(0);

impl Browser {
    /// Starts chromedriver and a Chromium session with a fresh profile. `Ok(None)`, after
    /// printing a SKIP line, when [`CHROMEDRIVER`] or [`CHROMIUM`] is not installed; any other
    /// failure is an error (CI installs both).
    pub async fn start() -> anyhow::Result<Option<Browser>> {
        if let Some(missing) = [CHROMEDRIVER, CHROMIUM]
            .into_iter()
            .find(|bin| !Path::new(bin).exists())
        {
            skip(missing);
            return Ok(None);
        }
        let shots = screenshot_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("meridian-browser-")
            .tempdir()
            .context("creating the browser's temporary directory")?;
        let log_path = dir.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        // --port=0: chromedriver binds a free port itself and prints it, so there is no race
        // with another test between picking a port and binding it.
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {CHROMEDRIVER}"))?;
        let stdout = child.stdout.take().context("chromedriver's stdout")?;
        let pid = child.id().context("chromedriver exited at once")?;
        let driver = Driver {
            _child: child,
            pgid: nix::unistd::Pid::from_raw(i32::try_from(pid)?),
        };
        let port = match tokio::time::timeout(DRIVER_START, read_port(stdout)).await {
            Ok(Ok(port)) => port,
            Ok(Err(e)) => {
                return Err(e.context(format!("starting chromedriver{}", log_tail(&log_path))));
            }
            Err(_) => anyhow::bail!(
                "chromedriver did not report its port within {DRIVER_START:?}{}",
                log_tail(&log_path)
            ),
        };

        let profile = dir.path().join("profile");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {
                "implicit": 0,
                "pageLoad": PAGE_LOAD.as_millis(),
                "script": SCRIPT.as_millis(),
            },
            // Console messages for `console_errors`.
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let created = call(port, Method::POST, "/session", Some(caps), SESSION_START)
            .await
            .with_context(|| format!("starting Chromium{}", log_tail(&log_path)))?;
        let session = created
            .get("sessionId")
            .and_then(Value::as_str)
            .with_context(|| format!("no sessionId in the new session's answer: {created}"))?
            .to_owned();
        Ok(Some(Browser {
            port,
            session,
            shots,
            driver,
            dir,
        }))
    }

    /// Ends the session (Chromium exits cleanly), then kills whatever is left, as drop does.
    pub async fn close(self) -> anyhow::Result<()> {
        self.cmd(Method::DELETE, "", None).await.map(drop)
    }

    /// Opens `url` and waits for it to load (at most [`PAGE_LOAD`]).
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .with_context(|| format!("opening {url}"))
            .map(drop)
    }

    /// The current page's URL.
    pub async fn current_url(&self) -> anyhow::Result<String> {
        string(self.cmd(Method::GET, "/url", None).await?)
    }

    /// The current page's title.
    pub async fn title(&self) -> anyhow::Result<String> {
        string(self.cmd(Method::GET, "/title", None).await?)
    }

    /// Runs `js_body` as the body of a function (so it ends with `return ...`) with `args` as
    /// `arguments`, and deserializes what it returns. A script that throws is a
    /// [`WebDriverError`] with code "javascript error".
    pub async fn eval<T: DeserializeOwned>(
        &self,
        js_body: &str,
        args: Vec<Value>,
    ) -> anyhow::Result<T> {
        let v = self
            .cmd(
                Method::POST,
                "/execute/sync",
                Some(json!({ "script": js_body, "args": args })),
            )
            .await?;
        serde_json::from_value(v.clone())
            .with_context(|| format!("unexpected result {v} of script `{js_body}`"))
    }

    /// Evaluates `js_predicate_body` (a function body: `return ...`) every [`POLL`] until it
    /// returns `true`, and returns how long that took. A predicate that throws counts as not
    /// yet true (an element that is not there yet), and what it threw is reported if time runs
    /// out. After `timeout` the error names the predicate, its last result, the page's URL and
    /// the start of its text, and the path of a screenshot (`timeout-<n>.png`) of the page.
    pub async fn wait_for(
        &self,
        js_predicate_body: &str,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let start = tokio::time::Instant::now();
        loop {
            let last = match self.eval::<Value>(js_predicate_body, Vec::new()).await {
                Ok(Value::Bool(true)) => return Ok(start.elapsed()),
                Ok(other) => format!("returned {other}"),
                Err(e) => match e.downcast_ref::<WebDriverError>() {
                    Some(w) if w.code == "javascript error" => format!("threw: {}", w.message),
                    _ => return Err(e.context(format!("waiting for `{js_predicate_body}`"))),
                },
            };
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Err(self.timeout_error(js_predicate_body, timeout, &last).await);
            }
            tokio::time::sleep(POLL.min(timeout - elapsed)).await;
        }
    }

    /// The error of a timed-out [`Browser::wait_for`], with what can be learnt of the page.
    async fn timeout_error(&self, predicate: &str, timeout: Duration, last: &str) -> anyhow::Error {
        let url = self
            .current_url()
            .await
            .unwrap_or_else(|e| format!("(unknown: {e:#})"));
        let text = self
            .eval::<String>(
                "return document.body ? document.body.innerText : '';",
                Vec::new(),
            )
            .await
            .map_or_else(|e| format!("(unknown: {e:#})"), |t| excerpt(&t));
        let n = TIMEOUTS.fetch_add(1, Ordering::SeqCst) + 1;
        let shot = self.screenshot(&format!("timeout-{n}")).await.map_or_else(
            |e| format!("(not saved: {e:#})"),
            |p| p.display().to_string(),
        );
        anyhow!(
            "wait_for timed out after {timeout:?}: `{predicate}` never returned true (last: \
             {last})\n  page: {url}\n  text: {text}\n  screenshot: {shot}"
        )
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let id = self.find(css).await?;
        string(self.element_cmd(Method::GET, &id, "/text", None).await?)
    }

    /// How many elements match `css` (0 is not an error).
    pub async fn count(&self, css: &str) -> anyhow::Result<usize> {
        let found = self
            .cmd(Method::POST, "/elements", Some(locator(css)))
            .await?;
        found
            .as_array()
            .map(Vec::len)
            .with_context(|| format!("find elements `{css}` answered {found}"))
    }

    /// Clears the first input matching `css` and types `value` into it, as a user would (key
    /// events, so the page's input handlers run).
    pub async fn fill(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let id = self.find(css).await?;
        self.element_cmd(Method::POST, &id, "/clear", None).await?;
        self.element_cmd(Method::POST, &id, "/value", Some(json!({ "text": value })))
            .await
            .map(drop)
    }

    /// Clicks the first element matching `css` (scrolled into view; an element covered by
    /// another is an "element click intercepted" error, as for a user).
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let id = self.find(css).await?;
        self.element_cmd(Method::POST, &id, "/click", None)
            .await
            .map(drop)
    }

    /// Submits the form matching `css`, or the form of the control matching it, with
    /// `requestSubmit()`: validation and submit handlers run, as when a user presses Enter.
    pub async fn submit_form(&self, css: &str) -> anyhow::Result<()> {
        let id = self.find(css).await?;
        self.eval::<Value>(
            "const e = arguments[0]; \
             const form = e instanceof HTMLFormElement ? e : e.form; \
             if (!form) { throw new Error('not a form, nor in one'); } \
             form.requestSubmit(); return null;",
            vec![json!({ ELEMENT_KEY: id })],
        )
        .await
        .with_context(|| format!("submitting the form `{css}`"))
        .map(drop)
    }

    /// The attribute `name` of the first element matching `css` (`None` when it has none).
    pub async fn attr(&self, css: &str, name: &str) -> anyhow::Result<Option<String>> {
        anyhow::ensure!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':')),
            "attribute name {name:?} is not a plain name"
        );
        let id = self.find(css).await?;
        let v = self
            .element_cmd(Method::GET, &id, &format!("/attribute/{name}"), None)
            .await?;
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => anyhow::bail!("attribute {name} of `{css}` is {other}"),
        }
    }

    /// Saves a PNG of the viewport as `<screenshot_dir()>/<name>.png` (".png" is added unless
    /// `name` has it) and returns its path. `name` is a plain file name: letters, digits,
    /// `-`, `_`, `.`.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            !name.is_empty()
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "screenshot name {name:?} is not a plain file name"
        );
        let file = if name.ends_with(".png") {
            name.to_owned()
        } else {
            format!("{name}.png")
        };
        let encoded = string(self.cmd(Method::GET, "/screenshot", None).await?)?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .context("decoding the screenshot's base64")?;
        let path = self.shots.join(file);
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Messages the page logged at level SEVERE (`console.error`, uncaught exceptions, failed
    /// resource loads) since the previous call: chromedriver hands each entry out once.
    /// chromedriver's log endpoint is not in the W3C protocol, but it serves it in W3C mode.
    pub async fn console_errors(&self) -> anyhow::Result<Vec<String>> {
        let entries = self
            .cmd(Method::POST, "/se/log", Some(json!({ "type": "browser" })))
            .await?;
        let entries = entries
            .as_array()
            .with_context(|| format!("the browser log is {entries}"))?;
        Ok(entries
            .iter()
            .filter(|e| e.get("level").and_then(Value::as_str) == Some("SEVERE"))
            .filter_map(|e| e.get("message").and_then(Value::as_str))
            .map(str::to_owned)
            .collect())
    }

    /// The profile and log directory of this browser (for a test that wants chromedriver's
    /// log, `chromedriver.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// chromedriver's process id, which is also the id of the process group that holds it,
    /// Chromium and Chromium's helpers (all killed together on drop).
    pub fn process_group(&self) -> u32 {
        self.driver.pgid.as_raw().unsigned_abs()
    }

    /// The reference of the first element matching `css`.
    async fn find(&self, css: &str) -> anyhow::Result<String> {
        let found = self
            .cmd(Method::POST, "/element", Some(locator(css)))
            .await?;
        found
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("find element `{css}` answered {found}"))
    }

    /// A command on element `id` of this session.
    async fn element_cmd(
        &self,
        method: Method,
        id: &str,
        rest: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        self.cmd(method, &format!("/element/{id}{rest}"), body)
            .await
    }

    /// A command on this session: `/session/{id}{rest}`.
    async fn cmd(&self, method: Method, rest: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let path = format!("/session/{}{rest}", self.session);
        call(self.port, method, &path, body, REQUEST_BUDGET).await
    }
}

/// The W3C locator for a CSS selector.
fn locator(css: &str) -> Value {
    json!({ "using": "css selector", "value": css })
}

/// A string result, or an error saying what came instead.
fn string(v: Value) -> anyhow::Result<String> {
    match v {
        Value::String(s) => Ok(s),
        other => anyhow::bail!("expected a string, WebDriver answered {other}"),
    }
}

/// The start of a page's text on one line: whitespace collapsed, at most [`EXCERPT_CHARS`].
fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(EXCERPT_CHARS) {
        Some((at, _)) => format!("{:?}…", &flat[..at]),
        None => format!("{flat:?}"),
    }
}

/// Reads chromedriver's stdout up to its "started successfully on port N." line, then leaves a
/// task draining the rest, so chromedriver can never block on a full pipe.
async fn read_port(stdout: ChildStdout) -> anyhow::Result<u16> {
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = String::new();
    while let Some(line) = lines.next_line().await? {
        if let Some(port) = parse_port(&line) {
            let mut rest = lines.into_inner();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
            });
            anyhow::ensure!(
                port != 0,
                "chromedriver did not say which port it picked: {line}"
            );
            return Ok(port);
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    anyhow::bail!("chromedriver exited before listening; its stdout:\n{seen}")
}

/// The port in chromedriver's "ChromeDriver was started successfully on port 38989." line.
fn parse_port(line: &str) -> Option<u16> {
    const MARK: &str = "started successfully on port ";
    let rest = &line[line.find(MARK)? + MARK.len()..];
    rest.trim().trim_end_matches('.').parse().ok()
}

/// The end of chromedriver's stderr (Chromium's too), for start-up errors.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\nchromedriver's log ({}):\n{tail}", path.display())
    }
}

/// One WebDriver request on its own loopback connection, bounded by `budget`; the `value` of
/// the answer, or a [`WebDriverError`].
async fn call(
    port: u16,
    method: Method,
    path: &str,
    body: Option<Value>,
    budget: Duration,
) -> anyhow::Result<Value> {
    let what = format!("{method} {path}");
    tokio::time::timeout(budget, exchange(port, method, path, body))
        .await
        .map_err(|_| anyhow!("WebDriver {what}: no answer within {budget:?}"))?
        .with_context(|| format!("WebDriver {what}"))
}

async fn exchange(
    port: u16,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    // A POST without parameters still carries an empty JSON object, as the protocol requires.
    let body = match (body, &method) {
        (Some(b), _) => Some(b),
        (None, &Method::POST) => Some(json!({})),
        (None, _) => None,
    };
    let request = Request::builder()
        .method(method.clone())
        .uri(path)
        // chromedriver refuses a Host that is not local (DNS rebinding protection).
        .header(header::HOST, format!("127.0.0.1:{port}"))
        .header(header::CONNECTION, "close");
    let request = match body {
        Some(b) => request
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Full::new(Bytes::from(serde_json::to_vec(&b)?)))?,
        None => request.body(Full::new(Bytes::new()))?,
    };
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .context("connecting to chromedriver")?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let answer = async move {
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, bytes))
    };
    // The connection must be polled while the answer is read. Once it ends (the server
    // closed it, or an I/O error, which the answer reports too) it only waits for the answer.
    let conn = async move {
        let _ = conn.await;
        std::future::pending::<std::convert::Infallible>().await
    };
    let (status, bytes) = tokio::select! {
        answer = answer => answer?,
        never = conn => match never {},
    };
    let json: Value = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "HTTP {status}, not JSON: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        )
    })?;
    let mut value = match json {
        Value::Object(mut o) => o.remove("value").unwrap_or(Value::Null),
        other => anyhow::bail!("HTTP {status}, no `value`: {other}"),
    };
    let code = value
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match code {
        None if status.is_success() => Ok(value),
        code => Err(WebDriverError {
            request: format!("{method} {path}"),
            code: code.unwrap_or_else(|| format!("HTTP {status}")),
            message: clean_message(value.get_mut("message").map(Value::take)),
        }
        .into()),
    }
}

/// chromedriver's message without the "(Session info: chrome=…)" line it appends to each.
fn clean_message(message: Option<Value>) -> String {
    let text = match message {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("(Session info:"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_line_parses() {
        assert_eq!(
            parse_port("ChromeDriver was started successfully on port 38989."),
            Some(38989)
        );
        assert_eq!(parse_port("Only local connections are allowed."), None);
    }

    #[test]
    fn session_info_is_dropped_from_messages() {
        let m = "no such element: Unable to locate element: {\"selector\":\"#x\"}\n  \
                 (Session info: chrome=156.0.8078.108)";
        assert_eq!(
            clean_message(Some(Value::String(m.into()))),
            "no such element: Unable to locate element: {\"selector\":\"#x\"}"
        );
        assert_eq!(clean_message(None), "");
    }

    #[test]
    fn excerpt_is_one_bounded_line() {
        assert_eq!(excerpt("a\n\n b  c"), "\"a b c\"");
        let long = "é".repeat(EXCERPT_CHARS + 5);
        assert_eq!(excerpt(&long), format!("{:?}…", "é".repeat(EXCERPT_CHARS)));
    }
}
