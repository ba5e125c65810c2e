// The page of `clave dev` embeds the compiled SDK (crates/cli/src/page.rs): every module of
// dist/ must be listed there, or the browser would fail to import it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import path from "node:path";
import { SDK_DIR, repoFile } from "./helpers.js";

test("every dist/*.js module is embedded in the clave binary", () => {
  const page = repoFile("crates/cli/src/page.rs", "utf8");
  for (const f of readdirSync(path.join(SDK_DIR, "dist")).filter((f) => f.endsWith(".js"))) {
    assert.ok(page.includes(`("${f}", include_str!("../../../sdk/js/dist/${f}"))`), `${f} is not embedded in crates/cli/src/page.rs`);
  }
});
