//! Renderers: each command's result as text for people or as one JSON document (`--json`).

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;

use clave_client::{CodeHash, Verified, policy_words};
use clave_proto::gateway_api::{
    ActivateResponse, CreateTokenResponse, DeployResponse, FunctionDetail, FunctionList,
};
use clave_proto::invoke::InvokeResponse;
use serde_json::json;

use sha2::{Digest as _, Sha256};

use crate::bundle::Collected;
use crate::config::DevRecord;
use crate::output::Out;

/// `clave dev` is up.
pub(super) fn dev_started(out: &Out, rec: &DevRecord, dev_file: &Path) {
    if out.json {
        out.json_doc(&json!({
            "ok": true,
            "gateway": rec.gateway,
            "project": rec.project,
            "data_dir": rec.data_dir,
            "kds_measurement": rec.kds_measurement,
            "engine_measurement": rec.engine_measurement,
            "insecure": true,
            "dev_file": dev_file,
            "page": format!("{}/", rec.gateway),
        }));
    } else {
        out.line(&format!(
            "{} {}",
            out.green("clave dev is running at"),
            out.bold(&rec.gateway)
        ));
        out.line(&format!(
            "  page:       {}/ (invoke from your browser, sealed there)",
            rec.gateway
        ));
        out.line(&format!("  data:       {}", rec.data_dir));
        out.line(&format!("  project:    {}", rec.project));
        out.line(&format!(
            "  published:  {} (URL + development deploy token for other commands)",
            dev_file.display()
        ));
        out.line(&format!(
            "  KDS measurement (simulated):    {}",
            rec.kds_measurement
        ));
        out.line(&format!(
            "  engine measurement (simulated): {}",
            rec.engine_measurement
        ));
        out.line("");
        out.line("Next, in another terminal:");
        out.line(&format!(
            "  {}",
            out.bold("clave deploy examples/hello.js --name hello")
        ));
        out.line(&format!(
            "  {}",
            out.bold("clave invoke hello --data '{\"name\":\"Ada\"}'")
        ));
        out.line(&out.dim("(in a source checkout, `clave` is `cargo run --release --`)"));
        out.line(&out.dim("Stop with Ctrl-C; restarting keeps functions and keys."));
    }
}

/// A finished deploy.
pub(super) fn deployed(
    out: &Out,
    r: &DeployResponse,
    hash: &str,
    code: &Collected,
    outbound: &[clave_proto::HostPattern],
    insecure: bool,
    name: &str,
) {
    let modules = code.bundle.modules();
    if out.json {
        out.json_doc(&json!({
            "ok": true,
            "project": r.project,
            "function": r.function,
            "version": r.version,
            "active_version": r.active_version,
            "code_hash": hash,
            "entry": code.bundle.entry(),
            "modules": modules.keys().collect::<Vec<_>>(),
            "code_bytes": code.code.len(),
            "outbound": outbound,
            "insecure": insecure,
        }));
    } else {
        let what = if modules.len() == 1 {
            String::new()
        } else {
            format!("{} modules, ", modules.len())
        };
        out.line(&format!(
            "{} {} version {}{} ({what}{} bytes, sealed to the attested code key)",
            out.green("deployed"),
            out.bold(&format!("{}/{}", r.project, r.function)),
            r.version,
            if r.active_version == Some(r.version) {
                " (active)"
            } else {
                ""
            },
            code.code.len()
        ));
        out.line(&format!("code hash: {}", out.bold(hash)));
        out.line(&format!("outbound:  {}", outbound_text(outbound)));
        out.line(&out.dim(&format!(
            "callers pin it: clave invoke {name} --hash {hash}"
        )));
    }
}

