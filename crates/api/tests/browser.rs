//! The dashboard in a real browser: headless Chromium driven by chromedriver over the W3C
//! WebDriver protocol (a few JSON calls with reqwest). Signs in through `/ui/login`, follows the
//! first patient link of the overview and checks that the timeline SVG is laid out with its
//! target-sum curve, drug bars and markers.
//!
//! Needs `chromium` and `chromedriver` (Debian packages `chromium`, `chromium-driver`; `scripts/setup`
//! installs them). `REGISTRY_CHROMIUM` / `REGISTRY_CHROMEDRIVER` override the paths.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{Fixture, ALL};

struct Driver {
    child: Child,
    base: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn start_driver() -> Driver {
    let bin = std::env::var("REGISTRY_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    assert!(
        std::path::Path::new(&bin).is_file(),
        "{bin} is missing: run scripts/setup (apt-get install -y chromium chromium-driver)"
    );
    let port = free_port();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, base: format!("http://127.0.0.1:{port}"), _profile: tempfile::tempdir().expect("profile dir") }
}

struct Session {
    http: reqwest::Client,
    url: String,
}

impl Session {
    async fn new(d: &Driver) -> Session {
        let http = reqwest::Client::new();
        let chromium = std::env::var("REGISTRY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,1600",
                         format!("--user-data-dir={}", d._profile.path().display())]
            }
        }}});
        let r: Value = http
            .post(format!("{}/session", d.base))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let id = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_owned();
        Session { http, url: format!("{}/session/{id}", d.base) }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req.send().await.expect("webdriver call").json().await.expect("json");
        r["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn script(&self, js: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": js, "args": []}))).await
    }

    async fn find(&self, css: &str) -> Option<String> {
        let v = self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).map(str::to_owned)
    }

    async fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            assert!(Instant::now() < deadline, "{css} never appeared");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn close(&self) {
        self.call(reqwest::Method::DELETE, "", None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_a_patient_timeline_in_chromium() {
    let f = Fixture::new(25);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = f.app();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(registry_api::serve(listener, app, async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");

    let driver = start_driver();
    let s = Session::new(&driver).await;
    // Without signing in, the dashboard refuses.
    s.goto(&format!("{base}/")).await;
    let text = s.script("return document.body.innerText").await;
    assert!(text.as_str().unwrap_or_default().contains("/ui/login"), "{text}");

    s.goto(&format!("{base}/ui/login?token={ALL}")).await;
    s.wait_for("#n-patients").await;
    // The cookie is HttpOnly: scripts cannot read it.
    assert_eq!(s.script("return document.cookie").await, json!(""));
    let n = s.script("return document.querySelector('#n-patients').textContent").await;
    assert_eq!(n, json!(f.sites().len().to_string()));
    // The report's Kaplan–Meier figures are drawn.
    let figs = s.script("return document.querySelectorAll('figure svg').length").await;
    assert!(figs.as_u64().unwrap_or(0) >= 3, "figures: {figs}");

    // Follow the first patient with a PD1 (its timeline has the most to draw), else the first.
    let href = s
        .script(
            "const rows=[...document.querySelectorAll('table.patients tbody tr')];\
             const r=rows.find(r=>r.children[4].textContent!=='–')||rows[0];\
             const a=r.querySelector('a.patient-link'); a.click(); return a.getAttribute('href');",
        )
        .await;
    let href = href.as_str().expect("a patient link").to_owned();
    assert!(href.starts_with("/ui/patients/"), "{href}");
    s.wait_for("svg#timeline").await;
    let url = s.call(reqwest::Method::GET, "/url", None).await;
    assert!(url.as_str().unwrap_or_default().ends_with(&href), "{url}");
    let layout = s
        .script(
            "const svg=document.querySelector('svg#timeline'); const b=svg.getBoundingClientRect();\
             const curve=svg.querySelector('path.target-sum');\
             return {w:b.width, h:b.height, curve: curve? curve.getTotalLength():0,\
                     points: svg.querySelectorAll('g.response circle').length,\
                     drugs: svg.querySelectorAll('rect.drug').length,\
                     t0: svg.querySelectorAll('g.marker.t0').length,\
                     pd1: svg.querySelectorAll('g.marker.pd1').length};",
        )
        .await;
    assert!(layout["w"].as_f64().unwrap_or(0.0) > 300.0, "{layout}");
    assert!(layout["h"].as_f64().unwrap_or(0.0) > 200.0, "{layout}");
    assert!(layout["curve"].as_f64().unwrap_or(0.0) > 0.0, "the target-sum curve has length: {layout}");
    assert!(layout["points"].as_u64().unwrap_or(0) >= 2, "{layout}");
    assert!(layout["drugs"].as_u64().unwrap_or(0) >= 1, "{layout}");
    assert_eq!(layout["t0"], 1, "{layout}");
    assert_eq!(layout["pd1"], 1, "{layout}");
    s.close().await;
    let _ = stop.send(());
    server.await.expect("join").expect("server");
}
