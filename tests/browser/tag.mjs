// Real-Chromium scenarios for the oriel.js tag, in two phases:
//
//   node tests/browser/tag.mjs run --collector http://127.0.0.1:PORT --report report.json
//     drives headless Chromium through test pages served from their own loopback origin, each
//     loading COLLECTOR/oriel.js, asserts what can only be seen in the browser (storage, ids,
//     requests), and writes what the verify phase needs to the report;
//   node tests/browser/tag.mjs verify --events events.jsonl --report report.json
//     checks the events the collector stored (one JSON object per line) against the report.
//
// Each scenario uses its own site id (t-...) and its own browser context (fresh storage), so
// scenarios run concurrently and their events never mix.
import { writeFileSync, readFileSync } from "node:fs";
import { launchAsChrome, serveSite, readEvents, options, Checks } from "./lib.mjs";

const opts = options();
const phase = opts._[0];

// ---------------------------------------------------------------------------------------------
// Helpers for the run phase.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy; throws with `what` after `ms`. */
async function until(fn, what, ms = 6000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(40);
  }
}

/** The collector's URL under another name for the same loopback address: another origin. */
const otherName = (url) => url.replace("//127.0.0.1:", "//localhost:");

/** One test page: a document that loads the tag from the collector with the given attributes. */
function html({ site, attrs = "", title = "Oriel tag test", head = "", body = "", src }) {
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>${head}` +
    `<script defer data-site="${site}" ${attrs} src="${src}"></script></head><body>${body}</body></html>`;
}

/**
 * Watches a context's requests to the collector's /e: every batch the tag sent (as far as
 * Playwright can see it: a beacon sent by a page that is being left is not reported), with its
 * content type and, once answered, its status.
 */
function watch(ctx, collector) {
  const sent = [];
  const endpoints = [`${collector}/e`, `${otherName(collector)}/e`];
  const isEvents = (r) => r.method() === "POST" && endpoints.includes(r.url().split("?")[0]);
  ctx.on("request", (r) => {
    if (!isEvents(r)) return;
    let batch = null;
    try { batch = JSON.parse(r.postData()); } catch { /* recorded as null: a check fails */ }
    sent.push({ req: r, batch, ctype: r.headers()["content-type"], kind: r.resourceType(), status: undefined });
  });
  const answer = (r, status) => { const s = sent.find((x) => x.req === r); if (s) s.status = status; };
  ctx.on("requestfinished", async (r) => { if (isEvents(r)) answer(r, (await r.response())?.status() ?? 0); });
  ctx.on("requestfailed", (r) => { if (isEvents(r)) answer(r, "failed"); });
  return {
    sent,
    events: () => sent.flatMap((s) => s.batch?.ev ?? []),
    /** Waits until an answered batch holds an event matching `pred`; returns that event. */
    async answered(pred, what, status = 204) {
      return until(() => {
        for (const s of sent) if (s.status === status) for (const e of s.batch?.ev ?? []) if (pred(e)) return e;
      }, what);
    },
  };
}

/**
 * Makes the oriel.js served by the collector behave as if the collector had baked `overrides`
 * into it: the served file is fetched for real and the baked JSON object (flat, with the keys of
 * docs/tag.md) is patched. Lets the scenarios cover baked settings whatever the collector's
 * configured sites are.
 */
async function bake(ctx, collector, overrides, check) {
  await ctx.route((u) => `${u.origin}${u.pathname}` === `${collector}/oriel.js`, async (route) => {
    const res = await route.fetch();
    const body = await res.text();
    const re = /\{\s*"(?:site|endpoint|cookieless|sessionMinutes|respectDnt|requireConsent|hash)"\s*:[^{}]*\}/;
    const m = body.match(re);
    check.ok(m, `baked settings object not found in ${collector}/oriel.js`);
    const patched = m ? body.replace(re, JSON.stringify({ ...JSON.parse(m[0]), ...overrides })) : body;
    // The body is decoded already: drop the headers that described the encoded one.
    const headers = Object.fromEntries(Object.entries(res.headers()).filter(([k]) => !/^content-(length|encoding)$/i.test(k)));
    await route.fulfill({ status: res.status(), headers, body: patched });
  });
}

/** Pretends the page was hidden (headless Chromium never hides a page by itself), or shown. */
async function setHidden(page, hidden) {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

const storage = (page) => page.evaluate(() => ({
  local: Object.fromEntries(Object.keys(localStorage).map((k) => [k, localStorage.getItem(k)])),
  session: sessionStorage.length,
  cookie: document.cookie,
}));
const ids = (page) => page.evaluate(() => window.oriel.ids());

// The props every custom-event check compares, stored by the collector as JSON text.
const PROPS = {
  plan: "pro", seats: 3, price: 9.99, negative: -7, big: 1234567890123, zero: 0, ok: true, no: false, none: null,
  tags: ["a", "b", 3, false, null, { k: "v" }],
  nested: { deep: { list: [1, { y: "z" }, []], empty: {} } },
  unicode: "héllo wörld ✓ 日本語 🎉 \u00e9\u0301",
  html: "</script><script>alert(1)</script>",
  quotes: "say \"hi\"\n\ttab \\ slash / done",
};

// ---------------------------------------------------------------------------------------------
// Scenarios. run(t) drives the browser and returns the data verify(v) needs; verify(v) checks the
// stored events of the scenario's site. t: { ctx, page, site, origin, collector, src, check, sent }.

const SCENARIOS = [
  {
    name: "pageview",
    site: "t-pageview",
    pages: (s) => ({
      "/pv/landing": html({ site: s.site, src: s.src, title: "Landing — Oriel ✓",
        body: `<a id="ext" href="https://example.org/x" onclick="event.preventDefault()">out</a>` }),
    }),
    async run(t) {
      const { page, check } = t;
      const url = `${t.origin}/pv/landing?utm_source=news&utm_medium=email&utm_campaign=spring#top`;
      const referrer = "https://www.google.com/search?q=oriel";
      await page.goto(url, { referer: referrer });
      const first = await ids(page);
      const pv = await t.sent.answered((e) => e.t === "pageView", "the page view");
      check.eq(pv.pv, first.pageView, "pageview: pv of the sent page view");
      const batch = t.sent.sent.find((s) => s.batch?.ev?.some((e) => e.id === pv.id));
      check.eq(batch.ctype, "text/plain;charset=UTF-8", "pageview: content type of the batch");
      check.eq(batch.kind, "fetch", "pageview: a visible page sends by fetch");
      for (const k of ["visitor", "session", "pageView"]) check.ok(/^[A-Za-z0-9_-]{22}$/.test(first[k]), `pageview: ids().${k} is 22 url-safe characters: ${first[k]}`);
      const st = await storage(page);
      check.ok(st.local.oriel_vid?.startsWith(`${first.visitor}.`), `pageview: oriel_vid holds the visitor id: ${st.local.oriel_vid}`);
      check.ok(st.local.oriel_sid?.startsWith(`${first.session}.`), `pageview: oriel_sid holds the session id: ${st.local.oriel_sid}`);
      const screen = await page.evaluate(() => ({ sw: screen.width, sh: screen.height, vw: innerWidth, vh: innerHeight, dpr: devicePixelRatio, lang: navigator.language }));
      // Without data-outbound a link to another host is not tracked.
      await page.click("#ext");
      await page.reload();
      const second = await ids(page);
      // A reload keeps the document's referrer.
      const secondReferrer = await page.evaluate(() => document.referrer);
      await t.sent.answered((e) => e.t === "pageView" && e.pv === second.pageView, "the second page view");
      check.eq(second.visitor, first.visitor, "pageview: same visitor after reload");
      check.eq(second.session, first.session, "pageview: same session after reload");
      check.ok(!t.sent.events().some((e) => e.t === "outbound"), "pageview: no outbound event without data-outbound");
      return { url, referrer, secondReferrer, title: "Landing — Oriel ✓", first, second, screen };
    },
    verify(v) {
      const { c, d } = v;
      const pvs = v.ofType("pageView");
      c.eq(pvs.length, 2, "pageview: page views stored");
      const [a, b] = [v.byPv(d.first.pageView, "pageView"), v.byPv(d.second.pageView, "pageView")];
      if (a) {
        v.common(a, { ids: d.first, url: d.url, title: d.title, referrer: d.referrer });
        c.eq(a.is_new_party, true, "pageview: is_new_party on the first page view");
        c.eq(a.is_first_in_session, true, "pageview: is_first_in_session on the first page view");
        c.eq(a.utm_source, "news", "pageview: utm_source");
        c.eq(a.utm_medium, "email", "pageview: utm_medium");
        c.eq(a.utm_campaign, "spring", "pageview: utm_campaign");
        c.eq(a.referrer_host, "www.google.com", "pageview: referrer_host");
        c.eq([a.screen_width, a.screen_height, a.viewport_width, a.viewport_height, a.pixel_ratio, a.language],
          [d.screen.sw, d.screen.sh, d.screen.vw, d.screen.vh, d.screen.dpr, d.screen.lang], "pageview: screen, viewport, ratio, language");
        c.ok(/chrom/i.test(a.browser ?? ""), `pageview: browser from the user agent: ${a.browser}`);
        c.ok(/linux/i.test(a.os ?? ""), `pageview: os from the user agent: ${a.os}`);
        c.ok(a.is_bot !== true, "pageview: a normal Chrome user agent is not a bot");
      }
      if (b) {
        v.common(b, { ids: d.second, url: d.url, title: d.title, referrer: d.secondReferrer || undefined });
        c.ok(b.is_new_party !== true, "pageview: is_new_party not set on a returning page load");
        c.ok(b.is_first_in_session !== true, "pageview: is_first_in_session not set on the second page load");
      }
      c.eq(v.ofType("outbound").length, 0, "pageview: no outbound events");
    },
  },

  {
    name: "spa",
    site: "t-spa",
    pages: (s) => ({ "/spa/home": html({ site: s.site, src: s.src, title: "SPA home" }) }),
    async run(t) {
      const { page, check } = t;
      const step = async (what, fn, title) => {
        const before = (await ids(page)).pageView;
        await page.evaluate(fn);
        await sleep(120); // lets popstate arrive; the engagement needs visible time anyway
        const after = await ids(page);
        return { what, changed: after.pageView !== before, ids: after, url: await page.evaluate(() => location.href), title };
      };
      await page.goto(`${t.origin}/spa/home`);
      await sleep(150);
      const steps = [{ what: "load", changed: true, ids: await ids(page), url: `${t.origin}/spa/home`, title: "SPA home" }];
      steps.push(await step("pushState to a new path", () => { document.title = "SPA second"; history.pushState({}, "", "/spa/second?tab=2"); }, "SPA second"));
      steps.push(await step("replaceState to the same URL", () => history.replaceState({ s: 1 }, "", location.href)));
      steps.push(await step("pushState to the same URL", () => history.pushState({ s: 2 }, "", location.href)));
      steps.push(await step("pushState changing only the hash", () => history.pushState({}, "", "#section")));
      steps.push(await step("hash change without data-hash", () => { location.hash = "other"; }));
      steps.push(await step("popstate back to the first page", () => { document.title = "SPA home again"; history.go(-4); }, "SPA home again"));
      steps.push(await step("replaceState to a new path", () => { document.title = "SPA replaced"; history.replaceState({}, "", "/spa/replaced"); }, "SPA replaced"));
      const expect = [true, true, false, false, false, false, true, true];
      steps.forEach((s, i) => check.eq(s.changed, expect[i], `spa: new page view after ${s.what}`));
      check.eq(steps[6].url, `${t.origin}/spa/home`, "spa: history.go(-4) went back to the first page");
      const last = steps.at(-1).ids.pageView;
      await t.sent.answered((e) => e.t === "pageView" && e.pv === last, "the last SPA page view");
      return { views: steps.filter((s) => s.changed) };
    },
    verify(v) {
      const { c, d } = v;
      c.eq(v.ofType("pageView").length, d.views.length, "spa: page views stored");
      d.views.forEach((view, i) => {
        const e = v.byPv(view.ids.pageView, "pageView");
        if (!e) return;
        const ref = i ? d.views[i - 1].url.split("#")[0] : undefined;
        v.common(e, { ids: view.ids, url: view.url.split("#")[0], title: view.title, referrer: ref });
        c.eq(e.is_new_party, true, `spa: is_new_party on every event of the page load (view ${i})`);
        if (i) {
          // Before each SPA page view, an engagement event closes the previous one.
          const eng = v.events.filter((x) => x.event_type === "engagement" && x.page_view_id === d.views[i - 1].ids.pageView);
          c.ok(eng.length >= 1, `spa: engagement for view ${i - 1} before view ${i}`);
          for (const g of eng) {
            c.ok(g.engaged_ms > 0, `spa: engaged_ms > 0 for view ${i - 1}: ${g.engaged_ms}`);
            c.eq(g.url, d.views[i - 1].url.split("#")[0], `spa: engagement url of view ${i - 1}`);
            c.ok(g.client_time <= e.client_time, `spa: engagement of view ${i - 1} not after view ${i}`);
          }
        }
      });
    },
  },

  {
    name: "hash",
    site: "t-hash",
    pages: (s) => ({ "/hash/app": html({ site: s.site, src: s.src, attrs: "data-hash", title: "Hash app" }) }),
    async run(t) {
      const { page } = t;
      await page.goto(`${t.origin}/hash/app#/home`);
      const views = [{ ids: await ids(page), url: `${t.origin}/hash/app#/home` }];
      await sleep(100);
      await page.evaluate(() => { location.hash = "#/settings"; });
      await until(async () => (await ids(page)).pageView !== views[0].ids.pageView, "the hashchange page view", 2000);
      views.push({ ids: await ids(page), url: `${t.origin}/hash/app#/settings` });
      await page.evaluate(() => history.pushState({}, "", "#/profile"));
      views.push({ ids: await ids(page), url: `${t.origin}/hash/app#/profile` });
      await t.sent.answered((e) => e.t === "pageView" && e.pv === views[2].ids.pageView, "the last hash page view");
      return { views };
    },
    verify(v) {
      const { c, d } = v;
      c.eq(v.ofType("pageView").length, 3, "hash: page views stored");
      c.eq(new Set(d.views.map((x) => x.ids.pageView)).size, 3, "hash: hash changes made new page views");
      d.views.forEach((view, i) => {
        const e = v.byPv(view.ids.pageView, "pageView");
        if (e) v.common(e, { ids: view.ids, url: view.url, title: "Hash app", referrer: i ? d.views[i - 1].url : undefined });
      });
    },
  },

  {
    name: "bfcache",
    site: "t-bfcache",
    bfcache: true,
    pages: (s) => ({
      "/bf/a": html({ site: s.site, src: s.src, title: "BF A",
        head: `<script>window.shows=[];addEventListener("pageshow",(e)=>shows.push(e.persisted))</script>` }),
      "/bf/b": `<!doctype html><title>BF B</title>no tag here`,
    }),
    async run(t) {
      const { page, check } = t;
      await page.goto(`${t.origin}/bf/a`);
      const first = await ids(page);
      await t.sent.answered((e) => e.t === "pageView", "the first page view");
      await sleep(200);
      await page.goto(`${t.origin}/bf/b`);
      // A restore from the back/forward cache fires no load event.
      await page.goBack({ waitUntil: "commit" });
      await until(() => page.evaluate(() => window.oriel?.ids().pageView).catch(() => null).then((pv) => pv && pv !== first.pageView), "the page back");
      const shows = await page.evaluate(() => window.shows);
      check.eq(shows, [false, true], "bfcache: the page was restored from the back/forward cache");
      const second = await ids(page);
      await t.sent.answered((e) => e.t === "pageView" && e.pv === second.pageView, "the page view of the restored page");
      return { first, second, url: `${t.origin}/bf/a` };
    },
    verify(v) {
      const { c, d } = v;
      c.eq(v.ofType("pageView").length, 2, "bfcache: a restore from the back/forward cache is a page view");
      const a = v.byPv(d.first.pageView, "pageView");
      const b = v.byPv(d.second.pageView, "pageView");
      if (a) v.common(a, { ids: d.first, url: d.url, title: "BF A" });
      if (b) v.common(b, { ids: d.second, url: d.url, title: "BF A" });
      const eng = v.byPv(d.first.pageView, "engagement");
      if (eng) v.common(eng, { ids: d.first, url: d.url });
    },
  },

  {
    name: "custom",
    site: "t-custom",
    pages: (s) => ({
      "/custom/page": html({ site: s.site, src: s.src, title: "Custom events",
        // The usual stub: calls made before the tag loaded are queued and replayed.
        head: `<script>window.oriel=window.oriel||function(){(oriel.q=oriel.q||[]).push(arguments)};` +
          `oriel("track","stub_event",{from:"stub",n:1,list:[1,"two"]});oriel("identify","stub-user");</script>` }),
    }),
    async run(t) {
      const { page, check } = t;
      await page.goto(`${t.origin}/custom/page`);
      const r = await page.evaluate((props) => {
        const out = { errors: [] };
        const safe = (name, fn) => { try { return fn() ?? null; } catch (e) { out.errors.push(`${name}: ${e}`); } };
        out.ids = oriel.ids();
        out.signup = safe("track", () => oriel.track("signup", props));
        out.cyclic = safe("cyclic", () => { const o = { a: 1 }; o.self = o; return oriel.track("cyclic", o); });
        out.array = safe("array", () => oriel.track("array_props", [1, 2]));
        out.noName = safe("no name", () => oriel.track());
        out.unknown = safe("unknown command", () => oriel("no-such-command", 1));
        safe("identify null", () => oriel.identify(null));
        out.cleared = safe("track", () => oriel.track("after_clear"));
        safe("identify", () => oriel.identify("user-42"));
        out.purchase = safe("track", () => oriel("track", "purchase", { amount: 42.5, currency: "EUR" }));
        return out;
      }, PROPS);
      check.eq(r.errors, [], "custom: no API call threw");
      check.eq(r.noName, null, "custom: track() without a name is ignored");
      check.eq(r.unknown, null, "custom: an unknown command is ignored");
      for (const k of ["signup", "cyclic", "array", "cleared", "purchase"]) check.ok(/^[A-Za-z0-9_-]{22}$/.test(r[k] ?? ""), `custom: track returns an event id (${k})`);
      await t.sent.answered((e) => e.id === r.purchase, "the purchase event");
      // More events than one batch may hold: they go in several.
      const bulk = await page.evaluate(() => Array.from({ length: 120 }, (_, i) => oriel.track("bulk", { i })));
      await t.sent.answered((e) => e.id === bulk.at(-1), "the last bulk event");
      const sizes = t.sent.sent.map((s) => s.batch?.ev?.length ?? 0);
      check.ok(sizes.every((n) => n <= 50), `custom: at most 50 events a batch: ${sizes}`);
      return { ...r, bulk };
    },
    verify(v) {
      const { c, d } = v;
      const one = (type) => { const l = v.ofType(type); c.eq(l.length, 1, `custom: ${type} events stored`); return l[0]; };
      const pv = one("pageView");
      const stub = one("stub_event");
      const signup = one("signup");
      const cyclic = one("cyclic");
      const array = one("array_props");
      const cleared = one("after_clear");
      const purchase = one("purchase");
      if (pv) v.common(pv, { ids: d.ids, title: "Custom events", url: `${v.origin}/custom/page`, user: undefined });
      if (stub) {
        v.common(stub, { ids: d.ids, url: `${v.origin}/custom/page`, user: undefined });
        v.props(stub, { from: "stub", n: 1, list: [1, "two"] }, "custom: stub_event props");
      }
      if (signup) {
        v.common(signup, { ids: d.ids, url: `${v.origin}/custom/page`, user: "stub-user" });
        c.eq(signup.event_id, d.signup, "custom: signup event_id is what track returned");
        v.props(signup, PROPS, "custom: signup props");
      }
      if (cyclic) v.props(cyclic, undefined, "custom: cyclic props are dropped, the event kept");
      if (array) v.props(array, undefined, "custom: array props are dropped, the event kept");
      if (cleared) v.common(cleared, { ids: d.ids, url: `${v.origin}/custom/page`, user: undefined });
      if (purchase) {
        v.common(purchase, { ids: d.ids, url: `${v.origin}/custom/page`, user: "user-42" });
        v.props(purchase, { amount: 42.5, currency: "EUR" }, "custom: purchase props");
      }
      c.ok(!v.events.some((e) => e.event_type === "undefined" || e.event_type === ""), "custom: no event without a name");
      const bulk = v.ofType("bulk");
      c.eq(bulk.map((e) => e.event_id).sort(), [...d.bulk].sort(), "custom: all 120 bulk events stored");
      c.eq(bulk.map((e) => JSON.parse(e.props).i).sort((a, b) => a - b), d.bulk.map((_, i) => i), "custom: bulk event props");
    },
  },

  {
    name: "engage",
    site: "t-engage",
    pages: (s) => ({
      "/engage/long": html({ site: s.site, src: s.src, title: "Long page", body: `<div style="height:4000px">long</div>` }),
      "/engage/next": `<!doctype html><title>next</title>no tag here`,
    }),
    async run(t) {
      const { page, check } = t;
      await page.goto(`${t.origin}/engage/long`);
      const id = await ids(page);
      await t.sent.answered((e) => e.t === "pageView", "the page view");
      await page.evaluate(() => scrollTo(0, 1200));
      await sleep(300);
      const depth1 = await page.evaluate(() => Math.round((scrollY + innerHeight) / document.documentElement.scrollHeight * 100));
      const hideAt = Date.now();
      await setHidden(page, true);
      // The hidden page sends by beacon, at once.
      const first = await t.sent.answered((e) => e.t === "engagement", "the engagement event on hide", 204);
      const beacon = t.sent.sent.find((s) => s.batch?.ev?.some((e) => e.id === first.id));
      check.eq(beacon?.kind, "ping", "engage: a hidden page sends by sendBeacon");
      check.eq(beacon?.ctype, "text/plain;charset=UTF-8", "engage: beacon content type");
      await sleep(300); // hidden time does not count
      await setHidden(page, false);
      await page.evaluate(() => scrollTo(0, document.documentElement.scrollHeight));
      await sleep(300);
      // Leaving the page fires pagehide: the final totals go by beacon.
      await page.goto(`${t.origin}/engage/next`);
      // Closing a tab fires pagehide too; this one closes before its first batch was due, so its
      // page view goes by beacon along with the engagement.
      const tab = await t.ctx.newPage();
      await tab.goto(`${t.origin}/engage/long`);
      const closed = await ids(tab);
      await tab.evaluate(() => scrollTo(0, 600));
      await sleep(300);
      const depth2 = await tab.evaluate(() => Math.round((scrollY + innerHeight) / document.documentElement.scrollHeight * 100));
      await tab.close({ runBeforeUnload: true });
      await sleep(400);
      return { ids: id, url: `${t.origin}/engage/long`, depth1, hideAt, first, closed, depth2 };
    },
    verify(v) {
      const { c, d } = v;
      const eng = v.ofType("engagement").filter((e) => e.page_view_id === d.ids.pageView).sort((a, b) => a.client_time - b.client_time);
      c.eq(eng.length, 2, "engage: engagement events (hide, leave)");
      for (const e of eng) v.common(e, { ids: d.ids, url: d.url, pv: d.ids.pageView });
      if (eng[0]) {
        c.ok(eng[0].engaged_ms >= 250 && eng[0].engaged_ms < 60000, `engage: engaged_ms after ~0.3 s+ visible: ${eng[0].engaged_ms}`);
        c.eq(eng[0].scroll_depth, d.depth1, "engage: scroll depth when hidden");
        c.eq(eng[0].event_id, d.first.id, "engage: first engagement is the one seen sent");
      }
      if (eng[1]) {
        c.ok(eng[1].engaged_ms >= eng[0].engaged_ms + 250, `engage: engaged_ms grows after the page is shown again: ${eng[1].engaged_ms}`);
        // The 300 ms hidden must not count: the second total stays well below wall time.
        c.ok(eng[1].engaged_ms - eng[0].engaged_ms < eng[1].client_time - eng[0].client_time - 200,
          `engage: hidden time is not counted (${eng[1].engaged_ms - eng[0].engaged_ms} ms engaged in ${eng[1].client_time - eng[0].client_time} ms)`);
        c.eq(eng[1].scroll_depth, 100, "engage: scroll depth after scrolling to the bottom");
      }
      const pv = v.byPv(d.closed.pageView, "pageView");
      if (pv) v.common(pv, { ids: d.closed, url: d.url, title: "Long page" });
      const last = v.byPv(d.closed.pageView, "engagement");
      if (last) {
        v.common(last, { ids: d.closed, url: d.url });
        c.ok(last.engaged_ms >= 250, `engage: engaged_ms of the closed tab: ${last.engaged_ms}`);
        c.eq(last.scroll_depth, d.depth2, "engage: scroll depth of the closed tab");
      }
    },
  },

  {
    name: "outbound",
    site: "t-outbound",
    pages: (s) => ({
      "/out/page": html({ site: s.site, src: s.src, attrs: "data-outbound", title: "Outbound",
        body: `<a id="internal" href="/out/other" onclick="event.preventDefault()">internal</a>
          <a id="prevented" href="https://example.com/prevented?a=1" onclick="event.stopPropagation();event.preventDefault()">prevented</a>
          <a id="middle" href="http://example.net/middle">middle</a>
          <a id="mail" href="mailto:someone@example.com" onclick="event.preventDefault()">mail</a>
          <a id="ext" href="https://example.org/landing?q=1#frag"><span id="inner">outbound</span></a>` }),
    }),
    async run(t) {
      const { page, ctx } = t;
      // The outbound destinations: nothing leaves the machine.
      await ctx.route(/^https?:\/\/example\.(com|net|org)\//, (r) => r.fulfill({ status: 200, contentType: "text/html", body: "<title>elsewhere</title>" }));
      await page.goto(`${t.origin}/out/page`);
      const id = await ids(page);
      await page.click("#internal");
      await page.click("#mail");
      await page.click("#prevented");
      await t.sent.answered((e) => e.t === "outbound", "the outbound click that the page prevented");
      await page.click("#middle", { button: "middle" });
      await t.sent.answered((e) => e.t === "outbound" && e.p?.url === "http://example.net/middle", "the middle click");
      // A real navigation to another site: the fetch must survive the page going away.
      await Promise.all([page.waitForURL(/example\.org/), page.click("#inner")]);
      await sleep(400);
      return {
        ids: id, url: `${t.origin}/out/page`,
        urls: ["https://example.com/prevented?a=1", "http://example.net/middle", "https://example.org/landing?q=1#frag"],
      };
    },
    verify(v) {
      const { c, d } = v;
      const out = v.ofType("outbound").sort((a, b) => a.client_time - b.client_time);
      c.eq(out.map((e) => JSON.parse(e.props ?? "{}").url), d.urls, "outbound: one outbound event per click on a link to another host");
      for (const e of out) v.common(e, { ids: d.ids, url: d.url, pv: d.ids.pageView });
      c.eq(v.ofType("download").length, 0, "outbound: no downloads without data-downloads");
    },
  },

  {
    name: "download",
    site: "t-download",
    pages: (s) => {
      const link = (id, href, extra = "") => `<a id="${id}" href="${href}" ${extra} onclick="event.preventDefault()">${id}</a> `;
      return {
        "/dl/page": html({ site: s.site, src: s.src, attrs: "data-downloads", title: "Downloads",
          body: link("pdf", "/files/report.pdf") + link("csv", "/files/Data.CSV?v=2") + link("attr", "/files/blob", "download") +
            link("html", "/files/readme.html") + link("zip", "https://example.org/pkg.zip") + link("ext", "https://example.org/page") }),
        "/dl/custom": html({ site: s.site, src: s.src, attrs: `data-downloads="epub, mobi" data-outbound`, title: "Custom downloads",
          body: link("epub", "/files/book.epub") + link("pdf", "/files/report.pdf") + link("ext", "https://example.org/page") }),
      };
    },
    async run(t) {
      const { page } = t;
      await page.goto(`${t.origin}/dl/page`);
      const a = await ids(page);
      for (const id of ["pdf", "csv", "attr", "html", "zip", "ext"]) await page.click(`#${id}`);
      await t.sent.answered((e) => e.p?.url === "https://example.org/pkg.zip", "the zip download");
      await page.goto(`${t.origin}/dl/custom`);
      const b = await ids(page);
      for (const id of ["epub", "pdf", "ext"]) await page.click(`#${id}`);
      await t.sent.answered((e) => e.t === "outbound", "the outbound click on the custom page");
      return {
        a: { ids: a, url: `${t.origin}/dl/page`, downloads: ["/files/report.pdf", "/files/Data.CSV?v=2", "/files/blob"].map((p) => t.origin + p).concat("https://example.org/pkg.zip") },
        b: { ids: b, url: `${t.origin}/dl/custom`, downloads: [`${t.origin}/files/book.epub`], outbound: ["https://example.org/page"] },
      };
    },
    verify(v) {
      const { c, d } = v;
      for (const [name, page] of [["default list", d.a], ["custom list", d.b]]) {
        const of = (type) => v.ofType(type).filter((e) => e.page_view_id === page.ids.pageView).sort((x, y) => x.client_time - y.client_time);
        c.eq(of("download").map((e) => JSON.parse(e.props ?? "{}").url), page.downloads, `download: ${name}: download events`);
        c.eq(of("outbound").map((e) => JSON.parse(e.props ?? "{}").url), page.outbound ?? [], `download: ${name}: outbound events`);
        for (const e of of("download")) v.common(e, { ids: page.ids, url: page.url });
      }
    },
  },

  {
    name: "consent",
    site: "t-consent",
    pages: (s) => ({ "/consent/page": html({ site: s.site, src: s.src, title: "Consent", body: `<div style="height:3000px"></div>` }) }),
    async run(t) {
      const { page, check } = t;
      await page.goto(`${t.origin}/consent/page`);
      const before = await ids(page);
      const kept = await page.evaluate(() => oriel.track("before_withdraw"));
      await t.sent.answered((e) => e.id === kept, "the event before withdrawal");
      const st1 = await storage(page);
      check.ok(st1.local.oriel_vid && st1.local.oriel_sid, "consent: ids stored before withdrawal");
      const withdrawnAt = Date.now();
      const requestsBefore = t.sent.sent.length;
      const dropped = await page.evaluate(() => {
        const pending = oriel.track("pending_at_withdrawal"); // queued, not yet sent: dropped
        oriel.consent(false);
        oriel.track("after_withdraw");
        return { pending, ids: oriel.ids() };
      });
      check.eq(dropped.ids.visitor, null, "consent: no visitor id after withdrawal");
      check.eq(dropped.ids.session, null, "consent: no session id after withdrawal");
      const st2 = await storage(page);
      check.eq(Object.keys(st2.local).filter((k) => k.startsWith("oriel_")), [], "consent: oriel_vid, oriel_sid and oriel_q deleted");
      await page.evaluate(() => scrollTo(0, 1000));
      await sleep(200);
      await setHidden(page, true);
      await setHidden(page, false);
      await sleep(1300);
      check.eq(t.sent.sent.length, requestsBefore, "consent: nothing sent after withdrawal");
      const st3 = await storage(page);
      check.eq(Object.keys(st3.local).filter((k) => k.startsWith("oriel_")), [], "consent: nothing stored after withdrawal");
      const regrantAt = Date.now();
      const after = await page.evaluate(() => { oriel.consent(true); return { id: oriel.track("after_regrant"), ids: oriel.ids() }; });
      check.ok(after.ids.visitor && after.ids.visitor !== before.visitor, "consent: a new visitor id after consent is given again");
      await t.sent.answered((e) => e.id === after.id, "the event after consent was given again");
      return { before, after, withdrawnAt, regrantAt, pending: dropped.pending, url: `${t.origin}/consent/page` };
    },
    verify(v) {
      const { c, d } = v;
      c.eq(v.ofType("before_withdraw").length, 1, "consent: event before withdrawal stored");
      c.eq(v.ofType("pending_at_withdrawal").length, 0, "consent: event queued at withdrawal not stored");
      c.eq(v.ofType("after_withdraw").length, 0, "consent: event after withdrawal not stored");
      const during = v.events.filter((e) => e.client_time >= d.withdrawnAt && e.client_time < d.regrantAt);
      c.eq(during.map((e) => e.event_type), [], "consent: no event from the withdrawn period");
      const after = v.ofType("after_regrant")[0];
      c.ok(after, "consent: event after consent given again stored");
      if (after) {
        v.common(after, { ids: d.after.ids, url: d.url });
        c.eq(after.is_new_party, true, "consent: new visitor after withdrawal and consent again");
        c.ok(after.party_id !== d.before.visitor, "consent: withdrawal forgot the old visitor id");
      }
      for (const e of v.events.filter((e) => e.client_time < d.withdrawnAt)) c.eq(e.party_id, d.before.visitor, `consent: ${e.event_type} before withdrawal has the first visitor id`);
    },
  },

  {
    name: "endpoint",
    site: "t-endpoint",
    pages: (s) => ({ "/endpoint/page": html({ site: s.site, src: s.src, title: "Endpoint", attrs: `data-endpoint="${otherName(s.collector)}/e"` }) }),
    async run(t) {
      const { page, check } = t;
      await page.goto(`${t.origin}/endpoint/page`);
      const id = await ids(page);
      await t.sent.answered((e) => e.t === "pageView", "the page view");
      check.eq(t.sent.sent.map((s) => s.req.url()), [`${otherName(t.collector)}/e`], "endpoint: batches go to data-endpoint");
      return { ids: id, url: `${t.origin}/endpoint/page` };
    },
    verify(v) {
      const pv = v.ofType("pageView");
      v.c.eq(pv.length, 1, "endpoint: page view stored");
      if (pv[0]) v.common(pv[0], { ids: v.d.ids, url: v.d.url, title: "Endpoint" });
    },
  },

  {
    name: "require-consent",
    site: "t-require",
    pages: (s) => ({ "/require/page": html({ site: s.site, src: s.src, title: "Require consent" }) }),
    async setup(t) { await bake(t.ctx, t.collector, { requireConsent: true }, t.check); },
    async run(t) {
      const { page, check } = t;
      await page.goto(`${t.origin}/require/page`);
      const pre = await page.evaluate(() => ({ id: oriel.track("pre_consent", { waited: true }), ids: oriel.ids() }));
      check.eq(pre.ids.visitor, null, "require-consent: no visitor id before consent");
      await sleep(1400);
      check.eq(t.sent.sent.length, 0, "require-consent: nothing sent before consent");
      check.eq((await storage(page)).local, {}, "require-consent: nothing stored before consent");
      const post = await page.evaluate(() => { oriel.consent(true); return oriel.ids(); });
      check.ok(post.visitor, "require-consent: a visitor id once consent is given");
      await t.sent.answered((e) => e.id === pre.id, "the events queued before consent");
      return { ids: post, pre: pre.id, url: `${t.origin}/require/page` };
    },
    verify(v) {
      const { c, d } = v;
      const pv = v.ofType("pageView");
      c.eq(pv.length, 1, "require-consent: the page view before consent is sent once consent is given");
      if (pv[0]) {
        v.common(pv[0], { ids: d.ids, url: d.url, title: "Require consent" });
        c.eq(pv[0].is_new_party, true, "require-consent: is_new_party");
      }
      const pre = v.ofType("pre_consent");
      c.eq(pre.map((e) => e.event_id), [d.pre], "require-consent: event tracked before consent");
      if (pre[0]) v.props(pre[0], { waited: true }, "require-consent: props");
    },
  },

  {
    name: "dnt",
    site: "t-dnt",
    pages: (s) => ({ "/dnt/page": html({ site: s.site, src: s.src, title: "DNT" }) }),
    async run(t) {
      const { check, browser } = t;
      const signals = {
        gpc: () => Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { configurable: true, get: () => true }),
        dnt: () => Object.defineProperty(Navigator.prototype, "doNotTrack", { configurable: true, get: () => "1" }),
      };
      for (const [name, init] of Object.entries(signals)) {
        const ctx = await browser.newContext({ userAgent: t.ua });
        const sent = watch(ctx, t.collector);
        await ctx.addInitScript(init);
        const page = await ctx.newPage();
        page.on("pageerror", (e) => check.ok(false, `dnt: page error: ${e}`));
        await page.goto(`${t.origin}/dnt/page`);
        await page.evaluate(() => { oriel.track("ignored"); oriel.consent(true); oriel.track("ignored_too"); });
        await sleep(1400);
        check.eq(sent.sent.length, 0, `dnt: nothing sent with ${name}`);
        check.eq((await storage(page)).local, {}, `dnt: nothing stored with ${name}`);
        await ctx.close();
      }
      return {};
    },
    verify(v) {
      v.c.eq(v.events.length, 0, "dnt: no events stored");
    },
  },

  {
    name: "automation",
    site: "t-automation",
    pages: (s) => ({ "/auto/page": html({ site: s.site, src: s.src, title: "Automated" }) }),
    async run(t) {
      const { check, browser } = t;
      // A browser driven by automation, with a normal user agent: only navigator.webdriver says so.
      // (Every other scenario's browser has it false, and common() checks their events are not bots.)
      const ctx = await browser.newContext({ userAgent: t.ua });
      const sent = watch(ctx, t.collector);
      await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, "webdriver", { configurable: true, get: () => true }));
      const page = await ctx.newPage();
      page.on("pageerror", (e) => check.ok(false, `automation: page error: ${e}`));
      await page.goto(`${t.origin}/auto/page`);
      const pv = (await ids(page)).pageView;
      await sent.answered((e) => e.t === "pageView" && e.pv === pv, "the automated page view");
      const batch = sent.sent.find((x) => x.batch?.ev?.some((e) => e.pv === pv))?.batch ?? {};
      check.eq(batch.wd, true, "automation: the batch carries navigator.webdriver");
      await ctx.close();
      return { pv };
    },
    verify(v) {
      const { c, d } = v;
      const pv = v.byPv(d.pv, "pageView");
      c.ok(pv, "automation: the page view is stored (flagged, not dropped)");
      if (pv) {
        c.eq(pv.is_bot, true, "automation: is_bot from navigator.webdriver");
        c.ok(/chrom/i.test(pv.browser ?? ""), `automation: the user agent alone looks like Chrome: ${pv.browser}`);
      }
    },
  },

  {
    name: "cookieless",
    site: "t-cookieless",
    pages: (s) => ({
      "/cl/a": html({ site: s.site, src: s.src, attrs: "data-cookieless", title: "Cookieless A" }),
      "/cl/b": html({ site: s.site, src: s.src, attrs: "data-cookieless", title: "Cookieless B" }),
    }),
    async run(t) {
      const { page, check } = t;
      const empty = async (when) => {
        const st = await storage(page);
        check.eq(st, { local: {}, session: 0, cookie: "" }, `cookieless: storage empty ${when}`);
      };
      await page.goto(`${t.origin}/cl/a`);
      const a = await ids(page);
      check.eq([a.visitor, a.session], [null, null], "cookieless: ids() has no visitor or session");
      const custom = await page.evaluate(() => oriel.track("cl_event", { x: 1 }));
      await t.sent.answered((e) => e.id === custom, "the cookieless custom event");
      const batch = t.sent.sent.find((s) => s.batch?.ev?.some((e) => e.id === custom))?.batch ?? {};
      check.ok(!("vid" in batch) && !("sid" in batch), "cookieless: batches carry no vid or sid");
      await empty("after sending");
      await page.evaluate(() => { oriel.identify("u-cl"); oriel.consent(false); oriel.consent(true); });
      await empty("after identify and consent calls");
      await page.goto(`${t.origin}/cl/b`);
      const b = await ids(page);
      await t.sent.answered((e) => e.t === "pageView" && e.pv === b.pageView, "the second cookieless page view");
      await empty("on the second page");
      return { a, b, custom, urls: [`${t.origin}/cl/a`, `${t.origin}/cl/b`] };
    },
    verify(v) {
      const { c, d } = v;
      const pa = v.byPv(d.a.pageView, "pageView");
      const pb = v.byPv(d.b.pageView, "pageView");
      const custom = v.events.find((e) => e.event_id === d.custom);
      c.ok(pa && pb && custom, "cookieless: both page views and the custom event stored");
      if (!(pa && pb && custom)) return;
      v.common(pa, { ids: d.a, url: d.urls[0], title: "Cookieless A", cookieless: true });
      v.common(pb, { ids: d.b, url: d.urls[1], title: "Cookieless B", cookieless: true });
      v.common(custom, { ids: d.a, url: d.urls[0], cookieless: true });
      c.ok(typeof pa.party_id === "string" && pa.party_id.length > 0, `cookieless: the collector derived a party_id: ${pa.party_id}`);
      c.eq(pb.party_id, pa.party_id, "cookieless: same party_id across two page loads of one browser");
      c.eq(custom.party_id, pa.party_id, "cookieless: same party_id for the custom event");
      c.ok(pa.session_id, "cookieless: the collector derived a session_id");
      c.eq(pb.session_id, pa.session_id, "cookieless: same session_id across two page loads");
    },
  },

  {
    name: "cookieless-baked",
    site: "t-cookieless-baked",
    pages: (s) => ({ "/clb/page": html({ site: s.site, src: s.src, title: "Baked cookieless" }) }),
    async setup(t) { await bake(t.ctx, t.collector, { cookieless: true }, t.check); },
    async run(t) {
      const { page, check } = t;
      await page.goto(`${t.origin}/clb/page`);
      const id = await ids(page);
      check.eq([id.visitor, id.session], [null, null], "cookieless-baked: ids() has no visitor or session");
      await t.sent.answered((e) => e.t === "pageView", "the page view");
      check.eq(await storage(page), { local: {}, session: 0, cookie: "" }, "cookieless-baked: storage empty");
      return { ids: id, url: `${t.origin}/clb/page` };
    },
    verify(v) {
      const pv = v.ofType("pageView");
      v.c.eq(pv.length, 1, "cookieless-baked: page view stored");
      if (pv[0]) {
        v.common(pv[0], { ids: v.d.ids, url: v.d.url, title: "Baked cookieless", cookieless: true });
        v.c.ok(pv[0].party_id, "cookieless-baked: the collector derived a party_id");
      }
    },
  },

  {
    name: "retry",
    site: "t-retry",
    pages: (s) => Object.fromEntries(["one", "two", "three"].map((p) => [`/retry/${p}`, html({ site: s.site, src: s.src, title: `Retry ${p}` })])),
    async run(t) {
      const { page, ctx, check } = t;
      // The first page's batch gets a 503 (collector overloaded), the second page's batches a
      // network error; then the collector comes back. The real collector is reached only then.
      let mode = "503";
      let failures = 0;
      await ctx.route(`${t.collector}/e`, async (route) => {
        if (mode === "pass") return route.continue();
        failures++;
        if (mode === "abort") return route.abort("connectionrefused");
        return route.fulfill({ status: 503, headers: { "access-control-allow-origin": "*", "retry-after": "1" }, body: "" });
      });
      const queued = async () => { try { return JSON.parse((await storage(page)).local.oriel_q ?? "[]").flatMap((b) => b.ev.map((e) => e.id)); } catch { return []; } };
      const views = [];
      const visit = async (p) => {
        await page.goto(`${t.origin}/retry/${p}`);
        const id = await ids(page);
        views.push({ ids: id, url: `${t.origin}/retry/${p}`, title: `Retry ${p}` });
        return id;
      };
      await visit("one");
      await until(() => failures >= 1, "the 503 answer");
      const pv1 = t.sent.events().find((e) => e.t === "pageView").id;
      await until(async () => (await queued()).includes(pv1), "the page view kept in oriel_q after a 503", 3000);
      mode = "abort";
      await visit("two");
      await until(async () => {
        const q = await queued();
        const pv2 = t.sent.events().find((e) => e.t === "pageView" && e.pv === views[1].ids.pageView)?.id;
        return pv2 && q.includes(pv1) && q.includes(pv2);
      }, "both page views kept in oriel_q after a network error", 4000);
      mode = "pass";
      const id3 = await visit("three");
      for (const v of views) await t.sent.answered((e) => e.t === "pageView" && e.pv === v.ids.pageView, `the page view of ${v.url} delivered`);
      await until(async () => !(await storage(page)).local.oriel_q, "oriel_q emptied once delivered", 2000);
      check.ok(views.every((v) => v.ids.visitor === id3.visitor), "retry: one visitor across the three pages");
      return { views };
    },
    verify(v) {
      const { c, d } = v;
      c.eq(v.ofType("pageView").length, 3, "retry: every page view stored once, although two were retried");
      d.views.forEach((view) => {
        const e = v.byPv(view.ids.pageView, "pageView");
        if (!e) return;
        v.common(e, { ids: view.ids, url: view.url, title: view.title });
        c.ok(e.is_duplicate !== true, `retry: ${view.url} page view not flagged duplicate`);
      });
    },
  },

  {
    name: "drop-4xx",
    site: "t-drop",
    pages: (s) => ({
      "/drop/one": html({ site: s.site, src: s.src, title: "Drop one" }),
      "/drop/two": html({ site: s.site, src: s.src, title: "Drop two" }),
    }),
    async run(t) {
      const { page, ctx, check } = t;
      let refuse = true;
      await ctx.route(`${t.collector}/e`, (route) => refuse
        ? route.fulfill({ status: 400, headers: { "access-control-allow-origin": "*", "content-type": "application/json" }, body: '{"error":"test"}' })
        : route.continue());
      await page.goto(`${t.origin}/drop/one`);
      const one = await ids(page);
      await t.sent.answered((e) => e.t === "pageView", "the refused batch", 400);
      await sleep(200);
      check.eq((await storage(page)).local.oriel_q, undefined, "drop-4xx: a 4xx batch is not kept");
      refuse = false;
      await page.goto(`${t.origin}/drop/two`);
      const two = await ids(page);
      await t.sent.answered((e) => e.t === "pageView" && e.pv === two.pageView, "the second page view");
      await sleep(300);
      check.ok(!t.sent.sent.some((s) => s.status === 204 && s.batch?.ev?.some((e) => e.pv === one.pageView && e.t === "pageView")), "drop-4xx: the refused page view was not resent");
      return { one, two, url: `${t.origin}/drop/two` };
    },
    verify(v) {
      const { c, d } = v;
      c.eq(v.events.filter((e) => e.page_view_id === d.one.pageView && e.event_type === "pageView").length, 0, "drop-4xx: refused page view not stored");
      const e = v.byPv(d.two.pageView, "pageView");
      if (e) v.common(e, { ids: d.two, url: d.url, title: "Drop two" });
    },
  },

  {
    name: "duplicate",
    site: "t-dup",
    allowDuplicates: true,
    pages: (s) => ({
      "/dup/one": html({ site: s.site, src: s.src, title: "Dup one" }),
      "/dup/two": html({ site: s.site, src: s.src, title: "Dup two" }),
    }),
    async run(t) {
      const { page, ctx } = t;
      // The collector stores the first batch but its answer is lost (seen as a 503): the tag
      // resends the same events with the same ids on the next page.
      let lose = true;
      await ctx.route(`${t.collector}/e`, async (route) => {
        if (!lose) return route.continue();
        const res = await route.fetch();
        await route.fulfill({ status: 503, headers: { "access-control-allow-origin": "*" }, body: `lost ${res.status()}` });
      });
      await page.goto(`${t.origin}/dup/one`);
      const one = await ids(page);
      await t.sent.answered((e) => e.t === "pageView", "the first, lost answer", 503);
      await sleep(200);
      lose = false;
      await page.goto(`${t.origin}/dup/two`);
      const two = await ids(page);
      await t.sent.answered((e) => e.t === "pageView" && e.pv === one.pageView, "the resent page view");
      await t.sent.answered((e) => e.t === "pageView" && e.pv === two.pageView, "the second page view");
      return { one, two };
    },
    verify(v) {
      const { c, d } = v;
      const copies = v.events.filter((e) => e.event_type === "pageView" && e.page_view_id === d.one.pageView).sort((a, b) => a.__time - b.__time);
      c.eq(copies.length, 2, "duplicate: the resent page view is stored twice");
      if (copies.length === 2) {
        c.eq(copies[1].event_id, copies[0].event_id, "duplicate: a resent event keeps its id");
        c.ok(copies[0].is_duplicate !== true, "duplicate: the first copy is not flagged");
        c.eq(copies[1].is_duplicate, true, "duplicate: the second copy is flagged is_duplicate");
      }
      c.eq(v.events.filter((e) => e.event_type === "pageView" && e.page_view_id === d.two.pageView).length, 1, "duplicate: the second page view stored once");
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Run phase.

async function run() {
  const collector = (opts.collector ?? "").replace(/\/$/, "");
  if (!collector || !opts.report) throw new Error("usage: tag.mjs run --collector URL --report FILE");
  const only = opts.only ? new Set(opts.only.split(",")) : null;
  const scenarios = SCENARIOS.filter((s) => !only || only.has(s.name));
  const check = new Checks();
  const started = Date.now();

  const pages = {};
  const site = await serveSite(pages);
  for (const s of scenarios) Object.assign(pages, s.pages({ site: s.site, collector, src: `${collector}/oriel.js` }));

  // The tests are about a normal visitor's browser, not a headless bot.
  const { browser, ua } = await launchAsChrome();
  // Playwright turns the back/forward cache off by default; the scenarios about it need it on.
  const bfBrowser = scenarios.some((s) => s.bfcache)
    ? (await launchAsChrome({ ignoreDefaultArgs: ["--disable-back-forward-cache"] })).browser : null;

  const report = { collector, origin: site.url, ua, started, scenarios: {} };
  const runOne = async (s) => {
    const b = s.bfcache ? bfBrowser : browser;
    const ctx = await b.newContext({ userAgent: ua });
    const t = { browser: b, ctx, site: s.site, origin: site.url, collector, ua, check, sent: watch(ctx, collector) };
    const start = Date.now();
    try {
      if (s.setup) await s.setup(t);
      t.page = await ctx.newPage();
      t.page.on("pageerror", (e) => check.ok(false, `${s.name}: page error: ${e}`));
      const data = await s.run(t);
      for (const b of t.sent.sent) check.eq(b.ctype, "text/plain;charset=UTF-8", `${s.name}: batches are text/plain`);
      report.scenarios[s.name] = { site: s.site, start, end: Date.now(), allowDuplicates: !!s.allowDuplicates, data };
      console.log(`ran ${s.name} in ${Date.now() - start} ms`);
    } catch (e) {
      check.ok(false, `${s.name}: ${e.message}`);
      report.scenarios[s.name] = { site: s.site, start, end: Date.now(), failed: e.message };
    } finally {
      await ctx.close();
    }
  };
  // A few at a time: the scenarios mostly wait for the tag's one-second batching.
  const pending = [...scenarios];
  await Promise.all(Array.from({ length: 5 }, async () => { while (pending.length) await runOne(pending.shift()); }));

  await browser.close();
  await bfBrowser?.close();
  await site.close();
  report.finished = Date.now();
  writeFileSync(opts.report, JSON.stringify(report, null, 2));
  console.log(`run: ${scenarios.length} scenarios in ${report.finished - started} ms, report in ${opts.report}`);
  check.finish("tag.mjs run");
}

// ---------------------------------------------------------------------------------------------
// Verify phase.

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}

const blank = (x) => x === undefined || x === null || x === "";

function verify() {
  if (!opts.events || !opts.report) throw new Error("usage: tag.mjs verify --events FILE --report FILE");
  const report = JSON.parse(readFileSync(opts.report, "utf8"));
  // The collector may hold events of earlier runs under the same site ids: keep this run's, by
  // the test site's origin (a fresh port each run) and the run's time span.
  const all = readEvents(opts.events).filter((e) => String(e.url).startsWith(`${report.origin}/`) &&
    e.client_time >= report.started - 5000 && e.client_time <= report.finished + 5000);
  const c = new Checks();

  for (const [name, sc] of Object.entries(report.scenarios)) {
    const scenario = SCENARIOS.find((s) => s.name === name);
    if (sc.failed) { c.ok(false, `${name}: the run phase failed: ${sc.failed}`); continue; }
    const events = all.filter((e) => e.site === sc.site);
    const v = {
      c, d: sc.data, events, origin: report.origin,
      ofType: (type) => events.filter((e) => e.event_type === type),
      byPv(pv, type) {
        const l = events.filter((e) => e.page_view_id === pv && e.event_type === type);
        c.eq(l.length, 1, `${name}: ${type} events of page view ${pv}`);
        return l[0];
      },
      props(e, expected, what) {
        let parsed;
        try { parsed = blank(e.props) ? undefined : JSON.parse(e.props); } catch { parsed = `unparsable: ${e.props}`; }
        c.ok(expected === undefined ? parsed === undefined : deepEqual(parsed, expected),
          `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(parsed)}`);
      },
      /** Checks of every stored tag event: who, where, when, and that the collector enriched it. */
      common(e, x) {
        const what = `${name}: ${e.event_type} ${e.event_id}`;
        c.eq(e.source, "tag", `${what}: source`);
        c.eq(e.site, sc.site, `${what}: site`);
        c.ok(/^[A-Za-z0-9_-]{22}$/.test(e.event_id ?? ""), `${what}: event_id is a tag id`);
        if (x.cookieless) c.ok(!blank(e.party_id), `${what}: party_id derived by the collector`);
        else {
          c.eq(e.party_id, x.ids.visitor, `${what}: party_id is the visitor id from ids()`);
          c.eq(e.session_id, x.ids.session, `${what}: session_id is the session id from ids()`);
        }
        c.eq(e.page_view_id, x.pv ?? x.ids.pageView, `${what}: page_view_id`);
        if ("user" in x) c.ok(x.user === undefined ? blank(e.user_id) : e.user_id === x.user, `${what}: user_id: expected ${x.user}, got ${e.user_id}`);
        if (x.url) {
          const u = new URL(x.url);
          c.eq(e.url, x.url, `${what}: url`);
          c.ok(e.host === u.host || e.host === u.hostname, `${what}: host: expected ${u.host}, got ${e.host}`);
          c.eq(e.path, u.pathname, `${what}: path`);
          c.ok(u.search ? e.query === u.search.slice(1) : blank(e.query), `${what}: query: expected ${u.search.slice(1)}, got ${e.query}`);
        }
        if (e.event_type === "pageView") {
          c.ok(x.referrer === undefined ? blank(e.referrer) : e.referrer === x.referrer, `${what}: referrer: expected ${x.referrer}, got ${e.referrer}`);
          if (x.title !== undefined) c.eq(e.title, x.title, `${what}: title`);
        }
        if (e.event_type === "engagement") {
          c.ok(Number.isInteger(e.engaged_ms) && e.engaged_ms > 0, `${what}: engaged_ms > 0: ${e.engaged_ms}`);
          c.ok(Number.isInteger(e.scroll_depth) && e.scroll_depth >= 1 && e.scroll_depth <= 100, `${what}: scroll_depth in 1..100: ${e.scroll_depth}`);
        }
        c.ok(e.client_time >= sc.start - 1000 && e.client_time <= sc.end + 1000, `${what}: client_time ${e.client_time} within the scenario`);
        c.ok(typeof e.__time === "number", `${what}: __time`);
        c.ok(e.is_corrupt !== true, `${what}: not corrupt`);
        c.ok(e.is_bot !== true, `${what}: not a bot`);
        if (!scenario?.allowDuplicates) c.ok(e.is_duplicate !== true, `${what}: not a duplicate`);
      },
    };
    if (!scenario) { c.ok(false, `${name}: unknown scenario in the report`); continue; }
    scenario.verify(v);
    // Stored twice only where the scenario meant to.
    if (!scenario.allowDuplicates) {
      const seen = new Map();
      for (const e of events) seen.set(e.event_id, (seen.get(e.event_id) ?? 0) + 1);
      const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
      c.eq(twice, [], `${name}: event ids stored more than once`);
    }
  }
  c.finish("tag.mjs verify");
}

try {
  if (phase === "run") await run();
  else if (phase === "verify") verify();
  else {
    console.error("usage: tag.mjs run --collector URL --report FILE [--only a,b] | tag.mjs verify --events FILE --report FILE");
    process.exit(2);
  }
} catch (e) {
  console.error(e.stack || String(e));
  process.exit(1);
}