/// `clave hash`: the code hash of a function's files.
pub(super) fn code_hash(out: &Out, code: &Collected, hash: &str) {
    if out.json {
        let modules: Vec<_> = code
            .bundle
            .modules()
            .iter()
            .map(|(path, src)| {
                json!({
                    "path": path,
                    "bytes": src.len(),
                    "sha256": hex::encode(Sha256::digest(src.as_bytes())),
                })
            })
            .collect();
        out.json_doc(&json!({
            "ok": true,
            "code_hash": hash,
            "root": code.root,
            "entry": code.bundle.entry(),
            "bundle": modules.len() > 1,
            "modules": modules,
            "code_bytes": code.code.len(),
        }));
    } else {
        out.line(hash);
        if code.bundle.modules().len() > 1 {
            out.note(&format!(
                "{} modules from {} (entry {}); the hash covers their canonical encoding (docs/bundles.md)",
                code.bundle.modules().len(),
                code.root.display(),
                code.bundle.entry()
            ));
        }
    }
}

/// The function's answer: the body on stdout (or the whole response as JSON).
pub(super) fn invoke_response(
    out: &Out,
    resp: &InvokeResponse,
    hash: &CodeHash,
    source: &str,
    insecure: bool,
) {
    if out.json {
        let body_json =
            serde_json::from_slice::<serde_json::Value>(&resp.body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&resp.body).into_owned())
            });
        let hdrs: serde_json::Map<String, serde_json::Value> = resp
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        out.json_doc(&json!({
            "ok": true,
            "status": resp.status,
            "headers": hdrs,
            "body": body_json,
            "code_hash": hash.to_hex(),
            "pinned_by": source,
            "insecure": insecure,
        }));
    } else {
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(&resp.body);
        if std::io::stdout().is_terminal() && !resp.body.ends_with(b"\n") {
            let _ = stdout.write_all(b"\n");
        }
        let _ = stdout.flush();
        if !(200..300).contains(&resp.status) {
            out.warn(&format!(
                "the function answered with status {}",
                resp.status
            ));
        }
    }
}

/// The project's functions.
pub(super) fn function_list(out: &Out, insecure: bool, list: &FunctionList) {
    if out.json {
        out.json_doc(&json!({"ok": true, "insecure": insecure, "project": list.project, "functions": list.functions}));
    } else if list.functions.is_empty() {
        out.line(&format!(
            "project {} has no functions yet; deploy one with `clave deploy examples/hello.js --name hello`.",
            list.project
        ));
    } else {
        out.line(&out.bold(&format!(
            "{:<24} {:>7} {:>8}  {}",
            "NAME", "ACTIVE", "VERSIONS", "ACTIVE CODE HASH"
        )));
        for f in &list.functions {
            out.line(&format!(
                "{:<24} {:>7} {:>8}  {}",
                f.name,
                f.active_version
                    .map_or_else(|| "-".to_owned(), |v| v.to_string()),
                f.versions,
                f.active_code_hash.as_deref().unwrap_or("-")
            ));
        }
    }
}

/// One function and its versions.
pub(super) fn function_detail(out: &Out, insecure: bool, d: &FunctionDetail) {
    if out.json {
        out.json_doc(&json!({"ok": true, "insecure": insecure, "function": d}));
    } else {
        out.line(&format!(
            "{}  active version: {}",
            out.bold(&format!("{}/{}", d.project, d.name)),
            d.active_version
                .map_or_else(|| "none".to_owned(), |v| v.to_string())
        ));
        for v in &d.versions {
            out.line(&format!(
                "  {} v{:<4} {}  {} B sealed  created {}",
                if v.active { "*" } else { " " },
                v.version,
                v.code_hash,
                v.sealed_code_bytes,
                v.created
            ));
            out.line(&format!(
                "          outbound: {}",
                outbound_text(&v.outbound)
            ));
        }
    }
}

/// A function was deleted.
pub(super) fn deleted(out: &Out, insecure: bool, project: &str, name: &str) {
    if out.json {
        out.json_doc(
            &json!({"ok": true, "insecure": insecure, "deleted": name, "project": project}),
        );
    } else {
        out.line(&format!("deleted {}/{name} and all its versions", project));
    }
}

