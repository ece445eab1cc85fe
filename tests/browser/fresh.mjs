// Loads a page with the tag in headless Chromium and prints, as one JSON line, the page view id
// and the moment the collector acknowledged it, so the caller can time its arrival in SQL.
//   node tests/browser/fresh.mjs --collector http://127.0.0.1:PORT
import { launch, options, serveSite } from "./lib.mjs";

const { collector } = options();
const page = `<!doctype html><title>fresh</title>
<script defer data-site="fresh-browser" src="${collector}/oriel.js"></script>`;
const site = await serveSite({ "/": page });
const browser = await launch();
try {
  const tab = await (await browser.newContext()).newPage();
  const acknowledged = tab.waitForResponse((r) => r.url() === `${collector}/e` && r.request().method() === "POST");
  await tab.goto(`${site.url}/`);
  const response = await acknowledged;
  const ackedAt = Date.now();
  const ids = await tab.evaluate(() => window.oriel.ids());
  console.log(JSON.stringify({ status: response.status(), pageView: ids.pageView, ackedAt }));
} finally {
  await browser.close();
  await site.close();
}
