// The server's view of the Divolte wire protocol (reference/divolte-protocol.md §1.7–1.9), written
// independently of tag/divolte.js so the browser tests can check the tag against it:
// query decoding, the `x` checksum rule, and a Mincode decoder.

/** MurmurHash3 x86_32 of a byte array, as a signed 32-bit integer. */
export function murmur3(bytes, seed = 0) {
  const c1 = 0xcc9e2d51, c2 = 0x1b873593;
  let h = seed | 0;
  const len = bytes.length;
  const tail = len - (len & 3);
  let k;
  for (let i = 0; i < tail; i += 4) {
    k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, c1); k = (k << 15) | (k >>> 17); k = Math.imul(k, c2);
    h ^= k; h = (h << 13) | (h >>> 19); h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  k = 0;
  switch (len & 3) {
    case 3: k ^= bytes[tail + 2] << 16; // falls through
    case 2: k ^= bytes[tail + 1] << 8; // falls through
    case 1: k ^= bytes[tail];
      k = Math.imul(k, c1); k = (k << 15) | (k >>> 17); k = Math.imul(k, c2); h ^= k;
  }
  h ^= len;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** Decodes one query component as the Divolte server does: `+` is a space, `%xx` is UTF-8. */
export function decodeComponent(raw) {
  const plus = raw.replace(/\+/g, " ");
  try {
    return decodeURIComponent(plus);
  } catch {
    // Malformed escapes: decode what can be decoded, byte by byte, with U+FFFD for bad UTF-8.
    const bytes = [];
    for (let i = 0; i < plus.length; i++) {
      if (plus[i] === "%" && /^[0-9a-fA-F]{2}$/.test(plus.slice(i + 1, i + 3))) {
        bytes.push(parseInt(plus.slice(i + 1, i + 3), 16)); i += 2;
      } else {
        bytes.push(...Buffer.from(plus[i], "utf8"));
      }
    }
    return Buffer.from(bytes).toString("utf8");
  }
}

/** Splits a raw query string (no leading `?`) into decoded [key, value] pairs in order. */
export function parseQuery(raw) {
  const pairs = [];
  for (const part of raw.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "" : part.slice(eq + 1);
    pairs.push([decodeComponent(key), decodeComponent(value)]);
  }
  return pairs;
}

/**
 * The server-side checksum rule: every received parameter except `x`, keys sorted (UTF-16 order),
 * values in arrival order, `key=v1,v2,;` concatenated, murmur3 of the UTF-8 bytes, signed base36.
 */
export function expectedChecksum(pairs) {
  const byKey = new Map();
  for (const [k, v] of pairs) {
    if (k === "x") continue;
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k).push(v);
  }
  const keys = [...byKey.keys()].sort();
  let canonical = "";
  for (const k of keys) canonical += k + "=" + byKey.get(k).map((v) => v + ",").join("") + ";";
  return murmur3(Buffer.from(canonical, "utf8")).toString(36);
}

/** Checks the `x` of a raw query string. Returns { valid, expected, actual }. */
export function checkQueryChecksum(raw) {
  const pairs = parseQuery(raw);
  const xs = pairs.filter(([k]) => k === "x").map(([, v]) => v);
  const expected = expectedChecksum(pairs);
  const actual = xs.length ? xs[0] : null;
  return { valid: actual !== null && actual === expected, expected, actual };
}

/** Exact base36 integer parse (parseInt is approximate above 2^53 for radix 36), as a Number. */
export function parseBase36(text) {
  const negative = text[0] === "-";
  let value = 0n;
  for (const ch of text.replace(/^[+-]/, "").toLowerCase()) value = value * 36n + BigInt(parseInt(ch, 36));
  return Number(negative ? -value : value);
}

/**
 * Decodes a Mincode string into a JSON value. Throws on malformed input (the server then treats
 * the parameters as absent). Accepts the whole grammar of §1.8, including the parser-only `o`.
 */
export function mincodeDecode(text) {
  if (typeof text !== "string") throw new Error(`mincode: not a string: ${text}`);
  let pos = 0;
  const fail = (why) => { throw new Error(`mincode: ${why} at ${pos} in ${JSON.stringify(text)}`); };
  const readString = () => {
    let out = "";
    for (;;) {
      if (pos >= text.length) fail("unterminated string");
      const ch = text[pos++];
      if (ch === "!") return out;
      if (ch === "~") {
        if (pos >= text.length) fail("dangling escape");
        const next = text[pos++];
        if (next !== "~" && next !== "!") fail("bad escape");
        out += next;
      } else {
        out += ch;
      }
    }
  };
  const readRaw = () => {
    const end = text.indexOf("!", pos);
    if (end < 0) fail("unterminated number");
    const raw = text.slice(pos, end);
    pos = end + 1;
    return raw;
  };
  // Returns [name, value]; name is undefined when `named` is false.
  const readRecord = (named) => {
    if (pos >= text.length) fail("missing record");
    const type = text[pos++];
    const name = named ? readString() : undefined;
    let value;
    switch (type) {
      case "s": value = readString(); break;
      case "t": value = true; break;
      case "f": value = false; break;
      case "n": value = null; break;
      case "o": value = {}; break;
      case "d": {
        const raw = readRaw();
        if (!/^[+-]?[0-9a-zA-Z]+$/.test(raw)) fail("bad integer");
        value = parseBase36(raw);
        break;
      }
      case "j": {
        const raw = readRaw();
        if (!/^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/.test(raw)) fail("bad number");
        value = Number(raw);
        break;
      }
      case "(": {
        value = {};
        while (text[pos] !== ")") {
          const [k, v] = readRecord(true);
          value[k] = v;
        }
        pos++;
        break;
      }
      case "a": {
        value = [];
        while (text[pos] !== ".") value.push(readRecord(false)[1]);
        pos++;
        break;
      }
      default: fail(`unknown type ${JSON.stringify(type)}`);
    }
    return [name, value];
  };
  const [, value] = readRecord(false);
  if (pos !== text.length) fail("trailing input");
  return value;
}

/** Structural equality of JSON values, ignoring object key order (a store may reorder keys). */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
  return jsonEqual(ka, kb) && ka.every((k) => jsonEqual(a[k], b[k]));
}

/** The order the tag sends parameters in; `x` always last. */
export const PARAM_ORDER = ["p", "s", "v", "e", "c", "n", "f", "l", "r", "i", "j", "k", "w", "h", "t", "u", "x"];

/** The 37-byte body and fixed ETag a Divolte-compatible collector answers events with. */
export const PIXEL_ETAG = '"6b3edc43-20ec-4078-bc47-e965dd76b88a"';
export const PIXEL_LENGTH = 37;
