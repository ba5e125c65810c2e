//! Bundles and the project file with the real `clave` binary: the code hash recomputed
//! independently from the encoding docs/bundles.md documents, imports outside the bundle refused
//! at deploy, and a multi-module function from `clave init --template json-api` deployed by
//! `clave dev --watch`, redeployed on a change, and called with a method, path and query.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::BufReader;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{bin, ok, stderr, stdout};
use sha2::{Digest as _, Sha256};

/// `clave` run in `cwd` (where a clave.toml may be found).
fn clave_in(cwd: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("CLAVE_CONFIG_DIR", config)
        .env("NO_COLOR", "1")
        .env_remove("CLAVE_GATEWAY")
        .env_remove("CLAVE_TOKEN")
        .env_remove("CLAVE_PROJECT")
        .env_remove("CLAVE_PROJECT_FILE")
        .env_remove("CLAVE_INSECURE_DEV")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The code hash as docs/bundles.md says to compute it, written here without the encoder.
fn documented_hash(root: &Path, entry: &str, paths: &[&str]) -> String {
    if paths.len() == 1 {
        return hex::encode(Sha256::digest(std::fs::read(root.join(entry)).unwrap()));
    }
    let field = |b: &[u8]| {
        let mut v = format!("{}:", b.len()).into_bytes();
        v.extend_from_slice(b);
        v.push(b'\n');
        v
    };
    let mut sorted = paths.to_vec();
    sorted.sort_unstable();
    let mut code = b"\x00clave-bundle/1\n".to_vec();
    code.extend(field(entry.as_bytes()));
    for p in sorted {
        code.extend(field(p.as_bytes()));
        code.extend(field(&std::fs::read(root.join(p)).unwrap()));
    }
    hex::encode(Sha256::digest(&code))
}

fn hash_json(cwd: &Path, config: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "hash"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&clave_in(cwd, config, &all))).unwrap()
}

#[test]
fn code_hash_is_recomputable_and_changes_with_one_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let f = tmp.path().join("fn");
    write(
        &f,
        "index.js",
        "import { t } from './lib/t.js';\nexport default { fetch() { return new Response(t); } };\n",
    );
    write(&f, "lib/t.js", "export const t = 'é ok';\n");
    write(&f, "README.md", "not a module\n");
    let v = hash_json(tmp.path(), &config, &[f.to_str().unwrap()]);
    let expected = documented_hash(&f, "index.js", &["index.js", "lib/t.js"]);
    assert_eq!(v["code_hash"], expected.as_str());
    assert_eq!(v["bundle"], true);
    assert_eq!(v["modules"].as_array().unwrap().len(), 2);

    // One byte in one module: another hash (and still the documented one).
    write(&f, "lib/t.js", "export const t = 'é oK';\n");
    let v2 = hash_json(tmp.path(), &config, &[f.to_str().unwrap()]);
    assert_ne!(v2["code_hash"], v["code_hash"]);
    assert_eq!(
        v2["code_hash"],
        documented_hash(&f, "index.js", &["index.js", "lib/t.js"]).as_str()
    );
    // A file the entry does not import changes nothing.
    write(&f, "README.md", "still not a module\n");
    assert_eq!(
        hash_json(tmp.path(), &config, &[f.to_str().unwrap()])["code_hash"],
        v2["code_hash"]
    );

    // One module: the SHA-256 of the file, exactly as before bundles.
    let hello = common::root().join("examples/hello.js");
    let v = hash_json(tmp.path(), &config, &[hello.to_str().unwrap()]);
    assert_eq!(
        v["code_hash"],
        hex::encode(Sha256::digest(std::fs::read(&hello).unwrap())).as_str()
    );
    assert_eq!(v["bundle"], false);
}

