// Offline validation of deploy/kubernetes/*.yaml against the Kubernetes OpenAPI schemas shipped in the npm
// package `kubernetes-models`, plus clave's own deployment rules. Usage:
//   node validate.mjs <node_modules dir> [files...]     (validate.sh installs the packages and calls this)
// Exit status 1 on any error. A negative self-test runs first: a validator that accepts broken objects
// would make this check worthless.
import { createRequire } from "node:module";
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = process.argv[2];
if (!modules) {
  console.error("usage: node validate.mjs <node_modules dir> [files...]");
  process.exit(2);
}
const require = createRequire(join(modules, "noop.js"));
const yaml = require("js-yaml");

function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    throw new Error("apiVersion and kind must be strings");
  }
  // "v1" -> kubernetes-models/v1, "apps/v1" -> kubernetes-models/apps/v1
  let mod;
  try {
    mod = require(`kubernetes-models/${apiVersion}`);
  } catch {
    throw new Error(`unknown apiVersion ${apiVersion}`);
  }
  const Model = mod[kind];
  if (typeof Model !== "function") throw new Error(`unknown kind ${kind} in ${apiVersion}`);
  return Model;
}

function validate(obj) {
  const Model = modelFor(obj.apiVersion, obj.kind);
  new Model(obj).validate(); // throws with the schema errors
}

// --- clave's rules on top of the schemas -------------------------------------------------------------
function podSpecOf(obj) {
  if (["Deployment", "StatefulSet"].includes(obj.kind)) return obj.spec?.template?.spec;
  return undefined;
}

function claveRules(obj, all) {
  const errors = [];
  const name = `${obj.kind}/${obj.metadata?.name}`;
  if (obj.kind !== "Namespace" && obj.kind !== "RuntimeClass" && obj.metadata?.namespace !== "clave") {
    errors.push(`${name}: must live in namespace clave`);
  }
  const pod = podSpecOf(obj);
  if (pod) {
    for (const c of pod.containers ?? []) {
      if (!c.resources?.requests || !c.resources?.limits) errors.push(`${name}/${c.name}: resource requests and limits required`);
      if (!c.readinessProbe || !c.livenessProbe) errors.push(`${name}/${c.name}: readiness and liveness probes required`);
      if (c.securityContext?.allowPrivilegeEscalation !== false || c.securityContext?.readOnlyRootFilesystem !== true) {
        errors.push(`${name}/${c.name}: no privilege escalation, read-only root filesystem`);
      }
    }
    const component = obj.metadata?.labels?.["app.kubernetes.io/component"];
    if (["engine", "kds"].includes(component)) {
      // TEE side: confidential runtime on confidential nodes only.
      if (!pod.runtimeClassName) errors.push(`${name}: TEE-side pods need a confidential runtimeClassName`);
      if (!pod.nodeSelector || Object.keys(pod.nodeSelector).length === 0) errors.push(`${name}: TEE-side pods need a nodeSelector for confidential nodes`);
      const rc = all.find((o) => o.kind === "RuntimeClass" && o.metadata?.name === pod.runtimeClassName);
      if (!rc) errors.push(`${name}: runtimeClass ${pod.runtimeClassName} is not defined here`);
    }
  }
  if (obj.kind === "Service") {
    const sel = obj.spec?.selector?.["app.kubernetes.io/name"];
    const type = obj.spec?.type ?? "ClusterIP";
    if (type !== "ClusterIP" && sel !== "clave-gateway") errors.push(`${name}: only the gateway may face the outside (type ${type})`);
  }
  if (obj.kind === "StatefulSet" && obj.metadata?.name === "clave-kds") {
    if (!(obj.spec?.replicas >= 2)) errors.push(`${name}: the KDS needs two or more replicas`);
    if (!(obj.spec?.volumeClaimTemplates?.length > 0)) errors.push(`${name}: the KDS needs a volume for its sealed state`);
  }
  return errors;
}

