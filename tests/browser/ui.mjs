// Oriel's UI in headless Chromium against a running `oriel serve` holding generated events:
// every number the overview and explorer show is held against SQL written here (not the report
// compiler's), clicks filter every panel, live events arrive without a reload, links reproduce
// views, CSV exports match, hostile strings stay text, the sign-in page guards everything, axe
// finds nothing serious, and screenshots are left for a reviewer.
//
//   node tests/browser/ui.mjs --base URL --token ADMIN_TOKEN --user NAME --password PASSWORD
//        --site SITE --shots DIR
import { AxeBuilder } from '@axe-core/playwright';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchAsChrome, options } from './lib.mjs';

const opt = options();
const { base, token, user, password, site } = opt;
const shots = opt.shots;
mkdirSync(shots, { recursive: true });
const HOSTILE = '<img src=x onerror=alert(1)>';
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
};

/** Rows of `query` through `POST /api/v1/sql`, as arrays. */
async function sql(query) {
  const response = await fetch(`${base}/api/v1/sql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`SQL failed (${response.status}): ${JSON.stringify(body)}\n${query}`);
  return body.rows;
}

const quote = (s) => `'${String(s).replaceAll("'", "''")}'`;
/** A number as the UI writes it (1,234), back to a number; `–` is null. */
const number = (text) => (text.trim() === '–' ? null : Number(text.replace(/[,%\s]/g, '')));

/** Sends one tag batch to the collector, as a page in a person's Chrome would (not a bot). */
async function send(batch) {
  const response = await fetch(`${base}/e`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', 'user-agent': chromeAgent },
    body: JSON.stringify(batch),
  });
  if (response.status >= 300) throw new Error(`the collector answered ${response.status}`);
}

/** A browser context signed in as the configured user. */
async function signedIn(browser, extra = {}) {
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 900 }, ...extra });
  const answer = await context.request.post('/api/v1/signin', { data: { name: user, password } });
  if (answer.status() !== 200) throw new Error(`sign-in failed: ${answer.status()} ${await answer.text()}`);
  return context;
}

/** A new page that fails the run on any dialog (a script injected by tracked data would open one). */
async function page(context) {
  const p = await context.newPage();
  p.on('dialog', async (dialog) => {
    check(false, `no dialog opens (one said ${JSON.stringify(dialog.message())})`);
    await dialog.dismiss();
  });
  p.on('pageerror', (error) => check(false, `no script error on the page: ${error.message}`));
  return p;
}

/** The rows of the ranked list in the panel `title`: [[key, value]]. */
async function panelRows(p, title) {
  const panel = p.locator(`section.panel[aria-label="${title}"]`);
  await panel.locator('ol.ranked li, p.notice:not(.loading)').first().waitFor();
  return panel.locator('ol.ranked li').evaluateAll((items) =>
    items.map((li) => [li.querySelector('.key').textContent, li.querySelector('.value').textContent]),
  );
}

/** The top stat titled `title`, as a number. */
async function stat(p, title) {
  const value = p.locator('section.stats .stat', { hasText: title }).locator('.stat-value');
  await value.waitFor();
  return number(await value.textContent());
}

/** Compares UI rows [[key, value text]] with SQL rows [[key, number]]: every shown key has the
 * SQL's number, and the first row is SQL's largest. */
function sameRanking(uiRows, sqlRows, what) {
  const expected = new Map(sqlRows.map(([k, n]) => [k === null ? '(none)' : String(k), Number(n)]));
  check(uiRows.length === Math.min(sqlRows.length, 9), `${what}: ${uiRows.length} rows shown of ${sqlRows.length}`);
  const wrong = uiRows.filter(([k, v]) => expected.get(k.replace(/^\p{RI}\p{RI} /u, '')) !== number(v));
  check(wrong.length === 0, `${what}: every number equals SQL's (wrong: ${JSON.stringify(wrong)})`);
  check(uiRows.length === 0 || number(uiRows[0][1]) === Number(sqlRows[0][1]), `${what}: the first row is the largest`);
}

