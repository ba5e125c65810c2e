// The page of `clave dev` embeds the compiled SDK (crates/cli/src/page.rs): every module of
// dist/ must be listed there, or the browser would fail to import it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import path from "node:path";
import { SDK_DIR, repoFile } from "./helpers.js";

test("every dist/*.js module is embedded in the clave binary", () => {
  const page = repoFile("crates/cli/src/page.rs", "utf8");
  const list = page.slice(page.indexOf("sdk_modules!["), page.indexOf("];", page.indexOf("sdk_modules![")));
  for (const f of readdirSync(path.join(SDK_DIR, "dist")).filter((f) => f.endsWith(".js"))) {
    assert.ok(list.includes(`"${f}"`), `${f} is not embedded in crates/cli/src/page.rs`);
  }
});