function networkRules(all) {
  const errors = [];
  const policies = all.filter((o) => o.kind === "NetworkPolicy");
  const denyAll = policies.find((p) => Object.keys(p.spec?.podSelector ?? { x: 1 }).length === 0
    && (p.spec?.policyTypes ?? []).includes("Ingress") && !p.spec?.ingress);
  if (!denyAll) errors.push("NetworkPolicy: a default-deny ingress policy is required");
  const forApp = (app) => policies.filter((p) => p.spec?.podSelector?.matchLabels?.["app.kubernetes.io/name"] === app);
  const sources = (app) => forApp(app).flatMap((p) => (p.spec?.ingress ?? []).map((r) => r.from));
  // Only the gateway has an ingress rule without `from` (open to all).
  for (const app of ["clave-engine", "clave-kds"]) {
    const froms = sources(app);
    if (froms.length === 0) errors.push(`NetworkPolicy: ${app} has no ingress policy`);
    for (const from of froms) {
      if (!from || from.length === 0) errors.push(`NetworkPolicy: ${app} must not accept from everywhere`);
      for (const peer of from ?? []) {
        if (peer.ipBlock || peer.namespaceSelector) errors.push(`NetworkPolicy: ${app} accepts from outside the clave pods`);
      }
    }
  }
  const engineFrom = sources("clave-engine").flat().map((p) => p?.podSelector?.matchLabels?.["app.kubernetes.io/name"]);
  if (engineFrom.some((a) => a !== "clave-gateway")) errors.push("NetworkPolicy: engines accept only from gateways");
  const kdsFrom = new Set(sources("clave-kds").flat().map((p) => p?.podSelector?.matchLabels?.["app.kubernetes.io/name"]));
  for (const a of kdsFrom) if (!["clave-engine", "clave-gateway", "clave-kds"].includes(a)) errors.push(`NetworkPolicy: kds accepts from ${a}`);
  return errors;
}

function load(file) {
  return yaml.loadAll(readFileSync(file, "utf8")).filter((d) => d !== null && d !== undefined);
}

// --- negative self-test ----------------------------------------------------------------------------------
function selfTest() {
  const good = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "t", namespace: "clave" },
    spec: {
      replicas: 1,
      selector: { matchLabels: { a: "b" } },
      template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "i" }] } },
    },
  };
  validate(good);
  const mustFail = [
    ["replicas as a string", { ...good, spec: { ...good.spec, replicas: "3" } }],
    ["containers missing", { ...good, spec: { ...good.spec, template: { spec: {} } } }],
    ["port as a word", { apiVersion: "v1", kind: "Service", metadata: { name: "s" }, spec: { ports: [{ port: "http" }] } }],
    ["unknown kind", { apiVersion: "apps/v1", kind: "Deploymint", metadata: { name: "x" } }],
  ];
  for (const [what, obj] of mustFail) {
    let rejected = false;
    try {
      validate(obj);
    } catch {
      rejected = true;
    }
    if (!rejected) {
      console.error(`self-test FAILED: the validator accepted ${what}`);
      process.exit(1);
    }
  }
  const leaky = [{ apiVersion: "v1", kind: "Service", metadata: { name: "e", namespace: "clave" }, spec: { type: "LoadBalancer", selector: { "app.kubernetes.io/name": "clave-engine" } } }];
  if (claveRules(leaky[0], leaky).length === 0) {
    console.error("self-test FAILED: a public engine Service was accepted");
    process.exit(1);
  }
  console.log(`self-test: ${mustFail.length + 1} broken objects rejected`);
}

// --- the image: one reference, pinned by digest in kustomization.yaml ----------------------------------
const IMAGE_DIGEST = /^sha256:[0-9a-f]{64}$/;
function imageName(ref) {
  // registry/name[:tag][@digest] -> registry/name (a ':' after the last '/' starts the tag)
  const noDigest = ref.split("@")[0];
  const slash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}
