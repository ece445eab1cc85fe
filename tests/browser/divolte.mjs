// Browser test of Oriel's divolte.js against a collector that speaks the Divolte protocol.
//
//   node tests/browser/divolte.mjs selftest [--report r.json]
//       No browser, no collector: runs tag/divolte.js and the built divolte.min.js in a Node vm
//       with a fake DOM and checks them against the reference test vectors (checksum, Mincode).
//   node tests/browser/divolte.mjs run --collector http://127.0.0.1:PORT --report r.json
//       Runs the self-test, then real headless Chromium: test pages on their own loopback origin load
//       COLLECTOR/divolte.js; records the page API, the ids signal() returned, every request the
//       pages sent to the collector, and the collector's answers.
//   node tests/browser/divolte.mjs verify --events events.jsonl --report r.json
//       Checks the events the collector stored against the report written by `run`.
//
// Each phase exits 1 if any check failed; `run` writes its report either way.
import vm from "node:vm";
import { webcrypto } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch, serveSite, options, Checks, readEvents } from "./lib.mjs";
import {
  parseQuery, checkQueryChecksum, expectedChecksum, mincodeDecode, jsonEqual,
  PARAM_ORDER, PIXEL_ETAG, PIXEL_LENGTH,
} from "./divolte-wire.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SOURCE_PATH = join(root, "tag/divolte.js");
const MIN_PATH = join(root, "crates/collector/assets/divolte.min.js");
const PLACEHOLDER = '"__DIVOLTE_CONFIG__"';

// Formats from reference §1.5.
const TIMED_ID = /^0:[0-9a-z]+:[A-Za-z0-9~_]{32}$/;
const PAGE_VIEW_ID = /^0:[A-Za-z0-9~_]{32}$/;

// The browser-verified Mincode example of reference §1.8 (`m` is a fixed Date).
const BIG_EXAMPLE_U =
  "((a!)sb!c!sc!esc ~~~! ünï!ae!s1!s2!.df!16!jg!53.2!dh!-11!ji!-7.83e-9!tj!fk!nl!sm!2015-06-13T15:49:33.002Z!)";
const BIG_EXAMPLE_TIME = Date.UTC(2015, 5, 13, 15, 49, 33, 2);
const bigExample = (DateClass = Date) => ({
  a: {}, b: "c", c: "esc ~! ünï", e: ["1", "2"], f: 42, g: 53.2, h: -37, i: -78.3e-10,
  j: true, k: false, l: null, m: new DateClass(BIG_EXAMPLE_TIME),
});

// ================================================================================================
// Self-test: the tag in a Node vm with a fake DOM.
// ================================================================================================

/** Query of a URL the tag produced, split into raw (still encoded) [key, value] pairs. */
function rawPairs(url) {
  const q = url.indexOf("?");
  return (q < 0 ? "" : url.slice(q + 1)).split("&").filter(Boolean).map((part) => {
    const eq = part.indexOf("=");
    return eq < 0 ? [part, ""] : [part.slice(0, eq), part.slice(eq + 1)];
  });
}
const rawQuery = (url) => url.slice(url.indexOf("?") + 1);
const decodedParams = (url) => Object.fromEntries(parseQuery(rawQuery(url)));

/**
 * Runs the tag source in a fresh vm context. `env` sets the fake page: scriptSrc, cookies (object),
 * now (fixed Date.now), href, referrer, screen {availWidth, availHeight}, dpr, inner {w, h},
 * hidden, preexisting (window.divolte = {}), manualLoad (images never load by themselves; by
 * default they load synchronously).
 */
