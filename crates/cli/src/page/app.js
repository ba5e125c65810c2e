// The page of `clave dev`: verify the attestation and seal every call in this browser with the
// clave JavaScript SDK (served from /ui/sdk/, the same code as sdk/js/dist).
import { Clave, TrustPolicy, ClaveError, toHex } from "/ui/sdk/index.js";

const $ = (id) => document.getElementById(id);
const PROJECT = "default";
let clave = null;

async function sha256Hex(text) {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

function text(id, value) {
  $(id).textContent = value;
}

function showError(id, e) {
  const el = $(id);
  el.className = "err";
  el.textContent = e instanceof ClaveError ? `${e.name}: ${e.message}` : `Error: ${e && e.message ? e.message : e}`;
}

async function verify() {
  clave = null;
  $("att-facts").hidden = true;
  $("insecure").hidden = true;
  $("att-describe").replaceChildren();
  const status = $("att-status");
  status.className = "";
  status.textContent = "Verifying…";
  try {
    const kds = $("kds-m").value.trim().toLowerCase();
    const engine = $("engine-m").value.trim().toLowerCase();
    const trust = $("allow-insecure").checked
      ? TrustPolicy.insecureDev(kds, [engine])
      : TrustPolicy.of({ accepted_kinds: ["sev_snp", "nitro"], measurements: [kds] }, { accepted_kinds: ["sev_snp", "nitro"], measurements: [engine] });
    const t0 = performance.now();
    clave = await Clave.connect(location.origin, { trust });
    const ms = performance.now() - t0;
    const a = clave.attestation();
    $("insecure").hidden = !a.insecure;
    status.className = "ok";
    status.textContent = `Verified in ${ms.toFixed(0)} ms: the evidence, your nonce, the signed key bundles and their policies check out${a.insecure ? " (on the INSECURE simulated TEE)" : ""}.`;
    text("att-kind", a.insecure ? `${a.kind} (INSECURE, simulated)` : a.kind);
    text("att-measurement", a.measurement);
    text("att-tcb", a.tcb.length ? `[${a.tcb.join(", ")}]` : "none reported");
    text("att-nonce", a.nonce);
    text("att-identity", a.identityPublicKey);
    text("att-keys", a.invokeKeys.map((k) => `epoch ${k.epoch} (valid until ${new Date(k.notAfter * 1000).toISOString()})`).join("; "));
    $("att-facts").hidden = false;
    for (const s of a.describe()) {
      const li = document.createElement("li");
      li.textContent = s;
      $("att-describe").append(li);
    }
  } catch (e) {
    showError("att-status", e);
  }
}

async function loadFunctions() {
  const list = $("functions");
  list.replaceChildren();
  try {
    const r = await fetch("/ui/functions.json", { cache: "no-store" });
    if (!r.ok) throw new Error(`the platform answered ${r.status}`);
    const data = await r.json();
    text("project", data.project);
    if (!data.functions.length) {
      text("fn-status", "No function deployed yet. Try: clave deploy examples/hello.js --name hello, then reload.");
      return;
    }
    text("fn-status", `${data.functions.length} function(s).`);
    for (const f of data.functions) {
      const li = document.createElement("li");
      const label = document.createElement("label");
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "function";
      radio.value = f.name;
      radio.disabled = !f.active_code_hash;
      radio.addEventListener("change", () => {
        $("fn-name").value = f.name;
        $("code-hash").value = f.active_code_hash ?? "";
      });
      const hash = document.createElement("code");
      hash.textContent = f.active_code_hash ? ` ${f.active_code_hash}` : " (no active version)";
      label.append(radio, ` ${f.name} v${f.active_version ?? "-"}`, hash);
      li.append(label);
      list.append(li);
    }
    const first = list.querySelector("input:not([disabled])");
    if (first && !$("fn-name").value) {
      first.checked = true;
      first.dispatchEvent(new Event("change"));
    }
  } catch (e) {
    showError("fn-status", e);
  }
}

// GET and HEAD requests carry no body.
function bodyless(method) {
  return method === "GET" || method === "HEAD";
}

function methodChanged() {
  const none = bodyless($("method").value);
  $("body").disabled = none;
  $("body-note").hidden = !none;
}

async function invoke(ev) {
  ev.preventDefault();
  const status = $("result-status");
  const out = $("result-body");
  out.hidden = true;
  status.className = "";
  if (!clave) {
    status.className = "err";
    status.textContent = "The attestation is not verified: nothing was sent.";
    return;
  }
  const method = $("method").value;
  const path = $("path").value.trim();
  const options = { method, path, codeHash: $("code-hash").value.trim() };
  if (!bodyless(method)) {
    try {
      options.json = JSON.parse($("body").value || "null");
    } catch (e) {
      status.className = "err";
      status.textContent = `The body is not JSON: ${e.message}`;
      return;
    }
  }
  status.textContent = `Sealing and invoking ${method} ${path || "/"}…`;
  $("invoke").disabled = true;
  const t0 = performance.now();
  try {
    const resp = await clave.invoke(PROJECT, $("fn-name").value.trim(), options);
    const body = await resp.text();
    const ms = performance.now() - t0;
    let shown = body;
    try {
      shown = JSON.stringify(JSON.parse(body), null, 2);
    } catch {
      // not JSON: show as text
    }
    status.className = resp.ok ? "ok" : "err";
    status.textContent = `HTTP ${resp.status} from the function, decrypted in this browser; ${ms.toFixed(0)} ms in total (seal, send, run, open).`;
    out.textContent = shown;
    out.hidden = false;
  } catch (e) {
    showError("result-status", e);
  } finally {
    $("invoke").disabled = false;
  }
}

async function main() {
  $("kds-m").value = await sha256Hex("clave/dev/insecure-simulated-measurement/v1");
  $("engine-m").value = await sha256Hex("clave/dev/insecure-simulated-engine-measurement/v1");
  $("trust-form").addEventListener("submit", (e) => {
    e.preventDefault();
    verify();
  });
  $("invoke-form").addEventListener("submit", invoke);
  $("method").addEventListener("change", methodChanged);
  methodChanged();
  await Promise.all([verify(), loadFunctions()]);
  document.body.dataset.ready = "true";
}

main();