function kustomizationRules(k, manifestFiles, objects) {
  const errors = [];
  if (k?.kind !== "Kustomization") return ["kustomization.yaml: kind must be Kustomization"];
  const resources = [...(k.resources ?? [])].sort();
  const want = [...manifestFiles].sort();
  if (JSON.stringify(resources) !== JSON.stringify(want)) {
    errors.push(`kustomization.yaml: resources ${JSON.stringify(resources)} must list exactly the manifests ${JSON.stringify(want)}`);
  }
  const images = k.images ?? [];
  if (images.length !== 1) errors.push("kustomization.yaml: exactly one entry under images: (the clave image)");
  const img = images[0] ?? {};
  if (!IMAGE_DIGEST.test(img.digest ?? "")) errors.push(`kustomization.yaml: images[0].digest must be sha256:<64 hex>, not ${img.digest}`);
  if (img.newTag !== undefined) errors.push("kustomization.yaml: pin the image by digest, not by newTag");
  for (const obj of objects) {
    const pod = podSpecOf(obj);
    for (const c of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) {
      const where = `${obj.kind}/${obj.metadata?.name}/${c.name}`;
      if (typeof c.image !== "string") continue;
      if (c.image.includes("@")) errors.push(`${where}: the digest belongs in kustomization.yaml, not in ${c.image}`);
      if (imageName(c.image) !== img.name) errors.push(`${where}: image ${c.image} is not ${img.name}, so kustomization.yaml would not pin it`);
    }
  }
  return errors;
}
function kustomizationSelfTest() {
  const dep = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" }, spec: { template: { spec: { containers: [{ name: "c", image: "r.example/clave:1" }] } } } };
  const k = { kind: "Kustomization", resources: ["a.yaml"], images: [{ name: "r.example/clave", digest: `sha256:${"a".repeat(64)}` }] };
  if (kustomizationRules(k, ["a.yaml"], [dep]).length !== 0) {
    console.error("self-test FAILED: a correct kustomization was refused");
    process.exit(1);
  }
  const mustFail = [
    ["a tag instead of a digest", { ...k, images: [{ name: "r.example/clave", newTag: "1" }] }, [dep]],
    ["a short digest", { ...k, images: [{ name: "r.example/clave", digest: "sha256:abc" }] }, [dep]],
    ["a missing resource", { ...k, resources: [] }, [dep]],
    ["a container with another image", k, [{ ...dep, spec: { template: { spec: { containers: [{ name: "c", image: "other/clave:1" }] } } } }]],
    ["a digest in a manifest", k, [{ ...dep, spec: { template: { spec: { containers: [{ name: "c", image: `r.example/clave@sha256:${"b".repeat(64)}` }] } } } }]],
  ];
  for (const [what, kk, objs] of mustFail) {
    if (kustomizationRules(kk, ["a.yaml"], objs).length === 0) {
      console.error(`self-test FAILED: the kustomization check accepted ${what}`);
      process.exit(1);
    }
  }
  console.log(`self-test: ${mustFail.length} broken kustomizations rejected`);
}

selfTest();
kustomizationSelfTest();
const explicitFiles = process.argv.length > 3;
const isKustomization = (f) => /(^|\/)kustomization\.ya?ml$/.test(f);
const files = explicitFiles
  ? process.argv.slice(3)
  : readdirSync(here).filter((f) => /\.ya?ml$/.test(f) && !isKustomization(f)).sort().map((f) => join(here, f));
let checked = 0;
let failed = 0;
const all = [];
for (const file of files) {
  let docs;
  try {
    docs = load(file);
  } catch (e) {
    console.error(`${file}: YAML error: ${e.message}`);
    failed++;
    continue;
  }
  for (const obj of docs) {
    all.push(obj);
    const name = `${file.split("/").pop()}: ${obj?.kind}/${obj?.metadata?.name}`;
    try {
      validate(obj);
      checked++;
    } catch (e) {
      failed++;
      console.error(`${name}: ${e.message}`);
      for (const err of e.errors ?? []) console.error(`  ${err.instancePath ?? ""} ${err.message ?? JSON.stringify(err)}`);
    }
  }
}
const ruleErrors = [...all.flatMap((o) => claveRules(o, all)), ...networkRules(all)];
if (!explicitFiles) {
  // The directory as kustomize renders it: kustomization.yaml names every manifest and pins the image.
  try {
    const [k] = load(join(here, "kustomization.yaml"));
    const manifestFiles = files.map((f) => f.split("/").pop());
    ruleErrors.push(...kustomizationRules(k, manifestFiles, all));
    if (IMAGE_DIGEST.test(k?.images?.[0]?.digest ?? "")) console.log(`image pinned: ${k.images[0].newName ?? k.images[0].name}@${k.images[0].digest}`);
  } catch (e) {
    ruleErrors.push(`kustomization.yaml: ${e.message}`);
  }
}
for (const e of ruleErrors) console.error(`rule: ${e}`);
failed += ruleErrors.length;
console.log(`${checked} passed, ${failed} failed`);
process.exit(failed === 0 && checked > 0 ? 0 : 1);
