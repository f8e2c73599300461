// Browser end-to-end check: Debian's chromium (driven by playwright-core; Playwright's own
// browser builds cannot be downloaded here) loads a page built from the generated client
// from two origins and calls the gateway through it:
//   node clients/ts/test/browser-cors.mjs GATEWAY_URL ID_NUMBER PASSWORD [ALLOWED_PORT OTHER_PORT]
// The page is served from http://127.0.0.1:ALLOWED_PORT (5174, an allowed CORS origin of the
// gateway) and http://127.0.0.1:OTHER_PORT (5175, not allowed). Prints one JSON line with
// both outcomes and the browser's console messages; tests/e2e/test_ts_client.py asserts on
// it. Exits non-zero only when the page could not be run at all.
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";

const [gateway, idNumber, password, allowedPort = "5174", otherPort = "5175"] =
  process.argv.slice(2);
if (!gateway || !idNumber || !password) {
  console.error("usage: browser-cors.mjs GATEWAY_URL ID_NUMBER PASSWORD [ALLOWED_PORT OTHER_PORT]");
  process.exit(2);
}
const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];

const built = await esbuild.build({
  entryPoints: [fileURLToPath(new URL("./browser/page.ts", import.meta.url))],
  bundle: true, format: "esm", platform: "browser", target: "es2022", write: false,
  logLevel: "error",
});
const script = built.outputFiles[0].text;
const html = '<!doctype html><meta charset="utf-8"><title>Govflow client</title>' +
  '<body>running…</body><script type="module" src="/page.js"></script>';

function serve(port) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/page.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    } else if (path === "/favicon.ico") {
      res.writeHead(204).end();
    } else if (path === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(port), "127.0.0.1", () => resolve(server));
  });
}

const servers = [await serve(allowedPort), await serve(otherPort)];
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
try {
  const outcome = {};
  for (const [label, port] of [["allowed", allowedPort], ["other", otherPort]]) {
    const page = await browser.newPage();
    const console_ = [];
    page.on("console", (m) => console_.push(m.text()));
    const query = new URLSearchParams({ gateway, id: idNumber, password });
    await page.goto(`http://127.0.0.1:${port}/?${query}`);
    await page.waitForFunction(() => window.govflowResult !== undefined, null, { timeout: 30_000 });
    outcome[label] = { ...(await page.evaluate(() => window.govflowResult)), console: console_ };
    await page.close();
  }
  console.log(JSON.stringify(outcome));
} finally {
  await browser.close();
  for (const s of servers) s.close();
}
