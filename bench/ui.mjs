// Times the UI in headless Chromium for the benchmark harness: from navigation to a fully drawn
// overview (top stats, graph, every panel, the live box) and explorer (chart and table), over
// the data a running Oriel holds. Prints one JSON line: {"overview": [ms…], "explorer": [ms…]}.
//
//   node bench/ui.mjs --base URL --token ADMIN_TOKEN --overview PATH --explorer PATH --runs N
import { launch, options } from '../tests/browser/lib.mjs';

const opt = options();
const runs = Number(opt.runs ?? 5);

/** Resolves once `selectorsDone` holds in the page, polling every 10 ms; the elapsed ms. */
async function drawn(page, url, done) {
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForFunction(done, null, { polling: 10, timeout: 120_000 });
  return Date.now() - t0;
}

const overviewDone = () => {
  const stats = document.querySelectorAll('section.stats .stat-value').length === 6;
  const graph = document.querySelector('.graph .uplot, .graph .notice');
  const panels = [...document.querySelectorAll('section.panel[aria-label]')];
  const listed = panels.length === 5 && panels.every((p) => p.querySelector('ol.ranked, p.notice:not(.loading)'));
  const today = document.querySelector('[data-testid="today-vs-yesterday"]')?.textContent;
  const feed = document.querySelector('ol.feed li, ol.feed p.notice');
  return stats && graph && listed && today && feed;
};
const explorerDone = () => document.querySelector('table.data tbody tr, .table-wrap p.notice') !== null;

const browser = await launch();
try {
  const context = await browser.newContext({ baseURL: opt.base, viewport: { width: 1280, height: 900 } });
  const link = await context.request.post('/api/v1/signin-links', {
    headers: { authorization: `Bearer ${opt.token}` },
    data: { role: 'viewer' },
  });
  await (await context.newPage()).goto((await link.json()).path);
  const out = { overview: [], explorer: [] };
  for (const [name, url, done] of [
    ['overview', opt.overview, overviewDone],
    ['explorer', opt.explorer, explorerDone],
  ]) {
    // One untimed visit loads the assets into the cache, as for a returning user.
    for (let i = 0; i <= runs; i++) {
      const page = await context.newPage();
      const ms = await drawn(page, url, done);
      if (i > 0) out[name].push(ms);
      await page.close();
    }
  }
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
