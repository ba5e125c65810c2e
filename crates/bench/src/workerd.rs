//! The peer: Cloudflare's open-source workerd running the same echo function on 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// Where `crates/bench/workerd.sh` installs the binary, relative to the workspace root.
const INSTALLED: &str = "target/workerd/node_modules/@cloudflare/workerd-linux-64/bin/workerd";

/// The workerd binary: `$WORKERD`, then `target/workerd/...` (found upwards from the bench
/// binary and the current directory), then `workerd` on `PATH`.
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WORKERD").map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().map(Path::to_path_buf));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    for r in roots {
        let p = r.join(INSTALLED);
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("workerd"))
            .find(|p| p.is_file())
    })
}

/// A running workerd serving `code` on 127.0.0.1.
pub struct Workerd {
    child: Child,
    /// Its address.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Workerd {
    /// Write a one-worker capnp config and start `bin serve` on a free port; wait until it answers.
    /// It inherits this process's CPU affinity.
    pub async fn start(bin: &Path, code: &str) -> Result<Self> {
        Self::start_on(bin, code, false).await
    }

    /// [`Self::start`]; with `all_cpus`, free to run on every online CPU whatever this process
    /// is pinned to.
    pub async fn start_on(bin: &Path, code: &str, all_cpus: bool) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = crate::free_port()?;
        std::fs::write(dir.path().join("worker.js"), code)?;
        let config = format!(
            r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .echoWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "main") ],
);

const echoWorker :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "worker.js") ],
  compatibilityDate = "2024-09-23",
);
"#
        );
        let cfg = dir.path().join("config.capnp");
        std::fs::write(&cfg, config)?;
        let mut command = Command::new(bin);
        if all_cpus {
            crate::sys::unpinned(&mut command);
        }
        let child = command
            .arg("serve")
            .arg(&cfg)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut w = Self {
            child,
            addr,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(w);
            }
            if let Ok(Some(status)) = w.child.try_wait() {
                bail!("workerd exited: {status}");
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("workerd did not listen within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