#[test]
fn imports_outside_the_bundle_are_refused_at_deploy() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    write(tmp.path(), "shared/secret.js", "export const s = 1;\n");
    let f = tmp.path().join("fn");
    write(
        &f,
        "index.js",
        "import { s } from '../shared/secret.js';\nexport default { fetch() { return new Response(String(s)); } };\n",
    );
    let o = clave_in(tmp.path(), &config, &["deploy", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("index.js"), "names the file: {e}");
    assert!(
        e.contains("\"../shared/secret.js\""),
        "names the specifier: {e}"
    );
    assert!(e.contains("leaves"), "{e}");
    // Refused before anything is contacted: no platform is running, and no gateway error.
    assert!(!e.contains("gateway"), "{e}");

    write(
        &f,
        "index.js",
        "import pad from 'left-pad';\nexport default { fetch() { return new Response(pad); } };\n",
    );
    let o = clave_in(tmp.path(), &config, &["deploy", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("\"left-pad\""), "{}", stderr(&o));
    assert!(stderr(&o).contains("vendor"), "{}", stderr(&o));
}

#[test]
fn project_file_errors_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    write(
        tmp.path(),
        "clave.toml",
        "name = \"x\"\nentyr = \"src/index.js\"\n",
    );
    let o = clave_in(tmp.path(), &config, &["hash"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("clave.toml:2:1"), "{}", stderr(&o));
    assert!(stderr(&o).contains("entyr"), "{}", stderr(&o));
}

/// `clave --json dev --watch` in `dir`, the JSON documents of its stdout sent to a channel.
struct Watch {
    child: std::process::Child,
    docs: mpsc::Receiver<serde_json::Value>,
}

impl Watch {
    fn start(dir: &Path, config: &Path, data: &Path) -> Self {
        let mut child = Command::new(bin())
            .args([
                "--json",
                "dev",
                "--watch",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data)
            .current_dir(dir)
            .env("CLAVE_CONFIG_DIR", config)
            .env("NO_COLOR", "1")
            .env_remove("CLAVE_GATEWAY")
            .env_remove("CLAVE_TOKEN")
            .env_remove("CLAVE_PROJECT_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, docs) = mpsc::channel();
        std::thread::spawn(move || {
            let stream = serde_json::Deserializer::from_reader(BufReader::new(out));
            for doc in stream
                .into_iter::<serde_json::Value>()
                .map_while(Result::ok)
            {
                if tx.send(doc).is_err() {
                    break;
                }
            }
        });
        Self { child, docs }
    }

    /// The next JSON document that reports a deploy.
    fn next_deploy(&self) -> serde_json::Value {
        loop {
            let v = self
                .docs
                .recv_timeout(Duration::from_secs(120))
                .expect("clave dev --watch printed no deploy");
            if v.get("code_hash").is_some() {
                return v;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn init_watch_and_a_request_with_method_path_and_query() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let proj = tmp.path().join("items-api");
    ok(&clave_in(
        tmp.path(),
        &config,
        &["init", "--template", "json-api", "items-api"],
    ));
    // init refuses to overwrite.
    let o = clave_in(tmp.path(), &config, &["init", "items-api"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));

    let watch = Watch::start(&proj, &config, &tmp.path().join("data"));
    let first = watch.next_deploy();
    assert_eq!(first["function"], "items-api");
    assert_eq!(first["modules"].as_array().unwrap().len(), 2);
    let offline = hash_json(&proj, &config, &[]);
    assert_eq!(first["code_hash"], offline["code_hash"]);

    let o = clave_in(
        &proj,
        &config,
        &["invoke", "--method", "GET", "--path", "/items?id=2"],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v, serde_json::json!({"id": 2, "name": "banana"}));
    let o = clave_in(
        &proj,
        &config,
        &[
            "invoke",
            "-X",
            "post",
            "--path",
            "/items",
            "--data",
            r#"{"name":"pear"}"#,
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v["name"], "pear");

    // A change to an imported module: a new deploy with a new hash, and the new code answers.
    let routes = proj.join("src/routes.js");
    let text = std::fs::read_to_string(&routes).unwrap();
    std::fs::write(&routes, text.replace("\"banana\"", "\"cherry\"")).unwrap();
    let second = watch.next_deploy();
    assert_ne!(second["code_hash"], first["code_hash"]);
    assert_eq!(second["version"], 2);
    let o = clave_in(
        &proj,
        &config,
        &["invoke", "--method", "GET", "--path", "/items?id=2"],
    );
    assert!(ok(&o).contains("cherry"), "{}", stdout(&o));

    // clave config says where each setting came from.
    let o = clave_in(&proj, &config, &["--json", "config"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    let s = &v["settings"];
    assert!(
        s["gateway"]["source"]
            .as_str()
            .unwrap()
            .ends_with("dev.json"),
        "{s}"
    );
    assert!(
        s["function"]["source"]
            .as_str()
            .unwrap()
            .ends_with("clave.toml"),
        "{s}"
    );
    assert_eq!(s["function"]["value"], "items-api");
    let dev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(config.join("dev.json")).unwrap()).unwrap();
    let token = dev["token"].as_str().unwrap();
    assert!(!stdout(&o).contains(token), "the token is masked: {s}");
    assert!(s["token"]["value"].as_str().unwrap().contains('…'), "{s}");
    let o = Command::new(bin())
        .args(["--json", "whoami", "--project", "shop"])
        .current_dir(&proj)
        .env("CLAVE_CONFIG_DIR", &config)
        .env("CLAVE_GATEWAY", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v["settings"]["project"]["source"], "flag");
    assert_eq!(v["settings"]["gateway"]["source"], "env CLAVE_GATEWAY");
    drop(watch);
}

#[test]
fn config_dir_honours_xdg_config_home_and_clave_config_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let xdg = tmp.path().join("xdg");
    let run = |envs: &[(&str, &Path)]| {
        let mut cmd = Command::new(bin());
        cmd.args(["--json", "config"])
            .current_dir(tmp.path())
            .env_remove("CLAVE_CONFIG_DIR")
            .env_remove("CLAVE_PROJECT_FILE")
            .env_remove("CLAVE_GATEWAY");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let v: serde_json::Value = serde_json::from_str(&ok(&cmd.output().unwrap())).unwrap();
        v["settings"]["config_dir"].clone()
    };
    let d = run(&[("XDG_CONFIG_HOME", &xdg)]);
    assert_eq!(d["value"], xdg.join("clave").display().to_string());
    assert_eq!(d["source"], "env XDG_CONFIG_HOME");
    let own = tmp.path().join("own");
    let d = run(&[("XDG_CONFIG_HOME", &xdg), ("CLAVE_CONFIG_DIR", &own)]);
    assert_eq!(d["value"], own.display().to_string());
    assert_eq!(d["source"], "env CLAVE_CONFIG_DIR");
}

#[test]
fn a_bad_method_or_path_is_a_usage_error_before_anything_is_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    for args in [
        ["invoke", "f", "--path", "items"],
        ["invoke", "f", "--path", "/a#b"],
        ["invoke", "f", "--method", "GE T"],
    ] {
        let o = clave_in(tmp.path(), &config, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("--method"), "{}", stderr(&o));
    }
    // Without a name and without a clave.toml: say how to name the function.
    let o = clave_in(tmp.path(), &config, &["invoke", "--data", "{}"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("clave.toml"), "{}", stderr(&o));
}
