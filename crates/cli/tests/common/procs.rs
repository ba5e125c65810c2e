//! Separate `clave` processes (KDS, engine, gateway) for tests that run a cluster on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `clave` child process that can be killed and started again with the same arguments.
pub struct Proc {
    pub name: String,
    args: Vec<String>,
    pub env: Vec<(String, String)>,
    logs: PathBuf,
    starts: usize,
    child: Option<Child>,
}

impl Proc {
    pub fn new(name: &str, args: &[String], env: &[(&str, String)], logs: &Path) -> Self {
        Self {
            name: name.to_owned(),
            args: args.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            logs: logs.to_path_buf(),
            starts: 0,
            child: None,
        }
    }

    pub fn start(&mut self) {
        self.starts += 1;
        let log = |ext: &str| {
            std::fs::File::create(
                self.logs
                    .join(format!("{}-{}.{ext}", self.name, self.starts)),
            )
            .expect("log file")
        };
        let mut cmd = Command::new(super::bin());
        cmd.args(&self.args)
            .env("NO_COLOR", "1")
            // Debug: the confidentiality sweep searches these logs (transport crates stay quiet).
            .env(
                "RUST_LOG",
                "debug,hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info,tower=info",
            )
            .env_remove("CLAVE_CONFIG_FILE")
            .stdin(Stdio::null())
            .stdout(log("stdout"))
            .stderr(log("stderr"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn clave"));
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(
            self.logs
                .join(format!("{}-{}.stderr", self.name, self.starts)),
        )
        .unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(
            self.logs
                .join(format!("{}-{}.stdout", self.name, self.starts)),
        )
        .unwrap_or_default()
    }

    pub fn assert_running(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().expect("wait"))
        {
            panic!("{} exited ({status}): {}", self.name, self.stderr());
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (bounded); returns whether it exited by itself.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if c.try_wait().ok().flatten().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Sends `req` and reads its answer as JSON (panics, naming the URL, on a transport error or a
/// body that is not JSON).
pub async fn json(req: reqwest::RequestBuilder) -> serde_json::Value {
    let r = req.send().await.unwrap();
    let url = r.url().clone();
    r.json()
        .await
        .unwrap_or_else(|e| panic!("{url} did not answer JSON: {e}"))
}

pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

pub async fn wait_ok(http: &reqwest::Client, url: &str, proc_: &mut Proc, limit: Duration) {
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        proc_.assert_running();
        assert!(
            started.elapsed() < limit,
            "{} did not answer {url} within {limit:?}: {}",
            proc_.name,
            proc_.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