/// A version was activated.
pub(super) fn activation(out: &Out, insecure: bool, r: &ActivateResponse) {
    if out.json {
        out.json_doc(&json!({"ok": true, "insecure": insecure, "project": r.project, "function": r.function, "active_version": r.active_version, "previous_version": r.previous_version}));
    } else {
        out.line(&format!(
            "{}/{}: version {} is now active (was {})",
            r.project,
            r.function,
            r.active_version,
            r.previous_version
                .map_or_else(|| "none".to_owned(), |v| v.to_string())
        ));
        out.line(
            &out.dim("callers who pinned the old code hash are refused until they pin the new one"),
        );
    }
}

/// The verified key bundles.
pub(super) fn keys(out: &Out, v: &Verified) {
    let bundle_json = |b: &clave_proto::KeyBundle| {
        json!({
            "purpose": match b.spec.purpose { clave_proto::KeyPurpose::Code => "code", clave_proto::KeyPurpose::Invoke => "invoke" },
            "epoch": b.spec.epoch,
            "spec_id": b.spec.id().to_hex(),
            "key_id": b.key_config.key_id().0,
            "not_before": b.not_before,
            "not_after": b.not_after,
            "policy": serde_json::from_str::<serde_json::Value>(&b.spec.policy.to_json()).unwrap_or_default(),
        })
    };
    if out.json {
        let mut all = vec![bundle_json(&v.code_key)];
        all.extend(v.invoke_keys.iter().map(bundle_json));
        out.json_doc(&json!({
            "ok": true,
            "insecure": v.insecure(),
            "identity_public_key": hex::encode(v.identity_public_key),
            "epoch": v.epoch,
            "bundles": all,
        }));
    } else {
        out.line(&format!(
            "KDS identity key {} (attested, fresh nonce); current invoke epoch {}",
            hex::encode(v.identity_public_key),
            v.epoch
        ));
        for b in std::iter::once(&v.code_key).chain(v.invoke_keys.iter()) {
            out.line(&format!(
                "  {:<6} epoch {:<7} key id {:<3} spec {}  valid {}..{}",
                match b.spec.purpose {
                    clave_proto::KeyPurpose::Code => "code",
                    clave_proto::KeyPurpose::Invoke => "invoke",
                },
                b.spec.epoch,
                b.key_config.key_id().0,
                b.spec.id(),
                b.not_before,
                b.not_after
            ));
            out.line(&out.dim(&format!(
                "         released only to {}",
                policy_words(&b.spec.policy)
            )));
        }
    }
}

/// A verified platform.
pub(super) fn attested(out: &Out, gateway: &str, v: &Verified) {
    if out.json {
        out.json_doc(&json!({
            "ok": true,
            "insecure": v.insecure(),
            "gateway": gateway,
            "kds": {
                "kind": v.kds_claims.kind,
                "measurement": v.kds_claims.measurement,
                "tcb": v.kds_claims.tcb,
                "debug": v.kds_claims.debug,
                "admission_policy": v.kds_admission_policy.as_ref().map(|(p, hash)| json!({
                    "hash": hex::encode(hash),
                    "policy": serde_json::from_str::<serde_json::Value>(&p.to_json()).unwrap_or_default(),
                })),
                "master_secret_origin": v.kds_master_secret_origin.as_str(),
            },
            "identity_public_key": hex::encode(v.identity_public_key),
            "nonce": hex::encode(&v.nonce),
            "verified_at": v.verified_at,
            "statements": v.describe(),
        }));
    } else {
        out.line(&format!("{} {}", out.green("verified"), out.bold(gateway)));
        for s in v.describe() {
            out.line(&format!("  - {s}"));
        }
    }
}

/// A new deploy token.
pub(super) fn token_created(out: &Out, insecure: bool, r: &CreateTokenResponse) {
    if out.json {
        out.json_doc(
            &json!({"ok": true, "insecure": insecure, "project": r.project, "token": r.token}),
        );
    } else {
        out.line(&r.token);
        out.note(&format!(
            "a new deploy token for project {}; it is shown only once (use it with --token or CLAVE_TOKEN).",
            r.project
        ));
    }
}

/// The outbound list for people: the hosts, or that fetch() reaches none.
fn outbound_text<T: std::fmt::Display>(list: &[T]) -> String {
    if list.is_empty() {
        "none (fetch() is refused)".to_owned()
    } else {
        list.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
