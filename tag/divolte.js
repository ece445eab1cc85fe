/*
 * Oriel's divolte.js: a browser tag that speaks the Divolte Collector wire protocol, so pages
 * tagged with `<script src="//collector/divolte.js">` keep working when the collector hostname
 * points at Oriel. Written from the protocol notes in shared/reference/divolte-protocol.md (§1),
 * not derived from Divolte's own source.
 *
 * What it does, in the order a page sees it:
 *   1. Finds its own <script> URL; events go to the directory it was loaded from.
 *   2. Reads the party (_dvp) and session (_dvs) cookies, making new ids when they are absent.
 *   3. Publishes the page API (AMD, CommonJS or window.divolte).
 *   4. Starts a page view as soon as the page is visible, which sends `pageView`.
 *   5. Sends each signal() as an image GET, one at a time, in order.
 *
 * Plain ES5 on purpose: the tag runs on whatever the tagged site's visitors use, and the
 * collector serves the minified build of this file without transpiling it.
 */
(function (window, document) {
  "use strict";

  // ---------------------------------------------------------------------------------------------
  // Settings. The collector replaces the string literal below, quotes included, with a JSON object
  // when it serves the tag. If it is still a string (the raw file, or a test harness), the
  // collector's own defaults apply. Those defaults are the server's, not the raw-source ones, so
  // the event timeout is 0.75 s here.
  // ---------------------------------------------------------------------------------------------
  var DEFAULTS = {
    partyCookie: "_dvp",
    partyTimeoutSeconds: 63072000,
    sessionCookie: "_dvs",
    sessionTimeoutSeconds: 1800,
    cookieDomain: "",
    eventSuffix: "csc-event",
    scriptName: "divolte.js",
    autoPageViewEvent: true,
    eventTimeoutSeconds: 0.75,
    logging: false
  };

  // The literal goes through an array the minifier cannot see into. Otherwise it would
  // constant-fold `typeof "..."` to "string", drop the object branch, and remove the literal the
  // server looks for.
  var baked = [].concat("__DIVOLTE_CONFIG__")[0];
  var settings = {};
  for (var name in DEFAULTS) {
    // Take a value from the baked object only if it has the right type, so a bad key can't
    // break the tag.
    settings[name] = baked !== null && typeof baked === "object" && typeof baked[name] === typeof DEFAULTS[name]
      ? baked[name]
      : DEFAULTS[name];
  }

  function log() {
    if (settings.logging && window.console && console.log) {
      try {
        console.log.apply(console, ["[divolte]"].concat([].slice.call(arguments)));
      } catch (ignored) { /* logging must never break the page */ }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Export mode. If the tag has already been loaded as a global, a second copy does nothing: it
  // must not send a second pageView or replace the API the page already uses.
  // ---------------------------------------------------------------------------------------------
  var amdDefine = typeof define === "function" && define.amd ? define : null;
  var commonModule = !amdDefine && typeof module === "object" && module && typeof module.exports === "object"
    ? module
    : null;
  if (!amdDefine && !commonModule && window.divolte !== null && typeof window.divolte === "object") {
    log("already loaded; this copy does nothing");
    return;
  }

  // ---------------------------------------------------------------------------------------------
  // Where am I? The collector base is the script URL up to and including the last "/" of its
  // path. The fragment may carry a page view id chosen by the server that rendered the page.
  // ---------------------------------------------------------------------------------------------
  function findScriptUrl() {
    var current = document.currentScript;
    if (current && typeof current.src === "string" && current.src) {
      return current.src;
    }
    // Older browsers have no currentScript, so look for the one <script> whose file name is ours.
    var pattern = new RegExp("^(?:.*/)?" + settings.scriptName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "(?:[?#].*)?$");
    var scripts = document.getElementsByTagName("script");
    var found = null;
    for (var i = 0; i < scripts.length; i++) {
      var src = scripts[i].src;
      if (typeof src === "string" && pattern.test(src)) {
        if (found !== null) {
          return null; // two candidates: refuse to guess where the events should go
        }
        found = src;
      }
    }
    return found;
  }

  var scriptUrl = findScriptUrl();
  if (scriptUrl === null) {
    // Divolte throws here. We don't: a page that can't be tracked should still work.
    log("cannot find the script's own URL; not tracking");
    return;
  }
  var hashAt = scriptUrl.indexOf("#");
  var serverPageViewId = hashAt >= 0 ? scriptUrl.substring(hashAt + 1) : "";
  if (serverPageViewId.indexOf("/") >= 0) {
    // The one error we throw on purpose, as Divolte does: a page view id with "/" in it means
    // the page template is broken, and the site owner should see that in the console.
    throw new Error("divolte.js: the page view id in the script URL fragment must not contain '/'");
  }
  // Strip the fragment and the query before looking for the last "/", so a "/" inside either of
  // them can't change the collector base.
  var scriptPath = scriptUrl.replace(/[?#].*$/, "");
  var eventUrl = scriptPath.substring(0, scriptPath.lastIndexOf("/") + 1) + settings.eventSuffix + "?";

  // ---------------------------------------------------------------------------------------------
  // Identifiers: party and session "0:<base36 ms>:<32 chars>", page view "0:<32 chars>", event
  // "<page view id><hex counter>". The server never checks the random part, it only has to be
  // unique and free of ":". Without crypto.getRandomValues we use Math.random and add "!" so
  // those weaker ids can be told apart later (as Divolte does).
  // ---------------------------------------------------------------------------------------------
  var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~_";

  function randomChars() {
    var bytes = null;
    var i;
    try {
      var cryptoObject = window.crypto || window.msCrypto;
      bytes = new Uint8Array(32);
      cryptoObject.getRandomValues(bytes);
    } catch (e) {
      bytes = null;
    }
    var weak = bytes === null;
    if (weak) {
      bytes = [];
      for (i = 0; i < 32; i++) {
        bytes.push(Math.floor(Math.random() * 256));
      }
    }
    var out = "";
    for (i = 0; i < 32; i++) {
      out += ALPHABET.charAt(bytes[i] & 63);
    }
    return weak ? out + "!" : out;
  }

  var loadTime = new Date().getTime();

  function newTimedId() {
    return "0:" + loadTime.toString(36) + ":" + randomChars();
  }

  // ---------------------------------------------------------------------------------------------
  // Cookies live on the page's origin and are written here, never by the collector.
  // ---------------------------------------------------------------------------------------------
  function readCookie(cookieName) {
    var all;
    try {
      all = document.cookie; // throws in sandboxed frames
    } catch (e) {
      return null;
    }
    var match = new RegExp("(?:^|;)\\s*" + cookieName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "=([^;]*)").exec(all || "");
    // Only accept a value the collector can parse. The cookies are sliding, so an unparseable
    // value would otherwise never expire, and the server would drop every event from this visitor.
    return match && /^0:[0-9a-z]+:[^:]+$/.test(match[1]) ? match[1] : null;
  }

  function writeCookie(cookieName, value, maxAgeSeconds, now) {
    var cookie = cookieName + "=" + value + "; path=/; expires=" +
      new Date(now + maxAgeSeconds * 1000).toUTCString() + "; max-age=" + maxAgeSeconds;
    if (settings.cookieDomain) {
      cookie += "; domain=" + settings.cookieDomain;
    }
    try {
      document.cookie = cookie;
    } catch (e) { /* sandboxed frame: ids still work for this page */ }
  }

  var partyId = readCookie(settings.partyCookie);
  var isNewParty = partyId === null;
  if (isNewParty) {
    partyId = newTimedId();
  }
  var sessionId = readCookie(settings.sessionCookie);
  var isNewSession = sessionId === null;
  if (isNewSession) {
    sessionId = newTimedId();
  }
  // n=t and f=t go only on the first event this page sends; after that the cookies exist.
  var newPartyUnsent = isNewParty;
  var newSessionUnsent = isNewSession;

  var isServerPageView = serverPageViewId !== "";
  var pageViewId = isServerPageView ? serverPageViewId : "0:" + randomChars();
  var eventCounter = 0;
  var pageViewStarted = false;

  // ---------------------------------------------------------------------------------------------
  // Mincode: the compact, URL-friendly form of JSON that carries custom parameters in `u`.
  // A value is a type character, then (only for object members) the escaped name and "!", then
  // the payload. What gets encoded follows JSON.stringify: toJSON() is used, undefined, functions
  // and symbols are skipped in objects and become null in arrays. Where JSON.stringify would
  // throw (cycles, BigInt) we encode something instead, because a tag must not throw.
  // ---------------------------------------------------------------------------------------------
  var objectToString = Object.prototype.toString;

  function escapeMincode(text) {
    return text.replace(/[~!]/g, "~$&");
  }

  function numberRecord(n) {
    if (!isFinite(n)) {
      return ["n", ""]; // JSON has no NaN or Infinity; JSON.stringify writes null
    }
    var plain = String(n);
    var exponential = n.toExponential();
    // Divolte's rule: base36 when it is the shortest form of an integer. We also require the
    // integer to be exact (below 2^53): beyond that, browsers' toString(36) only prints enough
    // digits to pick the nearest double, and the server reads those digits as a different value.
    // Such numbers go out as decimal JSON numbers, which round-trip.
    if (n % 1 === 0 && n <= 9007199254740991 && n >= -9007199254740991) {
      var base36 = n.toString(36);
      if (base36.length <= plain.length && base36.length <= exponential.length) {
        return ["d", base36 + "!"];
      }
    }
    return ["j", (exponential.length < plain.length ? exponential : plain) + "!"];
  }

  // Returns the encoding of `value`, or null when JSON.stringify would leave it out.
  function encodeValue(holderKey, value, name, stack) {
    if (value !== null && (typeof value === "object" || typeof value === "bigint") &&
        typeof value.toJSON === "function") {
      value = value.toJSON(holderKey);
    }
    if (value !== null && typeof value === "object") {
      // Wrapper objects (new Number(1), ...) encode as their primitive, as in JSON.stringify.
      var kind = objectToString.call(value);
      if (kind === "[object Number]") {
        value = Number(value);
      } else if (kind === "[object String]") {
        value = String(value);
      } else if (kind === "[object Boolean]" || kind === "[object BigInt]") {
        value = value.valueOf();
      }
    }

    var type;
    var payload = "";
    var i;
    if (value === null) {
      type = "n";
    } else if (value === true) {
      type = "t";
    } else if (value === false) {
      type = "f";
    } else if (typeof value === "string") {
      type = "s";
      payload = escapeMincode(value) + "!";
    } else if (typeof value === "number") {
      var number = numberRecord(value);
      type = number[0];
      payload = number[1];
    } else if (typeof value === "bigint") {
      type = "j"; // a JSON number of any length; JSON.stringify would throw instead
      payload = value.toString() + "!";
    } else if (typeof value === "object") {
      for (i = 0; i < stack.length; i++) {
        if (stack[i] === value) {
          type = "n"; // a cycle: JSON.stringify throws, we cut it with null
        }
      }
      if (!type) {
        stack.push(value);
        if (Array.isArray(value)) {
          type = "a";
          for (i = 0; i < value.length; i++) {
            payload += encodeValue(String(i), value[i], undefined, stack) || "n";
          }
          payload += ".";
        } else {
          type = "(";
          var keys = Object.keys(value);
          for (i = 0; i < keys.length; i++) {
            payload += encodeValue(keys[i], value[keys[i]], keys[i], stack) || "";
          }
          payload += ")";
        }
        stack.pop();
      }
    } else {
      return null; // undefined, function, symbol
    }
    return type + (name === undefined ? "" : escapeMincode(name) + "!") + payload;
  }

  // ---------------------------------------------------------------------------------------------
  // Checksum `x`: MurmurHash3 x86_32, seed 0, over the UTF-8 bytes of "key=value,;" for every
  // parameter sorted by key, rendered as a signed base36 number. The collector recomputes it
  // to flag URLs that proxies or filters have cut or rewritten.
  // ---------------------------------------------------------------------------------------------
  var imul = Math.imul || function (a, b) {
    var aHigh = (a >>> 16) & 0xffff;
    var aLow = a & 0xffff;
    var bHigh = (b >>> 16) & 0xffff;
    var bLow = b & 0xffff;
    return ((aLow * bLow) + (((aHigh * bLow + aLow * bHigh) << 16) >>> 0) | 0);
  };

  function utf8Bytes(text) {
    var bytes = [];
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      if (c < 0x80) {
        bytes.push(c);
      } else if (c < 0x800) {
        bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      } else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
        // A surrogate pair (text is well formed by now, see wellFormed below).
        c = 0x10000 + ((c - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00);
        bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      } else {
        bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      }
    }
    return bytes;
  }

  function murmur3(bytes) {
    var c1 = 0xcc9e2d51;
    var c2 = 0x1b873593;
    var h = 0;
    var k;
    var length = bytes.length;
    var blocks = length - (length & 3);
    var i = 0;
    for (; i < blocks; i += 4) {
      k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
      k = imul(k, c1);
      k = (k << 15) | (k >>> 17);
      k = imul(k, c2);
      h ^= k;
      h = (h << 13) | (h >>> 19);
      h = (imul(h, 5) + 0xe6546b64) | 0;
    }
    k = 0;
    switch (length & 3) {
      case 3:
        k ^= bytes[i + 2] << 16;
        // falls through
      case 2:
        k ^= bytes[i + 1] << 8;
        // falls through
      case 1:
        k ^= bytes[i];
        k = imul(k, c1);
        k = (k << 15) | (k >>> 17);
        k = imul(k, c2);
        h ^= k;
    }
    h ^= length;
    h ^= h >>> 16;
    h = imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h | 0;
  }

  // encodeURIComponent throws on a lone surrogate. Replace those with U+FFFD, as a UTF-8
  // encoder would, so the event still goes out and the checksum matches what the server decodes.
  // Built at run time so the minifier can't put a raw non-ASCII character into the served file,
  // which would be misread on pages whose charset isn't UTF-8.
  var REPLACEMENT_CHARACTER = String.fromCharCode(0xfffd);

  function wellFormed(text) {
    return text.replace(/[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]/g, function (unit) {
      return unit.length === 2 ? unit : REPLACEMENT_CHARACTER;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Delivery. Events (ready-made URLs) and whenCommitted callbacks share one FIFO. One image is
  // in flight at a time; the next item starts when it loads or fails (no retry), or after the
  // event timeout (the slow request is not aborted). This keeps events in order on the server.
  // ---------------------------------------------------------------------------------------------
  var queue = [];
  var busy = false;
  var imagesInFlight = []; // referenced so no browser can garbage-collect a pending image

  function pump() {
    while (!busy && queue.length > 0) {
      var item = queue.shift();
      if (typeof item === "function") {
        item();
      } else {
        sendImage(item);
      }
    }
  }

  function sendImage(url) {
    busy = true;
    var finished = false;
    var image;
    var timer;
    function next() {
      if (!finished) {
        finished = true;
        clearTimeout(timer);
        busy = false;
        pump();
      }
    }
    function settled() {
      for (var i = 0; i < imagesInFlight.length; i++) {
        if (imagesInFlight[i] === image) {
          imagesInFlight.splice(i, 1);
        }
      }
      next();
    }
    try {
      image = new Image(1, 1);
      image.onload = settled;
      image.onerror = settled;
      imagesInFlight.push(image);
      timer = setTimeout(next, settings.eventTimeoutSeconds * 1000);
      image.src = url;
    } catch (e) {
      log("could not send", url, e);
      settled();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Events.
  // ---------------------------------------------------------------------------------------------
  function viewportSize(dimension) {
    var root = document.documentElement;
    var body = document.body;
    return window["inner" + dimension] ||
      (root && root["client" + dimension]) ||
      (body && body["client" + dimension]) ||
      undefined;
  }

  function base36(value) {
    return typeof value === "number" && isFinite(value) ? value.toString(36) : undefined;
  }

  function buildUrl(eventId, now, type, params) {
    var screen = window.screen || {};
    var encodedParams;
    if (params !== undefined) {
      try {
        encodedParams = encodeValue("", params, undefined, []);
      } catch (e) {
        // toJSON threw, or nesting too deep to recurse: send the event without its parameters.
        log("cannot encode parameters", e);
      }
    }
    // The order matters to nobody but humans reading logs; it is the order Divolte uses.
    var pairs = [
      ["p", partyId],
      ["s", sessionId],
      ["v", pageViewId],
      ["e", eventId],
      ["c", now.toString(36)],
      ["n", newPartyUnsent ? "t" : "f"],
      ["f", newSessionUnsent ? "t" : "f"],
      ["l", window.location.href],
      ["r", document.referrer || undefined],
      ["i", base36(screen.availWidth)],
      ["j", base36(screen.availHeight)],
      ["k", base36(window.devicePixelRatio)],
      ["w", base36(viewportSize("Width"))],
      ["h", base36(viewportSize("Height"))],
      ["t", String(type)],
      ["u", encodedParams === null ? undefined : encodedParams]
    ];
    newPartyUnsent = false;
    newSessionUnsent = false;

    var query = [];
    var canonical = [];
    for (var i = 0; i < pairs.length; i++) {
      if (pairs[i][1] !== undefined) {
        var value = wellFormed(pairs[i][1]);
        query.push(pairs[i][0] + "=" + encodeURIComponent(value));
        canonical.push(pairs[i][0] + "=" + value + ",;");
      }
    }
    // Keys are single letters, so sorting the "key=value,;" strings sorts by key.
    canonical.sort();
    query.push("x=" + murmur3(utf8Bytes(canonical.join(""))).toString(36));
    return eventUrl + query.join("&");
  }

  function signal(type, params) {
    if (!type) {
      return null;
    }
    if (!pageViewStarted) {
      startPageView(); // an event before the page became visible still belongs to a page view
    }
    var eventId = pageViewId + (eventCounter++).toString(16);
    try {
      var now = new Date().getTime();
      // Both cookies slide on every event, so a session ends after 30 idle minutes.
      writeCookie(settings.partyCookie, partyId, settings.partyTimeoutSeconds, now);
      writeCookie(settings.sessionCookie, sessionId, settings.sessionTimeoutSeconds, now);
      var url = buildUrl(eventId, now, type, params);
      log("signal", type, eventId, params);
      queue.push(url);
      pump();
    } catch (e) {
      log("signal failed", e); // never let tracking break the page
    }
    return eventId;
  }

  function whenCommitted(callback, timeoutMs) {
    if (typeof callback !== "function") {
      return;
    }
    var called = false;
    var timer;
    function once() {
      if (!called) {
        called = true;
        clearTimeout(timer);
        try {
          callback();
        } catch (e) {
          // The page's own error: report it like any uncaught error, but keep the queue going.
          setTimeout(function () { throw e; }, 0);
        }
      }
    }
    if (typeof timeoutMs === "number" && timeoutMs >= 0) {
      timer = setTimeout(once, timeoutMs);
    }
    queue.push(once);
    pump();
  }

  var api = {
    signal: signal,
    whenCommitted: whenCommitted,
    partyId: partyId,
    sessionId: sessionId,
    pageViewId: pageViewId,
    isNewPartyId: isNewParty,
    isFirstInSession: isNewSession,
    isServerPageView: isServerPageView
  };

  // The first page view uses the id made at load, so pageViewId doesn't change under the page
  // when a hidden (prerendered) page becomes visible. Later page views (bfcache re-shows) get a
  // new id, unless the server chose the id: then the id and the counter are kept, so event ids
  // stay unique.
  function startPageView() {
    if (pageViewStarted && !isServerPageView) {
      pageViewId = "0:" + randomChars();
      eventCounter = 0;
      api.pageViewId = pageViewId;
    }
    pageViewStarted = true;
    if (settings.autoPageViewEvent) {
      signal("pageView");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Publish the API.
  // ---------------------------------------------------------------------------------------------
  if (amdDefine) {
    amdDefine(function () { return api; });
  } else if (commonModule) {
    commonModule.exports = api;
  } else {
    window.divolte = api;
  }

  // ---------------------------------------------------------------------------------------------
  // Page views. A page that loads hidden (prerendered, opened in a background tab) starts its
  // page view when it is first shown, so it isn't counted if nobody ever sees it.
  // ---------------------------------------------------------------------------------------------
  var hiddenProperty = null;
  var visibilityEvent = null;
  var prefixes = ["", "webkit", "moz", "ms"];
  for (var p = 0; p < prefixes.length; p++) {
    var property = prefixes[p] ? prefixes[p] + "Hidden" : "hidden";
    if (property in document) {
      hiddenProperty = property;
      visibilityEvent = prefixes[p] + "visibilitychange";
      break;
    }
  }

  function listen(target, type, listener) {
    if (target.addEventListener) {
      target.addEventListener(type, listener, false);
    }
  }

  function unlisten(target, type, listener) {
    if (target.removeEventListener) {
      target.removeEventListener(type, listener, false);
    }
  }

  if (hiddenProperty !== null && document[hiddenProperty]) {
    var onVisibilityChange = function () {
      if (!document[hiddenProperty]) {
        unlisten(document, visibilityEvent, onVisibilityChange);
        if (!pageViewStarted) {
          startPageView();
        }
      }
    };
    listen(document, visibilityEvent, onVisibilityChange);
  } else {
    startPageView();
  }

  // Back/forward cache: a page restored from it runs no scripts again, so the tag must notice the
  // re-show itself. Every pageshow after a pagehide is such a re-show, and it starts a new page view.
  var onPageHide = function () {
    unlisten(window, "pagehide", onPageHide);
    listen(window, "pageshow", function () {
      startPageView();
    });
  };
  listen(window, "pagehide", onPageHide);
})(window, document);
