/*
 * oriel.js — the Oriel browser tag. Specification: docs/tag.md.
 *
 * Written for size as much as for clarity: the minified, gzipped file must stay within 3 KB.
 * Terser mangles local names but never property names, so state lives in local variables and
 * the only properties are the wire keys and the public API.
 */
(function (win, doc, nav, history) {
  "use strict";
  try {
    var existing = win.oriel;
    // A second copy of the tag on the same page must not count everything twice.
    if (existing && existing.ids) return;

    var script = doc.currentScript || {};
    var attrs = script.dataset || {};
    // The collector replaces this literal, quotes included, with a JSON object. Object() stops
    // the minifier from folding the literal away, and turns the unreplaced string (file served by
    // something else) into an object without settings, so every default applies.
    var config = Object("__ORIEL_CONFIG__");

    var site = attrs.site || config.site;
    var endpoint = attrs.endpoint || config.endpoint || new URL("/e", script.src || location.href).href;
    var cookieless = "cookieless" in attrs || config.cookieless;
    var hashMode = "hash" in attrs || config.hash;
    var sessionMs = (config.sessionMinutes || 30) * 6e4;
    var dnt = config.respectDnt !== false && (nav.doNotTrack == "1" || nav.globalPrivacyControl === true);
    // 1: may send; 0: withdrawn or Do Not Track, nothing is even queued; undefined: waiting for
    // consent(true), events wait in memory so the page view that preceded the banner still counts.
    var consented = dnt ? 0 : config.requireConsent ? undefined : 1;
    var downloads = attrs.downloads;
    var downloadRe = downloads != null && (downloads
      // \W+ turns "pdf, epub" into alternatives and keeps page-supplied text out of regex syntax.
      ? RegExp("\\.(" + downloads.replace(/\W+/g, "|") + ")$", "i")
      : /\.(pdf|zip|t?gz|dmg|exe|msi|pkg|deb|rpm|csv|xlsx?|docx?|pptx?|od[ts]|txt|mp[34]|mov|avi|wav|iso|apk)$/i);

    var queue = []; // events of this page not yet handed to the network
    var memory = {}; // stands in for localStorage when cookieless or when storage is blocked
    var timer, visitorId, sessionId, newVisitor, newSession, userId;
    var pageViewId, pageUrl, pageKey, engagedMs, visibleSince, scrollDepth, lastEngagement;

    var now = Date.now;

    // Everything the page or the browser calls goes through guard(): the tag never throws into
    // the host page, whatever the browser, the storage or the arguments look like.
    var guard = function (fn) {
      return function () {
        try {
          return fn.apply(this, arguments);
        } catch (e) {}
      };
    };
    var on = function (target, type, fn, options) {
      target.addEventListener(type, guard(fn), options);
    };

    // localStorage throws in some privacy modes and sandboxed frames; memory keeps ids stable for
    // the life of the page then. Cookieless mode must not write anything, not even the queue.
    var load = function (key) {
      try {
        return cookieless ? memory[key] : localStorage.getItem(key);
      } catch (e) {
        return memory[key];
      }
    };
    var save = function (key, value) {
      memory[key] = value;
      try {
        cookieless || (value ? localStorage.setItem(key, value) : localStorage.removeItem(key));
      } catch (e) {}
    };
    var stored = function () {
      try {
        return JSON.parse(load("oriel_q")) || [];
      } catch (e) {
        return []; // a corrupt queue must not block sending forever
      }
    };

    // 16 random bytes in base64url: 22 characters of [A-Za-z0-9_-].
    var randomId = function () {
      return btoa(String.fromCharCode.apply(0, crypto.getRandomValues(new Uint8Array(16))))
        .slice(0, 22).replace(/[+/]/g, function (c) {
          return c == "+" ? "-" : "_";
        });
    };

    // Reads the stored ids again each time, so tabs of the same visitor share a sliding session.
    var ensureIds = function () {
      if (consented && !cookieless) {
        var t = now();
        var visitor = (load("oriel_vid") || "").split(".");
        // NaN (missing or corrupt) fails the comparison too, and makes a new id.
        if (!(t - visitor[1] < 6.3e10)) {
          visitor = [randomId(), t];
          newVisitor = 1;
          save("oriel_vid", visitor.join("."));
        }
        visitorId = visitor[0];
        var session = (load("oriel_sid") || "").split(".");
        if (!(t - session[1] < sessionMs)) {
          session = [randomId()];
          newSession = 1;
        }
        sessionId = session[0];
        save("oriel_sid", sessionId + "." + t);
      }
    };

    var push = function (type, extra) {
      var id = randomId();
      if (consented !== 0) {
        ensureIds();
        queue.push(Object.assign({ id: id, t: type, ts: now(), pv: pageViewId, url: pageUrl }, extra));
        timer = timer || setTimeout(flush, 1e3);
      }
      return id;
    };

    // Keeps a batch that was not acknowledged for the next flush or page load. Other tabs may
    // have written to the queue meanwhile, so re-read it; the oldest events go first past 50.
    var keep = guard(function (batch) {
      if (consented) {
        var all = stored().concat([batch]);
        for (var i = all.length, n = 0; i--;) {
          n += all[i].ev.length;
          if (n > 50) {
            all[i].ev = all[i].ev.slice(n - 50);
            all = all.slice(i);
            break;
          }
        }
        save("oriel_q", JSON.stringify(all));
      }
    });

    var send = function (batch, hiding) {
      var body = JSON.stringify(batch);
      // A page being hidden may be gone before a fetch answers; a beacon survives it. Its outcome
      // is unknowable, so a queued beacon counts as delivered.
      if ((hiding || !win.fetch) && nav.sendBeacon && nav.sendBeacon(endpoint, body)) return;
      // A string body goes as text/plain: a simple request, no preflight. keepalive lets it
      // outlive a navigation, but browsers refuse keepalive bodies over 64 KB.
      fetch(endpoint, { method: "POST", body: body, keepalive: body.length < 6e4, mode: "cors" }).then(
        function (response) {
          // 4xx: resending the same batch cannot help, so it is dropped.
          response.status > 499 && keep(batch);
        },
        function () {
          keep(batch);
        }
      );
    };

    var flush = guard(function (hiding) {
      clearTimeout(timer);
      timer = 0;
      if (consented) {
        // Stored batches wait for a send whose answer can be read: a beacon from a page being
        // left could lose them again. Take them out first, so another tab does not send them too.
        var batches = hiding ? [] : stored();
        batches.length && save("oriel_q");
        queue.length && ensureIds();
        queue.forEach(function (event) {
          newVisitor && (event.nv = true);
          newSession && (event.fs = true);
        });
        // At most 50 events a batch: the collector refuses a batch over its limit (100 by
        // default) as a whole, and 50 is what the retry queue keeps anyway.
        while (queue.length) {
          batches.push({
            site: site, vid: visitorId, sid: sessionId, uid: userId,
            sw: screen.width, sh: screen.height, vw: innerWidth, vh: innerHeight,
            dpr: devicePixelRatio, lang: nav.language, wd: nav.webdriver || undefined, ev: queue.splice(0, 50),
          });
        }
        batches.forEach(function (batch) {
          send(batch, hiding);
        });
      }
    });

    var measureScroll = function () {
      var height = doc.documentElement.scrollHeight;
      // 0/0 is NaN for an empty document: count it as 0; an unscrollable page shows all of itself.
      scrollDepth = Math.max(scrollDepth, Math.min(100, Math.round((scrollY + innerHeight) / height * 100)) || 0);
    };

    var addVisibleTime = function () {
      var t = now();
      if (visibleSince) {
        engagedMs += t - visibleSince;
        visibleSince = t;
      }
    };

    // pagehide and visibilitychange both fire when a page is left; only send what changed.
    var sendEngagement = function () {
      addVisibleTime();
      measureScroll();
      var key = engagedMs + "." + scrollDepth;
      if (engagedMs && key != lastEngagement) {
        lastEngagement = key;
        push("engagement", { em: engagedMs, sd: scrollDepth });
      }
    };

    var pageView = function (referrer) {
      pageUrl = location.href;
      pageKey = hashMode ? pageUrl : pageUrl.split("#")[0];
      pageViewId = randomId();
      engagedMs = scrollDepth = 0;
      lastEngagement = "";
      visibleSince = doc.visibilityState == "visible" && now();
      measureScroll();
      push("pageView", { ref: referrer || undefined, ti: doc.title || undefined });
    };

    // Called after every history change: a new page view only when the URL really changed
    // (routers often replaceState the same URL to store state).
    var route = guard(function () {
      var url = location.href;
      if ((hashMode ? url : url.split("#")[0]) != pageKey) {
        sendEngagement();
        pageView(pageUrl);
      }
    });

    var leave = function () {
      sendEngagement();
      visibleSince = 0;
      flush(1);
    };

    var click = function (event) {
      var link = event.target.closest && event.target.closest("a[href]");
      // Middle clicks (auxclick, button 1) open links too; right clicks open a menu.
      if (link && event.button < 2) {
        var url = new URL(link.href, location.href);
        var type = downloadRe && (link.hasAttribute("download") || downloadRe.test(url.pathname))
          ? "download"
          : "outbound" in attrs && url.host != location.host && /^http/.test(url.protocol) && "outbound";
        if (type) {
          push(type, { p: { url: url.href } });
          // The page is probably about to go away: send now.
          flush();
        }
      }
    };

    var api = {
      track: function (name, props) {
        if (name) {
          var extra = {};
          try {
            // A copy now: the page may mutate the object later, and a cyclic one must fail here,
            // not in JSON.stringify at send time where it would take the whole batch down.
            props = JSON.parse(JSON.stringify(props));
            if (props && props.constructor == Object) extra.p = props;
          } catch (e) {}
          return push(String(name), extra);
        }
      },
      identify: function (id) {
        // user id is per batch on the wire: send what was queued under the previous one first.
        flush();
        userId = id == null ? undefined : String(id);
      },
      consent: function (given) {
        if (given) {
          if (!dnt) {
            consented = 1;
            ensureIds();
            flush();
          }
        } else {
          consented = 0;
          queue = [];
          visitorId = sessionId = undefined;
          save("oriel_vid");
          save("oriel_sid");
          save("oriel_q");
        }
      },
      ids: function () {
        return { visitor: visitorId || null, session: sessionId || null, pageView: pageViewId };
      },
    };

    var oriel = function (command) {
      try {
        return api[command].apply(api, [].slice.call(arguments, 1));
      } catch (e) {}
    };
    for (var name in api) oriel[name] = api[name] = guard(api[name]);
    win.oriel = oriel;

    ["pushState", "replaceState"].forEach(function (method) {
      var original = history[method];
      history[method] = function () {
        // The page's own errors from history propagate as before; route() never throws.
        var result = original.apply(this, arguments);
        route();
        return result;
      };
    });
    on(win, "popstate", route);
    hashMode && on(win, "hashchange", route);
    on(win, "scroll", measureScroll, { passive: true });
    on(doc, "visibilitychange", function () {
      doc.visibilityState == "visible" ? (visibleSince = now()) : leave();
    });
    on(win, "pagehide", leave);
    // A page restored from the back/forward cache runs no script again, yet it is a new visit.
    on(win, "pageshow", function (event) {
      event.persisted && pageView(doc.referrer);
    });
    // Capture phase: a page handler calling stopPropagation must not hide the click.
    on(doc, "click", click, true);
    on(doc, "auxclick", click, true);

    pageView(doc.referrer);
    // Calls made through the stub before the tag loaded, in their order.
    (existing && existing.q || []).forEach(function (args) {
      oriel.apply(0, args);
    });
  } catch (e) {}
})(window, document, navigator, history);
