"""Brute-force answers to Oriel's product analytics, written apart from Oriel's SQL.

    python analytics.py --events a.jsonl [b.jsonl …] --deleted PARTY --context context.json \
        --cases cases.json

`cases.json` is a list of {"kind": "sessions"|"funnel"|"retention"|"paths", "request": {…},
"answer": {…}} with Oriel's answers; every answer is recomputed here by walking the raw events
one visitor at a time, and compared (counts exactly, averages and percentages to 1e-9).
Exits 1 on any mismatch. The definitions are those of docs/api.md.
"""

import argparse
import datetime
import json
import re
import statistics
import sys
from collections import defaultdict
from zoneinfo import ZoneInfo

ENGAGEMENT = "engagement"


def parse_time(text):
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def local_midnight(date_text, zone):
    d = datetime.date.fromisoformat(date_text)
    return int(datetime.datetime(d.year, d.month, d.day, tzinfo=zone).timestamp() * 1000)


def resolve_range(spec, zone):
    def instant(text):
        return local_midnight(text, zone) if "T" not in text else parse_time(text)

    return instant(spec["start"]), instant(spec["end"])


def text_of(event, dimension):
    if dimension.startswith("prop:"):
        props = event.get("props")
        if props is None:
            return None
        value = json.loads(props).get(dimension[5:])
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    value = event.get(dimension)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def filter_holds(event, f):
    x = text_of(event, f["dimension"])
    values = f.get("values", [])
    op = f["op"]
    if op == "is":
        return x is not None and x in values
    if op == "isNot":
        return x is None or x not in values
    if op == "contains":
        return x is not None and any(v.lower() in x.lower() for v in values)
    raise ValueError(f"the oracle does not know filter op {op}")


def matcher_holds(event, m):
    if m.get("eventType") is not None and event["event_type"] != m["eventType"]:
        return False
    if m.get("path") is not None:
        if event["event_type"] != "pageView" or event.get("path") is None:
            return False
        pattern = "^" + ".*".join(re.escape(p) for p in m["path"].split("*")) + "$"
        if not re.match(pattern, event["path"]):
            return False
    return all(filter_holds(event, f) for f in m.get("filters", []))


def step_holds(event, step, goals):
    if step.get("goal"):
        goal = goals[step["goal"]]
        if goal.get("site") is not None and event.get("site") != goal["site"]:
            return False
        return matcher_holds(event, goal)
    return matcher_holds(event, step)


def order_key(e):
    return (e["t"], e.get("event_id") or "")


class Data:
    def __init__(self, events, context):
        self.all = events
        self.context = context
        self.goals = {g["name"]: g for g in context["goals"]}

    def scoped(self, request, until_end_only=False):
        zone = ZoneInfo(request.get("timeZone") or "UTC")
        start, end = resolve_range(request["range"], zone)
        out = []
        for e in self.all:
            if e.get("is_bot") or e.get("is_duplicate") or e.get("is_corrupt") or e.get("party_id") is None:
                continue
            if request.get("site") is not None and e.get("site") != request["site"]:
                continue
            if e["t"] >= end or (not until_end_only and e["t"] < start):
                continue
            out.append(e)
        return out, zone, start, end

    def hit(self, request, e):
        return all(filter_holds(e, f) for f in request.get("filters", []))

    def timeout(self, site):
        return self.context["site_timeouts_ms"].get(site, self.context["session_timeout_ms"])

    def sessions_of(self, events):
        """{session: [events in order]}, cutting events without the tag's id at pauses. A session
        is one visitor's: the same tag id under two visitors makes two sessions."""
        out = defaultdict(list)
        untagged = defaultdict(list)
        for e in events:
            if e.get("session_id") is not None:
                out[(e["party_id"], "tag", e["session_id"])].append(e)
            else:
                untagged[e["party_id"]].append(e)
        for party, evs in untagged.items():
            evs.sort(key=order_key)
            n, last = 0, None
            for e in evs:
                if last is None or e["t"] - last > self.timeout(e.get("site")):
                    n += 1
                last = e["t"]
                out[(party, "cut", n)].append(e)
        for evs in out.values():
            evs.sort(key=order_key)
        return out


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def sessions(data, request):
    events, _, _, _ = data.scoped(request)
    all_sessions = data.sessions_of(events)
    kept = {sid: evs for sid, evs in all_sessions.items() if any(data.hit(request, e) for e in evs)}

    def measures(group, key):
        durations = [evs[-1]["t"] - evs[0]["t"] for evs in group]
        views = [sum(1 for e in evs if e["event_type"] == "pageView") for evs in group]
        with_views = [v for v in views if v > 0]
        return {
            "key": key,
            "sessions": len(group),
            "visitors": len({evs[0]["party_id"] for evs in group}),
            "avgDurationSeconds": (sum(durations) / len(group) / 1000.0) if group else None,
            "bounceRate": (100.0 * sum(1 for v in with_views if v == 1) / len(with_views)) if with_views else None,
            "pagesPerSession": (sum(views) / len(group)) if group else None,
        }

    def grouped(key_of, keep_none=False):
        groups = defaultdict(list)
        for evs in kept.values():
            k = key_of(evs)
            if k is not None or keep_none:
                groups[k].append(evs)
        return {k: measures(g, k) for k, g in groups.items()}

    def pages(evs):
        return [e["path"] for e in evs if e["event_type"] == "pageView"]

    out = {"totals": measures(list(kept.values()), None)}
    out["entryPages"] = grouped(lambda evs: (pages(evs) or [None])[0])
    out["exitPages"] = grouped(lambda evs: (pages(evs) or [None])[-1])
    if request.get("breakdown"):
        out["breakdown"] = grouped(lambda evs: text_of(evs[0], request["breakdown"]), keep_none=True)
    return out


