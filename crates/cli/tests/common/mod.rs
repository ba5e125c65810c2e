//! Helpers for tests that drive the real `clave` binary.
#![allow(dead_code, clippy::unwrap_used)]

pub mod leaks;
pub mod procs;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `clave` binary built by cargo for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_clave")
}

/// The workspace root (for `examples/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// A `clave dev` child process with its logs captured to files; stopped (SIGINT) on drop.
pub struct DevProcess {
    child: Option<Child>,
    pub url: String,
    pub stdout_log: PathBuf,
    pub stderr_log: PathBuf,
}

impl DevProcess {
    /// Start `clave dev` on `listen` with `data_dir`, publishing into `config_dir`; wait until
    /// `dev.json` names a gateway that answers.
    pub fn start(listen: &str, data_dir: &Path, config_dir: &Path, logs: &Path, tag: &str) -> Self {
        let dev_json = config_dir.join("dev.json");
        let _ = std::fs::remove_file(&dev_json);
        let stdout_log = logs.join(format!("dev-{tag}.stdout"));
        let stderr_log = logs.join(format!("dev-{tag}.stderr"));
        let child = Command::new(bin())
            .args(["dev", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .env("CLAVE_CONFIG_DIR", config_dir)
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .env_remove("CLAVE_GATEWAY")
            .env_remove("CLAVE_TOKEN")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_log).expect("stdout log"))
            .stderr(std::fs::File::create(&stderr_log).expect("stderr log"))
            .spawn()
            .expect("spawn clave dev");
        let mut p = DevProcess {
            child: Some(child),
            url: String::new(),
            stdout_log,
            stderr_log,
        };
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&dev_json)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                && let Some(url) = v["gateway"].as_str()
            {
                let addr = url.trim_start_matches("http://").to_owned();
                if std::net::TcpStream::connect(&addr).is_ok() {
                    p.url = url.to_owned();
                    return p;
                }
            }
            if let Some(status) = p.child.as_mut().unwrap().try_wait().expect("try_wait") {
                panic!(
                    "clave dev exited early ({status}): {}",
                    std::fs::read_to_string(&p.stderr_log).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "clave dev did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Stop gracefully (SIGINT, as Ctrl-C) and wait.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Run `clave` with `args` and the given config dir, no stdin.
pub fn clave(config_dir: &Path, args: &[&str]) -> Output {
    clave_with_env(config_dir, args, &[])
}

/// Run `clave` with extra environment variables.
pub fn clave_with_env(config_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = clave_command(config_dir, args);
    cmd.stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run clave")
}

/// Run `clave` with `input` on stdin (as `echo ... | clave ...`).
pub fn clave_stdin(config_dir: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = clave_command(config_dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run clave");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("run clave")
}

/// `clave` with `args`, in the workspace root, with the config dir `config_dir` and none of the
/// caller's settings (gateway, token, project, insecure dev mode, log filter).
pub fn clave_command(config_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(root())
        .env("CLAVE_CONFIG_DIR", config_dir)
        .env("NO_COLOR", "1")
        .env_remove("CLAVE_GATEWAY")
        .env_remove("CLAVE_TOKEN")
        .env_remove("CLAVE_PROJECT")
        .env_remove("CLAVE_INSECURE_DEV")
        .env_remove("RUST_LOG");
    cmd
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert success, printing stderr otherwise.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "clave failed ({:?}): stdout={} stderr={}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// The code hash printed by `clave deploy --json`.
pub fn deploy_json(config_dir: &Path, file: &str, name: &str) -> serde_json::Value {
    let o = clave(config_dir, &["--json", "deploy", file, "--name", name]);
    serde_json::from_str(&ok(&o)).expect("deploy --json")
}
