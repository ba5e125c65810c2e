// The page `clave dev` serves, in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core; no browser download): load it, see the verified attestation with the INSECURE
// banner, pick a function, invoke it sealed in the browser (also with another method, a path and
// a query), read the decrypted answer, and keep a screenshot in test-output/.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { REPO, SDK_DIR, recordSkip } from "./helpers.js";
import { missingBinary, startDev } from "./platform.js";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const OUT = path.join(SDK_DIR, "test-output");
const skip = recordSkip("the clave dev page in headless Chromium (sdk/js)", missingBinary() ?? (existsSync(CHROMIUM) ? undefined : `Chromium not found at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_BIN): browser test skipped`));

describe("the clave dev page in headless Chromium", { skip }, () => {
  let dev, browser, hello, route;

  before(async () => {
    const { chromium } = await import("playwright-core");
    dev = await startDev();
    hello = await dev.deploy(path.join(REPO, "examples/hello.js"), "hello");
    route = await dev.deploySource(
      "export default { async fetch(req) { const u = new URL(req.url); return Response.json({ m: req.method, p: u.pathname, id: u.searchParams.get(\"id\"), body: await req.text() }); } };\n",
      "route",
    );
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
  });

  after(async () => {
    await browser?.close();
    await dev?.stop();
  });

  test("load, verify, pick, invoke, read the decrypted answer", async () => {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(`${dev.url}/`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
    assert.match(await page.textContent("#att-status"), /^Verified in \d+ ms/);
    assert.equal(await page.isVisible("#insecure"), true, "the INSECURE banner is shown");
    assert.match(await page.textContent("#att-kind"), /insecure_simulated/);
    // The function list offers hello with its active hash, pre-selected.
    await page.check('input[name=function][value=hello]');
    assert.equal(await page.inputValue("#fn-name"), "hello");
    assert.equal(await page.inputValue("#code-hash"), hello.code_hash);
    await page.fill("#body", '{"name":"Ada"}');
    await page.click("#invoke");
    await page.waitForFunction(() => !document.getElementById("result-body").hidden, null, { timeout: 30_000 });
    const body = JSON.parse(await page.textContent("#result-body"));
    assert.equal(body.greeting, "Hello, Ada!");
    assert.match(await page.textContent("#result-status"), /HTTP 200 .* decrypted in this browser; \d+ ms/);
    mkdirSync(OUT, { recursive: true });
    const shot = path.join(OUT, "clave-dev-page.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    // Method, path and query reach the function as request.method and request.url; GET sends no body.
    await page.check('input[name=function][value=route]');
    assert.equal(await page.inputValue("#code-hash"), route.code_hash);
    await page.selectOption("#method", "GET");
    assert.equal(await page.isDisabled("#body"), true, "no body with GET");
    await page.fill("#path", "/items?id=3");
    await page.click("#invoke");
    await page.waitForFunction(() => /"m": "GET"/.test(document.getElementById("result-body").textContent), null, { timeout: 30_000 });
    assert.deepEqual(JSON.parse(await page.textContent("#result-body")), { m: "GET", p: "/default/route/items", id: "3", body: "" });
    // A path the SDK refuses is reported, and nothing is sent.
    await page.fill("#path", "items#x");
    await page.click("#invoke");
    await page.waitForFunction(() => /InvalidInputError/.test(document.getElementById("result-status").textContent), null, { timeout: 30_000 });
    await page.selectOption("#method", "POST");
    await page.fill("#path", "");
    await page.check('input[name=function][value=hello]');
    // A wrong pin is refused by the engine and shown as such.
    await page.fill("#code-hash", "0".repeat(64));
    await page.click("#invoke");
    await page.waitForFunction(() => /HashRefusedError/.test(document.getElementById("result-status").textContent), null, { timeout: 30_000 });
    assert.deepEqual(errors, []);
  });
});

if (skip) test(`browser test skipped: ${skip}`, { skip }, () => {});