def walk(events, steps, data, window_ms, strict):
    """Step times of the earliest start that goes furthest (see docs/api.md)."""
    n = len(steps)
    matches = [[step_holds(e, s, data.goals) for s in steps] for e in events]
    best = []
    for start in range(len(events)):
        if not matches[start][0]:
            continue
        chain, at = [events[start]["t"]], start
        for k in range(1, n):
            nxt = None
            if strict:
                if at + 1 < len(events) and matches[at + 1][k]:
                    nxt = at + 1
            else:
                nxt = next((i for i in range(at + 1, len(events)) if matches[i][k]), None)
            if nxt is None or events[nxt]["t"] - events[start]["t"] > window_ms:
                break
            chain.append(events[nxt]["t"])
            at = nxt
        if len(chain) > len(best):
            best = chain
    return best


def funnel(data, request):
    events, _, _, _ = data.scoped(request)
    steps = request["steps"]
    strict = request.get("order") == "strict"
    window_ms = request.get("windowSeconds", 86400) * 1000
    if request.get("countBy") == "session":
        units = data.sessions_of(events)
    else:
        units = defaultdict(list)
        for e in events:
            units[e["party_id"]].append(e)
        for evs in units.values():
            evs.sort(key=order_key)
    chains = {}
    for unit, evs in units.items():
        if not any(data.hit(request, e) for e in evs):
            continue
        seen = [e for e in evs if e["event_type"] != ENGAGEMENT] if strict else evs
        if not strict:
            seen = [e for e in seen if any(step_holds(e, s, data.goals) for s in steps)]
        chain = walk(seen, steps, data, window_ms, strict)
        if chain:
            key = text_of(evs[0], request["breakdown"]) if request.get("breakdown") else None
            chains[unit] = (key, chain)

    def group(members):
        counts = [sum(1 for c in members if len(c) > k) for k in range(len(steps))]
        out = []
        for k in range(len(steps)):
            gaps = [(c[k] - c[k - 1]) for c in members if len(c) > k] if k > 0 else []
            out.append(
                {
                    "count": counts[k],
                    "dropped": 0 if k == 0 else counts[k - 1] - counts[k],
                    "conversionFromPrevious": (100.0 * counts[k] / (counts[k - 1] if k else counts[0]))
                    if (counts[k - 1] if k else counts[0])
                    else None,
                    "conversionFromFirst": (100.0 * counts[k] / counts[0]) if counts[0] else None,
                    "medianSecondsFromPrevious": (statistics.median(gaps) / 1000.0) if gaps else None,
                }
            )
        return out

    out = {"totals": group([c for _, c in chains.values()])}
    if request.get("breakdown"):
        keys = defaultdict(list)
        for key, chain in chains.values():
            keys[key].append(chain)
        out["breakdown"] = {k: group(v) for k, v in keys.items()}
    return out


def floor_period(ms, period, zone):
    t = datetime.datetime.fromtimestamp(ms / 1000, tz=zone)
    d = t.date()
    if period == "week":
        d = d - datetime.timedelta(days=d.weekday())
    elif period == "month":
        d = d.replace(day=1)
    return d