function runTag(source, env = {}) {
  const images = [];
  const cookieWrites = [];
  const jar = new Map(Object.entries(env.cookies || {}));
  const listeners = new Map();
  const on = (key, fn) => { if (!listeners.has(key)) listeners.set(key, []); listeners.get(key).push(fn); };
  const off = (key, fn) => { const l = listeners.get(key) || []; const i = l.indexOf(fn); if (i >= 0) l.splice(i, 1); };
  class FakeImage {
    constructor(width, height) { this.width = width; this.height = height; this.onload = null; this.onerror = null; }
    set src(value) {
      this._src = value;
      images.push(this);
      // Loads at once, so every signal's URL can be read right after signal() returns (the
      // browser run covers asynchronous loads); manualLoad leaves it to the test.
      if (!env.manualLoad && this.onload) this.onload();
    }
    get src() { return this._src; }
  }
  const document = {
    currentScript: env.scriptSrc === null ? null : { src: env.scriptSrc || "http://collector.test/divolte.js" },
    get cookie() { return [...jar].map(([k, v]) => `${k}=${v}`).join("; "); },
    set cookie(text) {
      cookieWrites.push(text);
      const first = text.split(";")[0];
      const eq = first.indexOf("=");
      jar.set(first.slice(0, eq), first.slice(eq + 1));
    },
    referrer: env.referrer || "",
    hidden: !!env.hidden,
    documentElement: { clientWidth: 0, clientHeight: 0 },
    body: {},
    addEventListener: (type, fn) => on("document:" + type, fn),
    removeEventListener: (type, fn) => off("document:" + type, fn),
    getElementsByTagName: () => env.scripts || [],
  };
  const sandbox = {
    document,
    Image: FakeImage,
    setTimeout, clearTimeout, console,
    location: { href: env.href || "http://site.test/page.html" },
    screen: env.screen || { availWidth: 1280, availHeight: 720 },
    devicePixelRatio: env.dpr === undefined ? 1 : env.dpr,
    innerWidth: env.inner ? env.inner.w : 1280,
    innerHeight: env.inner ? env.inner.h : 720,
    crypto: webcrypto,
    addEventListener: (type, fn) => on("window:" + type, fn),
    removeEventListener: (type, fn) => off("window:" + type, fn),
  };
  sandbox.window = sandbox;
  if (env.preexisting) sandbox.divolte = { preexisting: true };
  vm.createContext(sandbox);
  if (env.now !== undefined) {
    vm.runInContext(`(function () {
      var Real = Date, fixed = ${env.now};
      function FixedDate() {
        if (!(this instanceof FixedDate)) return Real();
        var args = [].slice.call(arguments);
        return args.length ? new (Function.prototype.bind.apply(Real, [null].concat(args)))() : new Real(fixed);
      }
      FixedDate.prototype = Real.prototype;
      FixedDate.now = function () { return fixed; };
      FixedDate.UTC = Real.UTC;
      FixedDate.parse = Real.parse;
      Date = FixedDate;
    })();`, sandbox);
  }
  let error = null;
  try {
    vm.runInContext(source, sandbox, { filename: "divolte.js" });
  } catch (e) {
    error = e;
  }
  const fire = (key, event = {}) => [...(listeners.get(key) || [])].forEach((fn) => fn(event));
  return { sandbox, api: sandbox.divolte, images, urls: () => images.map((i) => i.src), cookieWrites, jar, error, fire, listeners };
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

async function selftest(checks, { sourceOnly = false } = {}) {
  const results = {};

  // --- The server-side rules in divolte-wire.mjs against the reference vectors (§1.8, §1.9).
  const V1 = "p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&s=0%3Ai1t84hgy%3A95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8&v=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&e=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&c=i1t8q2b6&n=f&f=f&l=http%3A%2F%2Flocalhost%3A8290%2F&i=1ak&j=sj&k=2&w=uq&h=qd&t=pageView";
  const V2base = V1.replace("5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG", "party").replace("95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8", "session")
    .replace("v=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&", "v=0%3ApageView&").replace("e=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&", "e=0%3AeventId&");
  const vectors = [
    [V1, "si9804"],
    [V2base.replace("t=pageView", "t=%E1%BB%A5%C3%B1%E2%9A%95%C2%A9%C2%BA%E1%B8%8C%E2%84%A8"), "-ql2p2c"],
    [V2base.replace("t=pageView", "t=sentinelEvent"), "-y99lem"],
  ];
  results.checksumVectors = vectors.map(([q, x]) => {
    const got = expectedChecksum(parseQuery(q));
    checks.eq(got, x, `node checksum of reference vector (x=${x})`);
    return { expected: x, got };
  });
  const mincodeExamples = [
    [{ foo: "bar", baz: "daz" }, "(sfoo!bar!sbaz!daz!)"],
    [[], "a."],
    [{}, "()"],
    [42, "d16!"],
    [{ name: "John Doe", age: 42, children: ["Mary", "Bill"] }, "(sname!John Doe!dage!16!achildren!sMary!sBill!.)"],
    ["Hello~World!", "sHello~~World~!!"],
    [bigExample(), BIG_EXAMPLE_U],
  ];
  for (const [value, text] of mincodeExamples) {
    let decoded;
    try { decoded = mincodeDecode(text); } catch (e) { decoded = String(e); }
    checks.ok(jsonEqual(decoded, JSON.parse(JSON.stringify(value))), `node mincode decoder on ${text}: got ${JSON.stringify(decoded)}`);
  }

  // --- The tag itself: the raw source, and the minified asset as the collector would serve it.
  const source = readFileSync(SOURCE_PATH, "utf8");
  const variants = [["source", source]];
  if (!sourceOnly) {
    const min = readFileSync(MIN_PATH, "utf8");
    checks.eq(min.split(PLACEHOLDER).length - 1, 1, "divolte.min.js contains the config placeholder exactly once");
    checks.ok(/^[\x00-\x7f]*$/.test(min), "divolte.min.js is pure ASCII (safe on pages of any charset)");
    const defaults = JSON.stringify({
      partyCookie: "_dvp", partyTimeoutSeconds: 63072000, sessionCookie: "_dvs", sessionTimeoutSeconds: 1800,
      cookieDomain: "", eventSuffix: "csc-event", scriptName: "divolte.js", autoPageViewEvent: true,
      eventTimeoutSeconds: 0.75, logging: false,
    });
    variants.push(["min", min], ["min+config", min.replace(PLACEHOLDER, () => defaults)]);
    results.minBytes = Buffer.byteLength(min);
  }

  for (const [label, code] of variants) {
    // Reference vector 1, produced by the tag: same cookies, server page view id = the vector's
    // v, fixed clock, location and sizes. Its first event must be byte-identical to the vector.
    const t = runTag(code, {
      scriptSrc: "http://localhost:8290/divolte.js#0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF",
      cookies: { _dvp: "0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG", _dvs: "0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8" },
      now: parseInt("i1t8q2b6", 36),
      href: "http://localhost:8290/",
      screen: { availWidth: parseInt("1ak", 36), availHeight: parseInt("sj", 36) },
      dpr: 2, inner: { w: parseInt("uq", 36), h: parseInt("qd", 36) },
    });
    checks.eq(t.error && String(t.error), null, `${label}: loads without error`);
    checks.eq(t.urls()[0], "http://localhost:8290/csc-event?" + V1 + "&x=si9804", `${label}: reproduces reference checksum vector 1`);
    checks.eq(t.api && t.api.isServerPageView, true, `${label}: isServerPageView with a fragment`);

    // Mincode examples through signal(), each in `u`, each with a valid checksum.
    for (const [value, text] of mincodeExamples) {
      const id = t.api.signal("mincode", value);
      const url = t.urls().at(-1);
      checks.ok(typeof id === "string" && url.includes("&e=" + encodeURIComponent(id) + "&"), `${label}: signal returned the id it sent`);
      checks.eq(decodedParams(url).u, text, `${label}: mincode of ${JSON.stringify(value)}`);
      checks.ok(checkQueryChecksum(rawQuery(url)).valid, `${label}: checksum of mincode event ${text}`);
    }

    // JSON.stringify semantics and awkward values: decode(encode(v)) must equal JSON round trip.
    const tricky = {
      undef: undefined, fn() {}, sym: Symbol("s"),
      viaToJSON: { toJSON(key) { return { key, inner: [1, "2"] }; } },
      arr: [undefined, () => 1, Symbol("x"), NaN, Infinity, -Infinity, 1e21, 2 ** 53, -0, 0.1, -1.5e-300, 123456789012, 35, 36, -36],
      wrappers: [new Number(3), new String("s~!"), new Boolean(false)],
      "name ~! with stuff": "value ~ and ! 😀 ¡ \u0000 \n",
      "": "empty key", empty: "", emptyArr: [], nested: { x: {}, y: [[], [{}]] },
      invalidDate: new Date(NaN),
    };
    const expectedTricky = JSON.parse(JSON.stringify(tricky));
    t.api.signal("tricky", tricky);
    let trickyDecoded;
    try { trickyDecoded = mincodeDecode(decodedParams(t.urls().at(-1)).u); } catch (e) { trickyDecoded = String(e); }
    checks.ok(jsonEqual(trickyDecoded, expectedTricky), `${label}: JSON semantics: ${JSON.stringify(trickyDecoded)} vs ${JSON.stringify(expectedTricky)}`);
    for (const [value, expectU] of [[undefined, undefined], [null, "n"], [() => 1, undefined], [{ toJSON() { return undefined; } }, undefined], ["", "s!"], [0, "d0!"]]) {
      t.api.signal("topLevel", value);
      checks.eq(decodedParams(t.urls().at(-1)).u, expectU, `${label}: top-level params ${String(value)}`);
    }
    // Numbers: exact round trip through d/j, and the d/j choice rule.
    let numberFailures = 0;
    const numbers = [0.5, 1 / 3, 1e-7, 123.456, 2 ** 31, -(2 ** 31), 2 ** 52 + 1, Number.MAX_VALUE, Number.MIN_VALUE, 5e-324, 1e300];
    numbers.push(2 ** 53 + 2, -77905408087058480, 439123971934874300); // toString(36) is inexact here
    for (let i = 0; i < 300; i++) numbers.push(Math.round((Math.random() - 0.5) * 10 ** (i % 16)), (Math.random() - 0.5) * 10 ** ((i % 40) - 20));
    for (const n of numbers) {
      t.api.signal("number", [n]);
      const u = decodedParams(t.urls().at(-1)).u;
      const b36 = n.toString(36);
      const wantD = Number.isSafeInteger(n) && b36.length <= String(n).length && b36.length <= n.toExponential().length;
      let back;
      try { back = mincodeDecode(u)[0]; } catch { back = undefined; }
      if (back !== n || (u[1] === "d") !== wantD) numberFailures++;
    }
    checks.eq(numberFailures, 0, `${label}: numbers round-trip with the d/j rule`);
    // Cycles and lone surrogates must not throw into the page; the event still goes out.
    const cyclic = { name: "loop" };
    cyclic.self = cyclic;
    const cycleId = t.api.signal("cyclic", cyclic);
    let cycleDecoded;
    try { cycleDecoded = mincodeDecode(decodedParams(t.urls().at(-1)).u); } catch (e) { cycleDecoded = String(e); }
    checks.ok(typeof cycleId === "string" && jsonEqual(cycleDecoded, { name: "loop", self: null }), `${label}: cyclic params cut with null: ${JSON.stringify(cycleDecoded)}`);
    t.api.signal("lone\ud800", { s: "a\udc00b\ud83d\ude00" });
    const lone = decodedParams(t.urls().at(-1));
    checks.eq([lone.t, mincodeDecode(lone.u).s], ["lone\ufffd", "a\ufffdb\ud83d\ude00"], `${label}: lone surrogates become U+FFFD`);
    // Falsy types.
    checks.eq([t.api.signal(""), t.api.signal(null), t.api.signal(undefined), t.api.signal(0), t.api.signal(false)],
      [null, null, null, null, null], `${label}: falsy event types return null`);
    // Every URL so far: checksum valid, parameter order, exact encodeURIComponent.
    let bad = 0;
    for (const url of t.urls()) {
      const pairs = rawPairs(url);
      const order = pairs.map(([k]) => PARAM_ORDER.indexOf(k));
      const ordered = order.every((v, i) => v >= 0 && (i === 0 || v > order[i - 1])) && pairs.at(-1)[0] === "x";
      const encoded = pairs.every(([, v]) => encodeURIComponent(decodeURIComponent(v)) === v);
      if (!checkQueryChecksum(rawQuery(url)).valid || !ordered || !encoded) bad++;
    }
    checks.eq(bad, 0, `${label}: all ${t.urls().length} URLs have valid checksums, order and encoding`);
    await tick(5);

    // Fresh visitor: new ids in the right formats, cookies as in §1.6, n/f only on the first event.
    const f = runTag(code, { now: 1700000000000 });
    const api = f.api;
    checks.ok(TIMED_ID.test(api.partyId) && TIMED_ID.test(api.sessionId) && PAGE_VIEW_ID.test(api.pageViewId),
      `${label}: id formats ${api.partyId} ${api.sessionId} ${api.pageViewId}`);
    checks.eq(api.partyId.split(":")[1], (1700000000000).toString(36), `${label}: party id carries the load time`);
    checks.eq([api.isNewPartyId, api.isFirstInSession, api.isServerPageView], [true, true, false], `${label}: flags of a fresh visitor`);
    checks.ok(api.partyId !== api.sessionId, `${label}: party and session ids differ`);
    const expires2y = new Date(1700000000000 + 63072000 * 1000).toUTCString();
    const expires30m = new Date(1700000000000 + 1800 * 1000).toUTCString();
    checks.eq(f.cookieWrites.slice(0, 2), [
      `_dvp=${api.partyId}; path=/; expires=${expires2y}; max-age=63072000`,
      `_dvs=${api.sessionId}; path=/; expires=${expires30m}; max-age=1800`,
    ], `${label}: cookie strings`);
    api.signal("second");
    const [first, second] = f.urls().map(decodedParams);
    checks.eq([first.t, first.e, first.n, first.f, second.e, second.n, second.f],
      ["pageView", api.pageViewId + "0", "t", "t", api.pageViewId + "1", "f", "f"], `${label}: pageView then n/f only on the first event`);
    checks.eq(f.cookieWrites.length, 4, `${label}: cookies rewritten on every signal`);
    checks.ok(f.urls()[0].startsWith("http://collector.test/csc-event?p="), `${label}: events go next to the script (${f.urls()[0].slice(0, 40)})`);
    // Counter is hex: event 10 ends in "a".
    for (let i = 2; i < 11; i++) api.signal("count");
    checks.eq(decodedParams(f.urls().at(-1)).e, api.pageViewId + "a", `${label}: event counter is lower-case hex`);
    // bfcache: a pageshow after a pagehide starts a new page view with a new id and counter.
    const oldPageView = api.pageViewId;
    f.fire("window:pagehide");
    f.fire("window:pageshow", { persisted: true });
    const reshow = decodedParams(f.urls().at(-1));
    checks.ok(api.pageViewId !== oldPageView && PAGE_VIEW_ID.test(api.pageViewId), `${label}: bfcache re-show gets a new page view id`);
    checks.eq([reshow.t, reshow.v, reshow.e, reshow.n], ["pageView", api.pageViewId, api.pageViewId + "0", "f"], `${label}: bfcache re-show sends pageView`);
    await tick(5);

    // Server page view id: kept across a re-show, counter continues.
    const s = runTag(code, { scriptSrc: "https://c.test/x/divolte.js?v=1/2#serverPV123" });
    s.api.signal("afterLoad");
    s.fire("window:pagehide");
    s.fire("window:pageshow", { persisted: true });
    checks.eq(s.urls().map((u) => [decodedParams(u).v, decodedParams(u).e, decodedParams(u).t]),
      [["serverPV123", "serverPV1230", "pageView"], ["serverPV123", "serverPV1231", "afterLoad"], ["serverPV123", "serverPV1232", "pageView"]],
      `${label}: server page view id across a bfcache re-show`);
    checks.ok(s.urls()[0].startsWith("https://c.test/x/csc-event?"), `${label}: base ignores "/" in the script query`);
    await tick(5);

    // Hidden at load: nothing until the first visibilitychange to visible; an early signal starts it.
    const h = runTag(code, { hidden: true });
    const hiddenPageView = h.api.pageViewId;
    await tick(5);
    checks.eq(h.urls().length, 0, `${label}: hidden page sends nothing`);
    h.sandbox.document.hidden = false;
    h.fire("document:visibilitychange");
    h.fire("document:visibilitychange");
    checks.eq(h.urls().map((u) => decodedParams(u).e), [hiddenPageView + "0"], `${label}: pageView once visible, with the id made at load`);
    const h2 = runTag(code, { hidden: true });
    h2.api.signal("early");
    h2.sandbox.document.hidden = false;
    h2.fire("document:visibilitychange");
    checks.eq(h2.urls().map((u) => decodedParams(u).t), ["pageView", "early"], `${label}: early signal starts the page view first`);
    await tick(5);

    // Refusals: a "/" in the fragment throws (as Divolte does); a second copy does nothing.
    const slash = runTag(code, { scriptSrc: "http://c.test/divolte.js#a/b" });
    checks.ok(slash.error && /must not contain/.test(slash.error.message) && slash.api === undefined && slash.urls().length === 0,
      `${label}: "/" in the fragment throws (${slash.error})`);
    const again = runTag(code, { preexisting: true });
    checks.ok(again.error === null && jsonEqual(again.api, { preexisting: true }) && again.urls().length === 0,
      `${label}: existing window.divolte is left alone`);
    const lost = runTag(code, { scriptSrc: null, scripts: [{ src: "http://a.test/divolte.js" }, { src: "http://b.test/divolte.js" }] });
    checks.ok(lost.error === null && lost.api === undefined, `${label}: ambiguous script URL disables the tag without throwing`);
    const found = runTag(code, { scriptSrc: null, scripts: [{ src: "http://a.test/other.js" }, { src: "http://b.test/t/divolte.js?x#pv1" }] });
    checks.ok(found.urls()[0] && found.urls()[0].startsWith("http://b.test/t/csc-event?") && decodedParams(found.urls()[0]).v === "pv1",
      `${label}: script URL found without currentScript`);
    // Bad cookie values are replaced, not sent (the server would drop every event).
    const junk = runTag(code, { cookies: { _dvp: "garbage", _dvs: "0:abc:fine" } });
    checks.eq([junk.api.isNewPartyId, junk.api.isFirstInSession, junk.api.sessionId], [true, false, "0:abc:fine"], `${label}: unparseable cookie is replaced`);
    await tick(5);

    // Delivery queue: one image in flight, next on load/error/timeout, whenCommitted in FIFO order.
    const q = runTag(code, { manualLoad: true });
    const order = [];
    q.api.signal("one");
    q.api.whenCommitted(() => order.push("committed-1"));
    q.api.signal("two");
    q.api.whenCommitted(() => order.push("committed-2"), 10000);
    checks.eq(q.images.length, 1, `${label}: one image in flight`);
    q.images[0].onload();
    checks.eq([q.images.length, order], [2, []], `${label}: next image after load`);
    q.images[1].onload();
    checks.eq([q.images.length, order], [3, ["committed-1"]], `${label}: whenCommitted after earlier events`);
    q.images[2].onerror();
    checks.eq([q.images.length, order], [3, ["committed-1", "committed-2"]], `${label}: error also advances the queue`);
    // Timeout: this image never loads; the callback after it runs after the event timeout.
    q.api.signal("never-loads");
    q.api.whenCommitted(() => order.push("after-timeout"));
    const timeout = 750; // the default event timeout
    await tick(timeout - 200);
    checks.eq([q.images.length, order.length], [4, 2], `${label}: queue waits for the image`);
    await tick(450);
    checks.eq(order.at(-1), "after-timeout", `${label}: queue advances after the ${timeout} ms event timeout`);
    const once = [];
    q.api.whenCommitted(() => once.push(1), 5);
    await tick(30);
    checks.eq(once.length, 1, `${label}: whenCommitted callback runs exactly once`);
    let threwThrough = false;
    const saved = process.listeners("uncaughtException");
    process.removeAllListeners("uncaughtException");
    process.once("uncaughtException", () => {});
    try { q.api.whenCommitted(() => { throw new Error("host bug"); }); q.api.signal("afterThrow"); } catch { threwThrough = true; }
    await tick(5);
    saved.forEach((l) => process.on("uncaughtException", l));
    checks.ok(!threwThrough && decodedParams(q.images.at(-1).src).t === "afterThrow", `${label}: a throwing callback doesn't stop the queue`);
    await tick(5);
  }

  // Baked settings are honoured by the minified build (and not constant-folded away).
  if (!sourceOnly) {
    const min = readFileSync(MIN_PATH, "utf8");
    const custom = min.replace(PLACEHOLDER, () => JSON.stringify({
      partyCookie: "pc", partyTimeoutSeconds: 100, sessionCookie: "sc", sessionTimeoutSeconds: 10,
      cookieDomain: "site.test", eventSuffix: "zz-event", scriptName: "t.js", autoPageViewEvent: false,
      eventTimeoutSeconds: 0.05, logging: false,
    }));
    const c = runTag(custom, { manualLoad: true, now: 1700000000000, scriptSrc: null, scripts: [{ src: "http://c.test/p/t.js" }] });
    checks.eq(c.images.length, 0, "baked autoPageViewEvent=false: no automatic pageView");
    c.api.signal("custom");
    c.api.signal("custom2");
    checks.ok(c.images.length === 1 && c.images[0].src.startsWith("http://c.test/p/zz-event?"), "baked eventSuffix and scriptName are used");
    checks.eq(c.cookieWrites[0], `pc=${c.api.partyId}; path=/; expires=${new Date(1700000000000 + 100000).toUTCString()}; max-age=100; domain=site.test`, "baked cookie name, timeout and domain");
    checks.eq(c.cookieWrites[1].split(";")[0], `sc=${c.api.sessionId}`, "baked session cookie name");
    await tick(120);
    checks.eq(c.images.length, 2, "baked eventTimeoutSeconds is used");
  }
  return results;
}

// ================================================================================================
// run: real Chromium against a collector.
// ================================================================================================

const PAGE_FACTS = () => ({
  partyId: divolte.partyId, sessionId: divolte.sessionId, pageViewId: divolte.pageViewId,
  isNewPartyId: divolte.isNewPartyId, isFirstInSession: divolte.isFirstInSession, isServerPageView: divolte.isServerPageView,
  href: location.href, referrer: document.referrer,
  screen: { availWidth: screen.availWidth, availHeight: screen.availHeight },
  viewport: { width: innerWidth, height: innerHeight }, dpr: devicePixelRatio, clock: Date.now(),
});

// Makes the document report itself hidden until window.__show() is called (prerender stand-in).
const HIDDEN_INIT = `(() => {
  let hidden = true;
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(Document.prototype, "visibilityState", { configurable: true, get: () => hidden ? "hidden" : "visible" });
  window.__show = () => { hidden = false; document.dispatchEvent(new Event("visibilitychange")); };
})();`;

async function run(opts, checks) {
  const collector = String(opts.collector || "").replace(/\/+$/, "");
  if (!/^https?:\/\//.test(collector)) throw new Error("--collector http://host:port is required");
  if (!opts.report) throw new Error("--report path is required");
  const report = { collector, startedAt: new Date().toISOString(), pages: {}, events: [], requests: [], scripts: [], notes: [] };

  report.selftest = await selftest(checks);

  const tagSrc = (fragment = "") => `${collector}/divolte.js${fragment}`;
  const html = (title, head, body = "") =>
    `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${head}</head><body>${body}</body></html>`;
  // Pages answered without "no-store" so Chromium may keep them in the back/forward cache.
  const cacheable = (body) => () => ({ status: 200, headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" }, body });
  const site = await serveSite({
    "/page1.html": cacheable(html("one", `<script src="${tagSrc()}"></script>`, '<a id="next" href="/page2.html?from=one">next</a>')),
    "/page2.html": html("two", `<script src="${tagSrc()}"></script>`),
    "/server-pv.html": html("server page view", `<script src="${tagSrc("#serverPV123")}"></script>`),
    "/hidden.html": html("hidden", `<script src="${tagSrc()}"></script>`),
    "/preexisting.html": html("preexisting", `<script>window.divolte = { preexisting: true };</script><script src="${tagSrc()}"></script>`),
    "/bad-fragment.html": html("bad fragment", `<script src="${tagSrc("#bad/fragment")}"></script>`),
    "/dpr.html": html("dpr", `<script src="${tagSrc()}"></script>`),
  });
  // "localhost", not 127.0.0.1: the page must be a different site from the collector, as in
  // production, so cookies stay on the page's origin.
  const siteUrl = site.url.replace("127.0.0.1", "localhost");
  report.site = siteUrl;

  let browser;
  try {
    browser = await launch({ ignoreDefaultArgs: ["--disable-back-forward-cache"] });
  } catch (e) {
    browser = await launch();
    report.notes.push("launched without back/forward cache: " + e.message);
  }

  // Every request to the collector's event endpoint, in order, with the collector's answer.
  const captured = [];
  const pending = new Set();
  const log = []; // ordered request/finish markers, to check one image in flight
  const watch = (context) => {
    context.on("request", (req) => {
      const url = req.url();
      if (url.startsWith(collector + "/divolte.js")) {
        const script = { url };
        report.scripts.push(script);
        const done = (async () => {
          const resp = await req.response();
          if (!resp) { script.failure = req.failure()?.errorText || "no response"; return; }
          script.status = resp.status();
          script.contentType = (await resp.allHeaders())["content-type"];
        })().catch((e) => { script.failure = e.message; });
        pending.add(done);
        done.finally(() => pending.delete(done));
      }
      if (!url.startsWith(collector + "/csc-event")) return;
      const entry = { url, seenAt: Date.now() };
      captured.push(entry);
      log.push(["request", url, Date.now()]);
      const done = (async () => {
        const resp = await req.response();
        if (!resp) { entry.failure = req.failure()?.errorText || "no response"; return; }
        entry.status = resp.status();
        const headers = await resp.allHeaders();
        entry.contentType = headers["content-type"];
        entry.etag = headers["etag"];
        entry.cacheControl = headers["cache-control"];
        try {
          const body = await resp.body();
          entry.bodyLength = body.length;
          entry.bodyMagic = body.subarray(0, 6).toString("latin1");
        } catch (e) { entry.bodyError = e.message; }
      })().catch((e) => { entry.failure = e.message; });
      pending.add(done);
      done.finally(() => pending.delete(done));
    });
    context.on("requestfinished", (req) => { if (req.url().startsWith(collector + "/csc-event")) log.push(["finished", req.url()]); });
    context.on("requestfailed", (req) => { if (req.url().startsWith(collector + "/csc-event")) log.push(["failed", req.url()]); });
  };
  const pageErrors = [];
  const attach = (page, name) => {
    page.on("pageerror", (e) => pageErrors.push({ page: name, message: e.message }));
  };
  const eventsFor = (pageViewId) => captured.filter((c) => decodedParams(c.url).v === pageViewId);
  const waitFor = async (predicate, ms = 5000) => {
    const until = Date.now() + ms;
    while (Date.now() < until) { if (predicate()) return true; await tick(25); }
    return predicate();
  };
  const quiet = async () => {
    // Until no event request has started for 1.5 s (twice the event timeout) and all are answered.
    let count = -1;
    while (count !== captured.length) { count = captured.length; await tick(1500); }
    await Promise.all([...pending]);
  };
  const expect = (page, facts, e) => report.events.push({
    page, pageViewId: facts.pageViewId, partyId: facts.partyId, sessionId: facts.sessionId,
    location: facts.href, referrer: facts.referrer || undefined, screen: facts.screen, viewport: facts.viewport, dpr: facts.dpr,
    clock: facts.clock, ...e,
  });

  try {
    // ---- Context A: a first-time visitor.
    const contextA = await browser.newContext();
    watch(contextA);
    const page = await contextA.newPage();
    attach(page, "page1");
    await page.goto(`${siteUrl}/page1.html?q=1#frag`);
    await page.waitForFunction(() => window.divolte && divolte.signal);
    const p1 = await page.evaluate(PAGE_FACTS);
    report.pages.page1 = p1;
    checks.ok(TIMED_ID.test(p1.partyId) && TIMED_ID.test(p1.sessionId) && PAGE_VIEW_ID.test(p1.pageViewId), `page1 id formats: ${JSON.stringify(p1)}`);
    checks.eq([p1.isNewPartyId, p1.isFirstInSession, p1.isServerPageView], [true, true, false], "page1 flags");
    checks.ok(await waitFor(() => eventsFor(p1.pageViewId).length === 1), "page1 automatic pageView sent");
    expect("page1", p1, { eventId: p1.pageViewId + "0", type: "pageView", n: true, f: true, hasProps: false });

    const signalled = await page.evaluate(({ time }) => {
      const out = {};
      const m = new Date(time);
      const custom = { a: {}, b: "c", c: "esc ~! ünï", e: ["1", "2"], f: 42, g: 53.2, h: -37, i: -78.3e-10, j: true, k: false, l: null, m };
      out.custom = { id: divolte.signal("customEvent", custom), props: JSON.parse(JSON.stringify(custom)), clock: Date.now() };
      out.noParams = { id: divolte.signal("noParams"), clock: Date.now() };
      const tricky = {
        undef: undefined, fn() {}, viaToJSON: { toJSON() { return { t: "x" }; } },
        arr: [undefined, () => 1, NaN, Infinity, 1e21, 2 ** 53, -0, 0.1, -1.5e-300, 123456789012],
        wrappers: [new Number(3), new String("s~!"), new Boolean(false)],
        "key ~! 😀": "value ~ and ! 😀 ¡ \n\t\"quoted\" & = ? # % +", empty: "", emptyArr: [], nested: { x: {}, y: [[], [{}]] },
      };
      out.tricky = { id: divolte.signal("trickyParams", tricky), props: JSON.parse(JSON.stringify(tricky)), clock: Date.now() };
      const arr = ["x", 1, { y: null }];
      out.array = { id: divolte.signal("arrayParams", arr), props: arr, clock: Date.now() };
      out.falsy = [divolte.signal(""), divolte.signal(null), divolte.signal(undefined), divolte.signal(0), divolte.signal(false)];
      return out;
    }, { time: BIG_EXAMPLE_TIME });
    report.pages.page1.signalled = signalled;
    checks.eq(signalled.falsy, [null, null, null, null, null], "falsy event types return null in Chromium");
    const ids = [signalled.custom.id, signalled.noParams.id, signalled.tricky.id, signalled.array.id];
    checks.eq(ids, [1, 2, 3, 4].map((i) => p1.pageViewId + i.toString(16)), "event ids are page view id + hex counter");
    for (const [key, type] of [["custom", "customEvent"], ["noParams", "noParams"], ["tricky", "trickyParams"], ["array", "arrayParams"]]) {
      const s = signalled[key];
      expect("page1", { ...p1, clock: s.clock }, { eventId: s.id, type, n: false, f: false, hasProps: "props" in s, props: s.props });
    }

    // whenCommitted: runs once all earlier events have completed, here two sent just before it.
    const committed = await page.evaluate(() => new Promise((resolve) => {
      const done = () => performance.getEntriesByType("resource").filter((e) => e.name.includes("/csc-event?")).length;
      const before = done();
      const ids = [divolte.signal("beforeCommit", { n: 1 }), divolte.signal("beforeCommit", { n: 2 })];
      const clock = Date.now();
      setTimeout(() => resolve({ fired: false, before, ids, clock }), 10000);
      divolte.whenCommitted(() => resolve({ fired: true, before, ids, clock, atCallback: done() }));
    }));
    report.pages.page1.whenCommitted = committed;
    committed.ids.forEach((id, i) => expect("page1", { ...p1, clock: committed.clock },
      { eventId: id, type: "beforeCommit", n: false, f: false, hasProps: true, props: { n: i + 1 } }));
    checks.ok(committed.fired, "whenCommitted callback fired");
    checks.ok(committed.atCallback >= committed.before + 2,
      `whenCommitted ran after the events signalled before it completed (finished requests: ${committed.before} before, ${committed.atCallback} at callback)`);
    const timedCallback = await page.evaluate(() => new Promise((resolve) => {
      let calls = 0;
      divolte.whenCommitted(() => calls++, 100);
      setTimeout(() => resolve(calls), 400);
    }));
    checks.eq(timedCallback, 1, "whenCommitted with a timeout calls back exactly once");
    await quiet();

    // ---- Second page load in the same context: same party and session, n=f f=f, referrer.
    await page.evaluate(() => { window.__bfMarker = "page1"; });
    await Promise.all([page.waitForURL(/page2\.html/), page.click("#next")]);
    await page.waitForFunction(() => window.divolte && divolte.signal);
    const p2 = await page.evaluate(PAGE_FACTS);
    report.pages.page2 = p2;
    checks.eq([p2.partyId, p2.sessionId], [p1.partyId, p1.sessionId], "page2 keeps party and session ids (cookies)");
    checks.eq([p2.isNewPartyId, p2.isFirstInSession, p2.isServerPageView], [false, false, false], "page2 flags");
    checks.ok(p2.pageViewId !== p1.pageViewId && PAGE_VIEW_ID.test(p2.pageViewId), "page2 has a new page view id");
    checks.eq(p2.referrer, `${siteUrl}/page1.html?q=1#frag`.replace(/#.*/, ""), "page2 referrer is page1");
    checks.ok(await waitFor(() => eventsFor(p2.pageViewId).length === 1), "page2 pageView sent");
    expect("page2", p2, { eventId: p2.pageViewId + "0", type: "pageView", n: false, f: false, hasProps: false });
    const cookies = await contextA.cookies(siteUrl);
    const dvp = cookies.find((c) => c.name === "_dvp"), dvs = cookies.find((c) => c.name === "_dvs");
    report.cookies = cookies.map(({ name, value, domain, path, expires, httpOnly, secure, sameSite }) => ({ name, value, domain, path, expires, httpOnly, secure, sameSite }));
    // Chromium caps cookie lifetimes at 400 days (RFC 6265bis), below the 730 days the tag asks for.
    const partyExpiry = Date.now() / 1000 + Math.min(63072000, 400 * 86400);
    checks.ok(dvp && dvp.value === p1.partyId && dvp.path === "/" && Math.abs(dvp.expires - partyExpiry) < 120,
      `_dvp cookie: ${JSON.stringify(dvp)}`);
    checks.ok(dvs && dvs.value === p1.sessionId && dvs.path === "/" && Math.abs(dvs.expires - (Date.now() / 1000 + 1800)) < 120,
      `_dvs cookie: ${JSON.stringify(dvs)}`);
    await quiet();

    // ---- Back to page1: a back/forward-cache restore must start a new page view.
    await page.goBack({ waitUntil: "commit" });
    await page.waitForFunction(() => window.divolte && divolte.signal);
    const restored = await page.evaluate(() => window.__bfMarker === "page1");
    const p1b = await page.evaluate(PAGE_FACTS);
    report.pages.page1Back = { ...p1b, restoredFromBfcache: restored };
    if (!restored) report.notes.push("Chromium did not restore page1 from the back/forward cache; it reloaded instead");
    checks.ok(p1b.pageViewId !== p1.pageViewId && PAGE_VIEW_ID.test(p1b.pageViewId), `back to page1: new page view id (bfcache: ${restored})`);
    checks.eq([p1b.partyId, p1b.sessionId], [p1.partyId, p1.sessionId], "back to page1: same party and session");
    checks.ok(await waitFor(() => eventsFor(p1b.pageViewId).length === 1), "back to page1: pageView sent");
    expect("page1Back", p1b, { eventId: p1b.pageViewId + "0", type: "pageView", n: false, f: false, hasProps: false, bfcache: restored });
    await quiet();

    // ---- Server-supplied page view id.
    const serverPage = await contextA.newPage();
    attach(serverPage, "server-pv");
    await serverPage.goto(`${siteUrl}/server-pv.html`);
    await serverPage.waitForFunction(() => window.divolte && divolte.signal);
    const sp = await serverPage.evaluate(PAGE_FACTS);
    report.pages.serverPageView = sp;
    checks.eq([sp.pageViewId, sp.isServerPageView, sp.partyId, sp.sessionId], ["serverPV123", true, p1.partyId, p1.sessionId], "server page view id");
    checks.ok(await waitFor(() => eventsFor("serverPV123").length === 1), "server page view: pageView sent");
    expect("serverPageView", sp, { eventId: "serverPV1230", type: "pageView", n: false, f: false, hasProps: false });
    const spSignal = await serverPage.evaluate(() => ({ id: divolte.signal("afterServerPV", { k: "v" }), clock: Date.now() }));
    checks.eq(spSignal.id, "serverPV1231", "server page view: event counter continues");
    expect("serverPageView", { ...sp, clock: spSignal.clock }, { eventId: spSignal.id, type: "afterServerPV", n: false, f: false, hasProps: true, props: { k: "v" } });
    // A synthetic re-show (pagehide + pageshow): same id kept, counter not reset.
    const reshow = await serverPage.evaluate(() => {
      window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: true }));
      window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }));
      return { pageViewId: divolte.pageViewId, clock: Date.now() };
    });
    checks.eq(reshow.pageViewId, "serverPV123", "server page view id survives a re-show");
    checks.ok(await waitFor(() => eventsFor("serverPV123").length === 3), "server page view: re-show sends pageView");
    expect("serverPageView", { ...sp, clock: reshow.clock }, { eventId: "serverPV1232", type: "pageView", n: false, f: false, hasProps: false });
    await quiet(); // answers are read through the page, so read them before closing it
    await serverPage.close({ runBeforeUnload: false });

    // ---- Hidden (prerendered) pages.
    const hiddenPage = await contextA.newPage();
    attach(hiddenPage, "hidden");
    await hiddenPage.addInitScript(HIDDEN_INIT);
    await hiddenPage.goto(`${siteUrl}/hidden.html`);
    await hiddenPage.waitForFunction(() => window.divolte && divolte.signal);
    const hp = await hiddenPage.evaluate(PAGE_FACTS);
    await tick(800);
    checks.eq(eventsFor(hp.pageViewId).length, 0, "hidden page: no pageView while hidden");
    const shownAt = await hiddenPage.evaluate(() => { window.__show(); return Date.now(); });
    checks.ok(await waitFor(() => eventsFor(hp.pageViewId).length === 1), "hidden page: pageView once visible");
    report.pages.hidden = hp;
    expect("hidden", { ...hp, clock: shownAt }, { eventId: hp.pageViewId + "0", type: "pageView", n: false, f: false, hasProps: false });
    await quiet(); // answers are read through the page, so read them before closing it
    await hiddenPage.close({ runBeforeUnload: false });

    const earlyPage = await contextA.newPage();
    attach(earlyPage, "hidden-early");
    await earlyPage.addInitScript(HIDDEN_INIT);
    await earlyPage.goto(`${siteUrl}/hidden.html?early`);
    await earlyPage.waitForFunction(() => window.divolte && divolte.signal);
    const ep = await earlyPage.evaluate(PAGE_FACTS);
    const early = await earlyPage.evaluate(() => ({ id: divolte.signal("early"), clock: Date.now() }));
    await earlyPage.evaluate(() => window.__show());
    await tick(300);
    checks.eq(early.id, ep.pageViewId + "1", "early signal on a hidden page comes after its pageView");
    checks.ok(await waitFor(() => eventsFor(ep.pageViewId).length === 2), "hidden page with early signal: pageView + early, nothing more");
    report.pages.hiddenEarly = ep;
    expect("hiddenEarly", { ...ep, clock: early.clock }, { eventId: ep.pageViewId + "0", type: "pageView", n: false, f: false, hasProps: false });
    expect("hiddenEarly", { ...ep, clock: early.clock }, { eventId: early.id, type: "early", n: false, f: false, hasProps: false });
    await quiet(); // answers are read through the page, so read them before closing it
    await earlyPage.close({ runBeforeUnload: false });

    // ---- Pages on which the tag must not track.
    const before = captured.length;
    const pre = await contextA.newPage();
    attach(pre, "preexisting");
    await pre.goto(`${siteUrl}/preexisting.html`);
    const preApi = await pre.evaluate(() => window.divolte);
    checks.eq(preApi, { preexisting: true }, "existing window.divolte is left alone");
    const badPage = await contextA.newPage();
    attach(badPage, "bad-fragment");
    await badPage.goto(`${siteUrl}/bad-fragment.html`);
    checks.eq(await badPage.evaluate(() => typeof window.divolte), "undefined", "bad fragment: no API");
    await tick(1000);
    checks.eq(captured.length, before, "no events from the preexisting and bad-fragment pages");
    checks.ok(pageErrors.some((e) => e.page === "bad-fragment" && /must not contain/.test(e.message)), "bad fragment: the page sees the error");
    await pre.close(); await badPage.close();

    // ---- Context B: another visitor, fractional device pixel ratio.
    const contextB = await browser.newContext({ deviceScaleFactor: 1.5, viewport: { width: 800, height: 600 } });
    watch(contextB);
    const dprPage = await contextB.newPage();
    attach(dprPage, "dpr");
    await dprPage.goto(`${siteUrl}/dpr.html`);
    await dprPage.waitForFunction(() => window.divolte && divolte.signal);
    const dp = await dprPage.evaluate(PAGE_FACTS);
    report.pages.dpr = dp;
    checks.ok(dp.partyId !== p1.partyId && dp.isNewPartyId && dp.isFirstInSession, "second context is a new visitor");
    checks.ok(await waitFor(() => eventsFor(dp.pageViewId).length === 1), "dpr page: pageView sent");
    expect("dpr", dp, { eventId: dp.pageViewId + "0", type: "pageView", n: true, f: true, hasProps: false });
    await quiet();

    await contextB.close();
    await contextA.close();
  } finally {
    await browser.close();
    await site.close();
  }

  // ---- Unexpected page errors (the bad-fragment page is meant to throw).
  const unexpectedErrors = pageErrors.filter((e) => e.page !== "bad-fragment");
  checks.eq(unexpectedErrors, [], "no other page errors");
  report.pageErrors = pageErrors;

  // ---- The script response.
  checks.ok(report.scripts.length > 0 && report.scripts.every((s) => s.status === 200 || s.status === 304), "divolte.js served with 200/304");

  // ---- Every request: wire format, checksum, and the collector's answer.
  const byEventId = new Map(report.events.map((e) => [e.eventId, e]));
  for (const c of captured) {
    const pairs = rawPairs(c.url);
    const params = decodedParams(c.url);
    const keys = pairs.map(([k]) => k);
    const order = keys.map((k) => PARAM_ORDER.indexOf(k));
    const checksum = checkQueryChecksum(rawQuery(c.url));
    const entry = {
      url: c.url, status: c.status, contentType: c.contentType, etag: c.etag, bodyLength: c.bodyLength, bodyMagic: c.bodyMagic,
      failure: c.failure, keys, checksumValid: checksum.valid, checksumExpected: checksum.expected, eventId: params.e,
    };
    report.requests.push(entry);
    const tag = `request ${params.e} (${params.t})`;
    checks.ok(checksum.valid, `${tag}: checksum x=${checksum.actual} verifies (expected ${checksum.expected})`);
    checks.ok(order.every((v, i) => v >= 0 && (i === 0 || v > order[i - 1])) && keys.at(-1) === "x", `${tag}: parameter order ${keys.join("")}`);
    checks.ok(pairs.every(([, v]) => encodeURIComponent(decodeURIComponent(v)) === v), `${tag}: values are exactly encodeURIComponent-ed`);
    checks.eq([c.status, c.contentType, c.etag, c.bodyLength, c.bodyMagic], [200, "image/gif", PIXEL_ETAG, PIXEL_LENGTH, "GIF89a"], `${tag}: collector answer`);
    const ev = byEventId.get(params.e);
    if (!ev) { checks.ok(false, `${tag}: not an event any page signalled`); continue; }
    ev.requestUrl = c.url;
    ev.requests = (ev.requests || 0) + 1;
    ev.clientTime = parseInt(params.c, 36);
    checks.eq([params.p, params.s, params.v, params.t], [ev.partyId, ev.sessionId, ev.pageViewId, ev.type], `${tag}: ids and type`);
    checks.eq([params.n, params.f], [ev.n ? "t" : "f", ev.f ? "t" : "f"], `${tag}: n/f flags`);
    checks.ok(Math.abs(ev.clientTime - ev.clock) < 5000, `${tag}: c=${params.c} within 5 s of the page clock`);
    checks.eq([params.l, params.r], [ev.location, ev.referrer], `${tag}: location and referrer`);
    checks.eq([params.i, params.j, params.w, params.h, params.k],
      [ev.screen.availWidth.toString(36), ev.screen.availHeight.toString(36), ev.viewport.width.toString(36), ev.viewport.height.toString(36), ev.dpr.toString(36)],
      `${tag}: screen, viewport and pixel ratio`);
    if (ev.hasProps) {
      let decoded;
      try { decoded = mincodeDecode(params.u); } catch (e) { decoded = String(e); }
      checks.ok(jsonEqual(decoded, ev.props), `${tag}: u decodes to the signalled params: ${JSON.stringify(decoded)}`);
    } else {
      checks.eq(params.u, undefined, `${tag}: no u without params`);
    }
    if (ev.type === "customEvent") checks.eq(params.u, BIG_EXAMPLE_U, `${tag}: u is byte-identical to the browser-verified Divolte example`);
  }
  for (const ev of report.events) checks.eq(ev.requests, 1, `event ${ev.eventId} (${ev.type}) sent exactly once`);

  // ---- One image in flight: each event request starts only after the previous one of the same
  // page finished, or after its 750 ms event timeout passed (which a collector slowed down by a
  // busy machine, an fsync waiting for the disk, can need: that is the tag working as designed).
  const finished = new Set();
  let overlaps = 0;
  const lastOfPage = new Map();
  for (const [kind, url, at] of log) {
    if (kind !== "request") { finished.add(url); continue; }
    const v = decodedParams(url).v;
    const prev = lastOfPage.get(v);
    // 700 ms: the timeout less a margin for when Playwright reports the request.
    if (prev && !finished.has(prev.url) && at - prev.at < 700) overlaps++;
    lastOfPage.set(v, { url, at });
  }
  checks.eq(overlaps, 0, "one event request in flight per page");
  report.summary = {
    events: report.events.length, requests: captured.length,
    checksumsValid: report.requests.filter((r) => r.checksumValid).length,
    bfcacheRestore: report.pages.page1Back?.restoredFromBfcache,
  };
  return report;
}