async function screenshots(context, name, url) {
  for (const [device, viewport] of [
    ['desktop', { width: 1280, height: 900 }],
    ['phone', { width: 375, height: 812 }],
  ]) {
    for (const scheme of ['light', 'dark']) {
      const p = await page(context);
      await p.setViewportSize(viewport);
      await p.emulateMedia({ colorScheme: scheme });
      await p.goto(url);
      await p.waitForLoadState('networkidle').catch(() => {});
      await p.locator('main .notice.loading').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {});
      await p.screenshot({ path: join(shots, `${name}-${device}-${scheme}.png`), fullPage: true });
      await p.close();
    }
  }
}

// Chrome as a person runs it: events from a headless or automated browser are bots, which
// reports do not count.
const { browser, ua: chromeAgent } = await launchAsChrome();
try {
  // ── Access: without a credential, the sign-in page and 401s; signing in opens the overview.
  {
    const context = await browser.newContext({ baseURL: base });
    const p = await page(context);
    const response = await p.goto('/');
    const csp = response.headers()['content-security-policy'] ?? '';
    check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `a strict CSP comes with the UI: ${csp}`);
    await p.getByRole('heading', { name: 'Sign in to Oriel' }).waitFor();
    check(true, 'a browser without a credential sees the sign-in page');
    const status = await p.evaluate(() =>
      fetch('/api/v1/query', { method: 'POST', body: '{"range":{"preset":"all"},"measures":["events"]}' }).then((r) => r.status),
    );
    check(status === 401, `its API calls get 401 (got ${status})`);
    const forwarded = await context.request.get('/api/v1/sites', { headers: { 'x-forwarded-for': '203.0.113.9' } });
    check(forwarded.status() === 401, `a forwarded request without a credential gets 401 (got ${forwarded.status()})`);
    await p.getByLabel('Name').fill(user);
    await p.getByLabel('Password').fill('not the password');
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('alert').filter({ hasText: /./ }).waitFor();
    check(true, 'a wrong password is refused with a message');
    await p.getByLabel('Password').fill(password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.locator('section.stats .stat').first().waitFor();
    check(true, 'after signing in the overview loads');
    const cookie = (await context.cookies()).find((c) => c.name.startsWith('oriel'));
    check(cookie?.httpOnly && cookie?.sameSite === 'Strict', `the session cookie is HttpOnly and SameSite=Strict (${JSON.stringify(cookie)})`);
    await context.close();
  }

  const context = await signedIn(browser);
  const where = `site = ${quote(site)} AND NOT is_bot AND NOT is_duplicate AND NOT is_corrupt`;
  // Traffic of the last minutes through the collector, so the last hour has events however the
  // generated history falls; the comparisons start once SQL sees all of them.
  const [[already]] = await sql(`SELECT COUNT(*) FROM events WHERE ${where}`);
  for (let i = 0; i < 12; i++) {
    const id = `recent-${Date.now()}-${i}`;
    await send({ site, vid: `v-${id}`, sid: `s-${id}`, ev: [{ id, t: 'pageView', url: `https://example.test/recent/${i % 3}`, ti: 'Recent' }] });
  }
  for (let tries = 0; ; tries++) {
    const [[n]] = await sql(`SELECT COUNT(*) FROM events WHERE ${where}`);
    if (Number(n) === Number(already) + 12) break;
    if (tries > 100) throw new Error(`the 12 recent events never showed in SQL (${n} of ${Number(already) + 12})`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // ── The overview's numbers equal SQL.
  const overviewUrl = `/?site=${encodeURIComponent(site)}&period=28d&tz=UTC`;
  {
    const p = await page(context);
    await p.goto(overviewUrl);
    const visitors = await stat(p, 'Unique visitors');
    const [[expectedVisitors, expectedViews]] = await sql(
      `SELECT COUNT(DISTINCT party_id), COUNT(*) FILTER (WHERE event_type = 'pageView') FROM events WHERE ${where}`,
    );
    check(visitors === Number(expectedVisitors), `overview visitors ${visitors} = SQL ${expectedVisitors}`);
    const views = await stat(p, 'Page views');
    check(views === Number(expectedViews), `overview page views ${views} = SQL ${expectedViews}`);
    sameRanking(
      await panelRows(p, 'Pages'),
      await sql(
        `SELECT path, COUNT(DISTINCT party_id) AS n FROM events WHERE ${where} AND event_type = 'pageView' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50`,
      ),
      'top pages',
    );
    sameRanking(
      await panelRows(p, 'Sources'),
      await sql(`SELECT channel, COUNT(DISTINCT party_id) AS n FROM events WHERE ${where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50`),
      'channels',
    );
    // Events per minute over the last hour: the bars against SQL, minute by minute.
    // The first bar's minute is cut by the hour's start; the rest are whole. The snapshot shows
    // the 12 events just sent within a few seconds.
    await p.locator('.minutes .minute').first().waitFor();
    const barsNow = () => p.locator('.minutes .minute').evaluateAll((els) => els.map((e) => [e.dataset.minute, Number(e.dataset.count)]));
    let bars = await barsNow();
    for (let tries = 0; bars.reduce((sum, [, n]) => sum + n, 0) < 12 && tries < 50; tries++) {
      await p.waitForTimeout(200);
      bars = await barsNow();
    }
    const since = bars[1][0];
    const perMinute = new Map(
      (
        await sql(
          `SELECT TIME_FLOOR(__time, 'PT1M') AS m, COUNT(*) FROM events WHERE ${where} AND __time >= TIMESTAMP ${quote(since.replace('T', ' ').replace('Z', ''))} GROUP BY 1`,
        )
      ).map(([m, n]) => [new Date(m).toISOString(), Number(n)]),
    );
    const compared = bars.slice(1);
    const differ = compared.filter(([m, n]) => (perMinute.get(m) ?? 0) !== n);
    check(
      compared.some(([, n]) => n > 0) && differ.length === 0,
      `events per minute equal SQL for ${compared.length} minutes (differ: ${JSON.stringify(differ)})`,
    );

    // ── A click on a page filters every panel, and the numbers follow the filtered SQL.
    const [firstPath] = (await panelRows(p, 'Pages'))[0];
    await p.locator('section.panel[aria-label="Pages"] ol.ranked li button').first().click();
    await p.waitForURL((url) => url.searchParams.getAll('f').some((f) => f.startsWith('is,path,')));
    const filtered = `${where} AND path = ${quote(firstPath)}`;
    await p.locator('ul.chips').waitFor();
    await p.waitForTimeout(300);
    const [[filteredVisitors]] = await sql(`SELECT COUNT(DISTINCT party_id) FROM events WHERE ${filtered}`);
    check((await stat(p, 'Unique visitors')) === Number(filteredVisitors), `filtered visitors = SQL ${filteredVisitors}`);
    sameRanking(
      await panelRows(p, 'Sources'),
      await sql(`SELECT channel, COUNT(DISTINCT party_id) FROM events WHERE ${filtered} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50`),
      `channels filtered by path ${firstPath}`,
    );
    sameRanking(
      await panelRows(p, 'Devices'),
      await sql(`SELECT browser, COUNT(DISTINCT party_id) FROM events WHERE ${filtered} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50`),
      `browsers filtered by path ${firstPath}`,
    );
    // The chip flips the filter to exclude that page.
    await p.getByRole('button', { name: `Exclude path ${firstPath}` }).click();
    await p.waitForURL((url) => url.searchParams.getAll('f').some((f) => f.startsWith('isNot,path,')));
    await p.locator('section.stats .stat').first().waitFor();
    await p.waitForTimeout(300);
    const excluded = `${where} AND (path IS NULL OR path <> ${quote(firstPath)})`;
    const [[excludedVisitors]] = await sql(`SELECT COUNT(DISTINCT party_id) FROM events WHERE ${excluded}`);
    await p.waitForFunction(
      (n) => document.querySelector('section.stats .stat .stat-value')?.textContent.replace(/,/g, '') === String(n),
      Number(excludedVisitors),
      { timeout: 10_000 },
    ).catch(() => {});
    check((await stat(p, 'Unique visitors')) === Number(excludedVisitors), `visitors excluding ${firstPath} = SQL ${excludedVisitors}`);
    await p.close();
  }

  // ── An event sent now shows in the live view within seconds, without a reload.
  {
    const p = await page(context);
    await p.goto(overviewUrl);
    await p.locator('ol.feed').waitFor();
    await p.evaluate(() => {
      window.__notReloaded = true;
    });
    const path = `/live-${Date.now()}`;
    const sent = Date.now();
    await send({ site, vid: `live-v-${sent}`, sid: `live-s-${sent}`, ev: [{ id: `live-${sent}`, t: 'pageView', url: `https://example.test${path}`, ti: 'Live' }] });
    await p.locator('ol.feed li', { hasText: path }).waitFor({ timeout: 10_000 });
    const still = await p.evaluate(() => window.__notReloaded === true);
    check(still, `a new page view appeared in the live feed after ${Date.now() - sent} ms without a reload`);
    await p.close();
  }

  // ── The explorer: the URL is the view, the comparison and the CSV are right.
  const day = (offset) => new Date(Date.now() - offset * 86_400_000).toISOString().slice(0, 10);
  const [from, to, before] = [day(1), day(0), day(2)];
  const explorerUrl = `/explore?site=${encodeURIComponent(site)}&period=custom&from=${from}&to=${to}&compare=previous&split=path&m=pageviews,visitors&limit=20&tz=UTC`;
  {
    const p = await page(context);
    await p.goto(explorerUrl);
    await p.locator('table.data tbody tr').first().waitFor();
    const table = await p.locator('table.data').evaluate((t) => [...t.querySelectorAll('tr')].map((r) => [...r.cells].map((c) => c.textContent.trim())));
    const other = await signedIn(browser);
    const q = await page(other);
    await q.goto(explorerUrl);
    await q.locator('table.data tbody tr').first().waitFor();
    const again = await q.locator('table.data').evaluate((t) => [...t.querySelectorAll('tr')].map((r) => [...r.cells].map((c) => c.textContent.trim())));
    check(JSON.stringify(table) === JSON.stringify(again), 'the same URL shows the same table in a fresh browser context');
    await other.close();

    const range = (a, b) => `__time >= TIMESTAMP '${a} 00:00:00' AND __time < TIMESTAMP '${b} 00:00:00'`;
    const now = new Map(
      (await sql(`SELECT path, COUNT(*) FILTER (WHERE event_type = 'pageView'), COUNT(DISTINCT party_id) FROM events WHERE ${where} AND ${range(from, to)} GROUP BY 1`)).map(
        ([k, v, u]) => [k ?? '(none)', [Number(v), Number(u)]],
      ),
    );
    const then = new Map(
      (await sql(`SELECT path, COUNT(*) FILTER (WHERE event_type = 'pageView'), COUNT(DISTINCT party_id) FROM events WHERE ${where} AND ${range(before, from)} GROUP BY 1`)).map(
        ([k, v, u]) => [k ?? '(none)', [Number(v), Number(u)]],
      ),
    );
    // Columns: path, page views, before, Δ, visitors, before, Δ.
    const rows = table.slice(1);
    const wrong = rows.filter(([k, v, pv, , u, pu]) => {
      const [ev, eu] = now.get(k) ?? [0, 0];
      const [bv, bu] = then.get(k) ?? [null, null];
      return number(v) !== ev || number(u) !== eu || (bv !== null && (number(pv) !== bv || number(pu) !== bu));
    });
    check(rows.length > 0 && wrong.length === 0, `explorer rows with the previous period equal SQL (${rows.length} rows; wrong: ${JSON.stringify(wrong.slice(0, 3))})`);

    const [download] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = readFileSync(await download.path(), 'utf8').trim().split('\r\n');
    check(csv.length === rows.length + 1, `the CSV has a header and ${rows.length} rows (${csv.length} lines)`);
    const csvWrong = csv.slice(1).filter((line) => {
      const cells = line.match(/("([^"]|"")*"|[^,]*)(,|$)/g).map((c) => c.replace(/,$/, '').replace(/^"|"$/g, '').replaceAll('""', '"'));
      const [ev, eu] = now.get(cells[0]) ?? [0, 0];
      return Number(cells[1]) !== ev || Number(cells[4]) !== eu;
    });
    check(csvWrong.length === 0, `CSV numbers equal SQL (wrong: ${JSON.stringify(csvWrong.slice(0, 3))})`);
    await p.close();
  }

  // ── Hostile strings from tracked pages are text.
  {
    const sent = Date.now();
    await send({
      site: 'xss',
      vid: `x-${sent}`,
      sid: `xs-${sent}`,
      ev: [
        {
          id: `xss-${sent}`,
          t: 'pageView',
          url: `https://example.test/?q=${encodeURIComponent(HOSTILE)}`,
          ref: `https://referrer.test/${HOSTILE}`,
          ti: HOSTILE,
          p: { evil: HOSTILE },
        },
      ],
    });
    const p = await page(context);
    for (const split of ['title', 'prop:evil', 'referrer']) {
      await p.goto(`/explore?site=xss&period=today&split=${encodeURIComponent(split)}&m=events&tz=UTC`);
      const cell = p.locator('table.data tbody td', { hasText: '<img' }).first();
      await cell.waitFor({ timeout: 10_000 });
      const text = await cell.textContent();
      check(text.includes(HOSTILE), `${split} ${JSON.stringify(text)} is shown as those characters`);
      check((await p.locator('table.data img').count()) === 0, `no element is made from ${split}`);
    }
    await p.goto('/?site=xss&period=today&tz=UTC');
    await p.locator('section.stats .stat').first().waitFor();
    await p.waitForTimeout(2500);
    check((await p.locator('main img').count()) === 0, 'the overview of hostile data makes no element from it');
    await p.close();
  }

  // ── A site without events shows the tag to install and a button that sends a test event.
  {
    const p = await page(context);
    await p.goto('/?site=brand-new&tz=UTC');
    await p.getByRole('heading', { name: 'No events yet' }).waitFor();
    const snippet = await p.locator('pre code').textContent();
    check(snippet.includes('data-site="brand-new"') && snippet.includes(`${base}/oriel.js`), `the empty state shows this collector's tag: ${snippet}`);
    await p.getByRole('button', { name: 'Send a test event' }).click();
    await p.locator('section.stats .stat').first().waitFor({ timeout: 15_000 });
    let stored = 0;
    for (let tries = 0; stored !== 1 && tries < 100; tries++) {
      const [[n]] = await sql("SELECT COUNT(*) FROM events WHERE site = 'brand-new' AND path = '/oriel-test-event' AND NOT is_bot");
      stored = Number(n);
      if (stored !== 1) await new Promise((r) => setTimeout(r, 100));
    }
    check(stored === 1, `the test event was stored, not as a bot, and the overview replaced the empty state (${stored} stored)`);
    await p.close();
  }

  // ── Journeys: a funnel of the two most viewed pages, the weekly cohorts and the paths from
  // the top page, against SQL written here.
  const [[p1], [p2]] = await sql(
    `SELECT path FROM events WHERE ${where} AND event_type = 'pageView' GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 2`,
  );
  const journeysUrl =
    `/journeys?site=${encodeURIComponent(site)}&period=all&tz=UTC&step=${encodeURIComponent(`page:${p1}`)}` +
    `&step=${encodeURIComponent(`page:${p2}`)}&window=7776000&anchor=${encodeURIComponent(p1)}`;
  {
    const p = await page(context);
    await p.goto(journeysUrl);
    await p.locator('.funnel-step').first().waitFor();
    const counts = await p.locator('.funnel-step').evaluateAll((els) => els.map((e) => Number(e.dataset.count)));
    const [[first]] = await sql(
      `SELECT COUNT(DISTINCT party_id) FROM events WHERE ${where} AND event_type = 'pageView' AND path = ${quote(p1)}`,
    );
    // The history spans days, well inside the 90-day window: a visitor converts when some view of
    // the first page comes before some view of the second.
    const [[second]] = await sql(
      `SELECT COUNT(*) FROM (SELECT party_id, MIN(CASE WHEN path = ${quote(p1)} THEN TIMESTAMP_TO_MILLIS(__time) END) AS a, ` +
        `MAX(CASE WHEN path = ${quote(p2)} THEN TIMESTAMP_TO_MILLIS(__time) END) AS b FROM events ` +
        `WHERE ${where} AND event_type = 'pageView' GROUP BY party_id) WHERE a < b`,
    );
    check(
      counts.length === 2 && counts[0] === Number(first) && counts[1] === Number(second),
      `the funnel ${p1} → ${p2} shows ${counts} visitors, SQL ${first}, ${second}`,
    );
    await p.locator('.retention-grid tbody tr').first().waitFor();
    const sizes = await p.locator('.retention-grid tbody tr').evaluateAll((els) => els.map((e) => Number(e.dataset.size)));
    const cohorts = await sql(
      `SELECT TIME_FLOOR(f, 'P1W'), COUNT(*) FROM (SELECT party_id, MIN(__time) AS f FROM events WHERE ${where} ` +
        'GROUP BY 1) GROUP BY 1 ORDER BY 1',
    );
    check(
      JSON.stringify(sizes) === JSON.stringify(cohorts.map(([, n]) => Number(n))),
      `weekly cohorts by first visit: ${sizes} = SQL ${cohorts.map(([, n]) => n)}`,
    );
    await p.locator('.path-tree > li > .row .value').first().waitFor();
    const root = number(await p.locator('.path-tree > li > .row .value').first().textContent());
    const children = await p
      .locator('.path-tree > li > ul > li > .row .value')
      .evaluateAll((els) => els.map((e) => Number(e.textContent.replace(/,/g, ''))));
    const [[views]] = await sql(`SELECT COUNT(*) FROM events WHERE ${where} AND event_type = 'pageView' AND path = ${quote(p1)}`);
    check(
      root === Number(views) && children.reduce((a, b) => a + b, 0) === root,
      `paths from ${p1}: ${root} views (SQL ${views}), split into ${children}`,
    );
    await p.close();
  }

  // ── Accessibility: nothing serious or critical on the overview and explorer, both themes.
  for (const [name, url] of [
    ['overview', overviewUrl],
    ['explorer', explorerUrl],
    ['journeys', journeysUrl],
  ]) {
    for (const scheme of ['light', 'dark']) {
      const p = await page(context);
      await p.emulateMedia({ colorScheme: scheme });
      await p.goto(url);
      const drawn = { overview: 'section.panel ol.ranked', explorer: 'table.data', journeys: '.path-tree' };
      await p.locator(drawn[name]).first().waitFor();
      await p.waitForTimeout(500);
      const result = await new AxeBuilder({ page: p }).analyze();
      const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      check(
        bad.length === 0,
        `axe: no serious or critical violation on the ${name} (${scheme}): ${JSON.stringify(bad.map((v) => [v.id, v.nodes.slice(0, 2).map((n) => n.target)]))}`,
      );
      await p.close();
    }
  }

  // ── "Your data": one visitor's events exported, then deleted, with the count and a receipt.
  {
    const [[victim]] = await sql(
      `SELECT party_id FROM events WHERE site = ${quote(site)} GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`,
    );
    // A visitor id may have events on other sites too: all of them are theirs.
    const [[held]] = await sql(`SELECT count(*) FROM events WHERE party_id = ${quote(victim)}`);
    const exported = await context.request.get(`/api/v1/export?party_id=${encodeURIComponent(victim)}`);
    const lines = (await exported.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    check(
      exported.status() === 200 && lines.length === held && lines.every((e) => e.party_id === victim),
      `the export of visitor ${victim} holds exactly their ${held} events (${lines.length})`,
    );
    const p = await page(context);
    await p.goto('/data');
    await p.getByLabel('Visitor or user id').fill(victim);
    await p.getByRole('button', { name: 'Delete' }).click();
    const said = await p.locator('.deletion-result').filter({ hasText: 'Deleted' }).textContent({ timeout: 30000 });
    const [[left]] = await sql(`SELECT count(*) FROM events WHERE party_id = ${quote(victim)}`);
    check(
      said.startsWith(`Deleted ${held} events (receipt d`) && left === 0,
      `deleting a visitor in "Your data" says how many events went (${said}); ${left} left`,
    );
    const receipt = p.locator('section.receipts tbody tr').filter({ hasText: victim });
    await receipt.first().waitFor();
    check((await receipt.count()) === 1, 'the deletion is listed among the receipts');
    await p.close();
  }

  // ── Screenshots for a reviewer.
  await screenshots(context, 'overview', overviewUrl);
  await screenshots(context, 'explorer', explorerUrl);
  await screenshots(context, 'journeys', journeysUrl);
  await screenshots(context, 'data', '/data');
  console.log(`screenshots in ${shots}`);
  await context.close();
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error(`${failures.length} checks failed:\n${failures.join('\n')}`);
  process.exit(1);
}