def retention(data, request):
    events, zone, start, end = data.scoped(request, until_end_only=True)
    period = request.get("period", "week")
    cohort_step = request.get("cohortEvent")
    return_step = request.get("returnEvent")
    first_start = floor_period(start, period, zone)
    cohort_of, active = {}, defaultdict(set)
    hit = set()
    for e in events:
        p = floor_period(e["t"], period, zone)
        if e["t"] >= start and data.hit(request, e):
            hit.add(e["party_id"])
        if cohort_step is None or step_holds(e, cohort_step, data.goals):
            if e["party_id"] not in cohort_of or p < cohort_of[e["party_id"]]:
                cohort_of[e["party_id"]] = p
        if return_step is None or step_holds(e, return_step, data.goals):
            active[e["party_id"]].add(p)
    cohorts = defaultdict(list)
    for party, c in cohort_of.items():
        if party in hit and c >= first_start:
            cohorts[c].append(party)

    def next_period(d, i):
        if period == "day":
            return d + datetime.timedelta(days=i)
        if period == "week":
            return d + datetime.timedelta(days=7 * i)
        month = d.month - 1 + i
        return d.replace(year=d.year + month // 12, month=month % 12 + 1)

    out = []
    for c in sorted(cohorts):
        members = cohorts[c]
        returned = []
        for i in range(request.get("periods", 8) + 1):
            p = next_period(c, i)
            if local_midnight(p.isoformat(), zone) >= end:
                break
            returned.append(sum(1 for m in members if p in active[m]))
        out.append({"start": c.isoformat(), "size": len(members), "returned": returned})
    return {"cohorts": out}


def paths(data, request):
    events, _, _, _ = data.scoped(request)
    by_event = request.get("by") == "event"
    depth = request.get("depth", 3)
    breadth = request.get("breadth", 5)
    forward = request.get("direction", "next") == "next"
    ended = "(end)" if forward else "(start)"
    counts = defaultdict(int)  # prefix tuple → occurrences
    for evs in data.sessions_of(events).values():
        if not any(data.hit(request, e) for e in evs):
            continue
        if by_event:
            labels = [e["path"] if e["event_type"] == "pageView" else e["event_type"] for e in evs if e["event_type"] != ENGAGEMENT]
        else:
            labels = [e["path"] for e in evs if e["event_type"] == "pageView"]
        for i, label in enumerate(labels):
            if label != request["from"]:
                continue
            prefix = ()
            counts[prefix] += 1
            for d in range(1, depth + 1):
                j = i + d if forward else i - d
                nxt = labels[j] if 0 <= j < len(labels) else None
                prefix = prefix + (nxt if nxt is not None else ended,)
                counts[prefix] += 1
                if nxt is None:
                    break

    def node(label, prefix):
        out = {"label": label, "count": counts[prefix], "children": []}
        if len(prefix) >= depth or label == ended:
            return out
        kids = [p for p in counts if len(p) == len(prefix) + 1 and p[: len(prefix)] == prefix]
        kids.sort(key=lambda p: (-counts[p], p[-1]))
        children = [node(p[-1], p) for p in kids[:breadth]]
        if len(kids) > breadth:
            children.append({"label": "(other)", "count": sum(counts[p] for p in kids[breadth:]), "children": []})
        out["children"] = children
        return out

    return {"root": node(request["from"], ())}


def compare(path, expected, got, problems):
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            problems.append(f"{path}: expected an object, got {got!r}")
            return
        for k, v in expected.items():
            compare(f"{path}.{k}", v, got.get(k), problems)
    elif isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            problems.append(f"{path}: expected {expected!r}, got {got!r}")
            return
        for i, (e, g) in enumerate(zip(expected, got)):
            compare(f"{path}[{i}]", e, g, problems)
    elif isinstance(expected, float) or isinstance(got, float):
        if not close(expected, got):
            problems.append(f"{path}: expected {expected!r}, got {got!r}")
    elif expected != got:
        problems.append(f"{path}: expected {expected!r}, got {got!r}")


def keyed(rows):
    return {row["key"]: row for row in rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", nargs="+", required=True)
    parser.add_argument("--deleted", action="append", default=[])
    parser.add_argument("--context", required=True)
    parser.add_argument("--cases", required=True)
    args = parser.parse_args()
    events = []
    for path in args.events:
        with open(path) as f:
            for line in f:
                if line.strip():
                    e = json.loads(line)
                    if e.get("party_id") in args.deleted:
                        continue
                    e["t"] = e["__time"] if isinstance(e["__time"], int) else parse_time(e["__time"])
                    events.append(e)
    with open(args.context) as f:
        data = Data(events, json.load(f))
    with open(args.cases) as f:
        cases = json.load(f)
    problems = []
    for n, case in enumerate(cases):
        kind, request, answer = case["kind"], case["request"], case["answer"]
        name = f"case {n} ({kind})"
        if kind == "sessions":
            expected = sessions(data, request)
            got = {
                "totals": answer["totals"],
                "entryPages": keyed(answer["entryPages"]),
                "exitPages": keyed(answer["exitPages"]),
            }
            if "breakdown" in expected:
                got["breakdown"] = keyed(answer["breakdown"])
        elif kind == "funnel":
            expected = funnel(data, request)
            got = {"totals": answer["totals"]["steps"]}
            if "breakdown" in expected:
                got["breakdown"] = {g["key"]: g["steps"] for g in answer["breakdown"]}
        elif kind == "retention":
            expected = retention(data, request)
            got = {
                "cohorts": [
                    {"start": c["start"][:10], "size": c["size"], "returned": c["returned"]} for c in answer["cohorts"]
                ]
            }
        elif kind == "paths":
            expected = paths(data, request)
            got = {"root": answer["root"]}
        else:
            raise ValueError(kind)
        before = len(problems)
        compare(name, expected, got, problems)
        print(f"{'ok  ' if len(problems) == before else 'FAIL'} {name}: {json.dumps(request)[:160]}")
    for p in problems[:40]:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