// ================================================================================================
// verify: what the collector stored.
// ================================================================================================

function timeMs(value) {
  if (typeof value === "number") return value;
  if (typeof value === "string") return /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  return NaN;
}

function verify(opts, checks) {
  const report = JSON.parse(readFileSync(opts.report, "utf8"));
  const stored = readEvents(opts.events);
  const parties = new Set(report.events.map((e) => e.partyId));
  const ours = stored.filter((e) => parties.has(e.party_id));
  checks.eq(ours.length, report.events.length, "stored events of the test's visitors = events signalled");
  for (const ev of report.events) {
    const matches = ours.filter((e) => e.event_id === ev.eventId);
    checks.eq(matches.length, 1, `event ${ev.eventId} (${ev.type}) stored exactly once`);
    const e = matches[0];
    if (!e) continue;
    const tag = `stored ${ev.eventId} (${ev.type})`;
    checks.eq([e.event_type, e.party_id, e.session_id, e.page_view_id], [ev.type, ev.partyId, ev.sessionId, ev.pageViewId], `${tag}: type and ids`);
    checks.eq([e.is_new_party, e.is_first_in_session], [ev.n, ev.f], `${tag}: new party / first in session`);
    const client = timeMs(e.client_time);
    if (ev.clientTime !== undefined) checks.eq(client, ev.clientTime, `${tag}: client_time is the c the tag sent`);
    checks.ok(Math.abs(client - ev.clock) < 5000, `${tag}: client_time ${e.client_time} within 5 s of the page clock ${ev.clock}`);
    const serverTime = timeMs(e.__time);
    checks.ok(Number.isFinite(serverTime) && Math.abs(serverTime - client) < 60000, `${tag}: __time ${e.__time} near client_time`);
    const loc = new URL(ev.location);
    checks.eq(e.url, ev.location, `${tag}: url`);
    checks.eq(e.host, loc.hostname, `${tag}: host (the host name, without the port)`);
    checks.eq(e.path, loc.pathname, `${tag}: path`);
    checks.ok((e.query ?? "") === loc.search.replace(/^\?/, ""), `${tag}: query ${JSON.stringify(e.query)} vs ${JSON.stringify(loc.search)}`);
    checks.ok((e.referrer ?? undefined) === ev.referrer || (!e.referrer && !ev.referrer), `${tag}: referrer ${JSON.stringify(e.referrer)} vs ${JSON.stringify(ev.referrer)}`);
    checks.eq([e.screen_width, e.screen_height, e.viewport_width, e.viewport_height],
      [ev.screen.availWidth, ev.screen.availHeight, ev.viewport.width, ev.viewport.height], `${tag}: screen and viewport`);
    if (Number.isInteger(ev.dpr)) checks.eq(e.pixel_ratio, ev.dpr, `${tag}: pixel_ratio`);
    else checks.ok(e.pixel_ratio === undefined || e.pixel_ratio === null, `${tag}: fractional pixel ratio ${ev.dpr} stored as absent (got ${e.pixel_ratio})`);
    if (ev.hasProps) {
      let props;
      try { props = typeof e.props === "string" ? JSON.parse(e.props) : e.props; } catch (err) { props = `unparseable: ${err.message}`; }
      checks.ok(typeof e.props === "string", `${tag}: props is JSON text`);
      checks.ok(jsonEqual(props, ev.props), `${tag}: props ${JSON.stringify(props)} vs signalled ${JSON.stringify(ev.props)}`);
    } else {
      checks.ok(e.props === undefined || e.props === null || e.props === "", `${tag}: no props (got ${JSON.stringify(e.props)})`);
    }
    checks.eq(e.is_corrupt, false, `${tag}: is_corrupt`);
    checks.eq(e.source, "divolte", `${tag}: source`);
    checks.ok(e.site === undefined || e.site === null || typeof e.site === "string", `${tag}: site`);
  }
}

// ================================================================================================

const opts = options();
const phase = opts._[0];
const checks = new Checks();
if (phase === "selftest") {
  const results = await selftest(checks, { sourceOnly: "source-only" in opts });
  if (opts.report) writeFileSync(opts.report, JSON.stringify(results, null, 2));
  checks.finish("divolte selftest");
} else if (phase === "run") {
  let report;
  try {
    report = await run(opts, checks);
  } catch (e) {
    checks.ok(false, `run aborted: ${e.stack || e}`);
    report = { aborted: String(e.stack || e) };
  }
  report.failures = checks.failures;
  report.checks = checks.count;
  if (opts.report) writeFileSync(opts.report, JSON.stringify(report, null, 2));
  checks.finish("divolte run");
} else if (phase === "verify") {
  if (!opts.events || !opts.report) throw new Error("verify needs --events and --report");
  verify(opts, checks);
  checks.finish("divolte verify");
} else {
  console.error("usage: node tests/browser/divolte.mjs selftest | run --collector URL --report FILE | verify --events FILE --report FILE");
  process.exit(2);
}
