// Shared pieces of the browser tests: Debian's Chromium through playwright-core, a static test
// site on its own loopback origin, and JSON-lines event dumps.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";

/**
 * Launches headless Chromium with the flags this sandbox needs. `extra` is merged into the
 * Playwright launch options (e.g. `{ ignoreDefaultArgs: ["--disable-back-forward-cache"] }`);
 * its `args` are added to the required flags.
 */
export async function launch(extra = {}) {
  return chromium.launch({
    ...extra,
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
      ...(extra.args ?? []),
    ],
  });
}

/**
 * Launches Chromium (see launch) as a normal Chrome of the same version: its user agent (a
 * collector rightly classifies "HeadlessChrome" as a bot) and `navigator.webdriver` false, as
 * in a browser nobody automates. Set by flag rather than per context, because a context's
 * override does not reach beacons sent by a page that is being left. Resolves to { browser, ua }.
 */
export async function launchAsChrome(extra = {}) {
  const probe = await launch();
  const ua = (await probe.newPage().then((p) => p.evaluate(() => navigator.userAgent))).replace("HeadlessChrome", "Chrome");
  await probe.close();
  const args = [...(extra.args ?? []), `--user-agent=${ua}`, "--disable-blink-features=AutomationControlled"];
  return { browser: await launch({ ...extra, args }), ua };
}

/**
 * Serves `pages` (a map of path -> HTML string, or a function (req) -> {status, headers, body})
 * on 127.0.0.1 at a free port. Resolves to { url, close }.
 */
export function serveSite(pages) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const page = pages[path] ?? pages["*"];
    if (page === undefined) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
      return;
    }
    if (typeof page === "function") {
      const out = page(req);
      res.writeHead(out.status ?? 200, out.headers ?? { "content-type": "text/html; charset=utf-8" });
      res.end(out.body ?? "");
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(page);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

/** Reads a JSON-lines file of events (one `events` record per line). */
export function readEvents(path) {
  return readFileSync(path, "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

/** Parses `--name value` command-line options into an object. */
export function options(argv = process.argv.slice(2)) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) out[argv[i].slice(2)] = argv[i + 1], i++;
    else out._.push(argv[i]);
  }
  return out;
}

/** Collects assertion failures so one run reports all of them. */
export class Checks {
  constructor() { this.failures = []; this.count = 0; }
  ok(cond, message) { this.count++; if (!cond) this.failures.push(message); }
  eq(actual, expected, message) {
    this.ok(JSON.stringify(actual) === JSON.stringify(expected),
      `${message}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
  finish(name) {
    if (this.failures.length) {
      console.error(`${name}: ${this.failures.length} of ${this.count} checks failed:\n- ${this.failures.join("\n- ")}`);
      process.exit(1);
    }
    console.log(`${name}: all ${this.count} checks passed`);
  }
}
