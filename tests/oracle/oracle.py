"""Dashboard queries run in Oriel and in DuckDB over the same raw events; the answers must match.

    python oracle.py oriel  --url http://127.0.0.1:PORT --out oriel.json
    python oracle.py duckdb --events events.jsonl --oriel oriel.json

The first phase asks a running Oriel (segments and live buffer together); the second loads the
raw events as the event log holds them (`oriel log dump`) into DuckDB, runs the same questions
in DuckDB's dialect and compares: exact for counts and sums, 1e-9 relative for averages, and
3 % for APPROX_COUNT_DISTINCT (HyperLogLog). Exits 1 on any mismatch.
"""

import datetime
import json
import sys
import urllib.request

# (name, Oriel SQL, DuckDB SQL, tolerance): tolerance is "exact", "float" or "approx".
QUERIES = [
    ("total events", "SELECT count(*) FROM events", "SELECT count(*) FROM events", "exact"),
    (
        "events per minute",
        "SELECT TIME_FLOOR(__time, 'PT1M') AS t, count(*) FROM events GROUP BY 1 ORDER BY 1",
        "SELECT time_bucket(INTERVAL '1 minute', __time) AS t, count(*) FROM events GROUP BY 1 ORDER BY 1",
        "exact",
    ),
    (
        "events per hour and type",
        "SELECT FLOOR(__time TO HOUR) AS h, event_type, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT date_trunc('hour', __time) AS h, event_type, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2",
        "exact",
    ),
    (
        "page views per day",
        "SELECT TIME_FLOOR(__time, 'P1D') AS d, count(*) FROM events WHERE event_type = 'pageView' GROUP BY 1 ORDER BY 1",
        "SELECT date_trunc('day', __time) AS d, count(*) FROM events WHERE event_type = 'pageView' GROUP BY 1 ORDER BY 1",
        "exact",
    ),
    (
        "top pages",
        "SELECT path, count(*) AS views FROM events WHERE event_type = 'pageView' GROUP BY path ORDER BY views DESC, path LIMIT 10",
        "SELECT path, count(*) AS views FROM events WHERE event_type = 'pageView' GROUP BY path ORDER BY views DESC, path LIMIT 10",
        "exact",
    ),
    (
        "top referrers with distinct visitors",
        "SELECT referrer_host, count(*) AS views, count(DISTINCT party_id) AS visitors FROM events "
        "WHERE event_type = 'pageView' AND referrer_host IS NOT NULL GROUP BY 1 ORDER BY views DESC, referrer_host LIMIT 10",
        "SELECT referrer_host, count(*) AS views, count(DISTINCT party_id) AS visitors FROM events "
        "WHERE event_type = 'pageView' AND referrer_host IS NOT NULL GROUP BY 1 ORDER BY views DESC, referrer_host LIMIT 10",
        "exact",
    ),
    (
        "channels",
        "SELECT channel, count(*), count(DISTINCT session_id) FROM events WHERE event_type = 'pageView' GROUP BY 1 ORDER BY 1",
        "SELECT channel, count(*), count(DISTINCT session_id) FROM events WHERE event_type = 'pageView' GROUP BY 1 ORDER BY 1",
        "exact",
    ),
    (
        "campaign table",
        "SELECT utm_campaign, utm_source, utm_medium, count(DISTINCT session_id) AS sessions, "
        "sum(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases FROM events "
        "WHERE utm_campaign IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT utm_campaign, utm_source, utm_medium, count(DISTINCT session_id) AS sessions, "
        "sum(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases FROM events "
        "WHERE utm_campaign IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "exact",
    ),
    (
        "devices and browsers",
        "SELECT device_type, browser, count(DISTINCT party_id) FROM events GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT device_type, browser, count(DISTINCT party_id) FROM events GROUP BY 1, 2 ORDER BY 1, 2",
        "exact",
    ),
    (
        "filtered breakdown",
        "SELECT os, count(*) FROM events WHERE site = 'shop' AND device_type = 'mobile' GROUP BY os ORDER BY os",
        "SELECT os, count(*) FROM events WHERE site = 'shop' AND device_type = 'mobile' GROUP BY os ORDER BY os",
        "exact",
    ),
    (
        "approximate visitors per site",
        "SELECT site, APPROX_COUNT_DISTINCT(party_id) FROM events GROUP BY site ORDER BY site",
        "SELECT site, count(DISTINCT party_id) FROM events GROUP BY site ORDER BY site",
        "approx",
    ),
    (
        "engagement per site",
        "SELECT site, sum(engaged_ms), avg(scroll_depth), max(scroll_depth) FROM events WHERE event_type = 'engagement' GROUP BY site ORDER BY site",
        "SELECT site, sum(engaged_ms), avg(scroll_depth), max(scroll_depth) FROM events WHERE event_type = 'engagement' GROUP BY site ORDER BY site",
        "float",
    ),
    (
        "bounced sessions",
        "SELECT count(*) FROM (SELECT session_id, count(*) AS n FROM events WHERE event_type = 'pageView' GROUP BY session_id) s WHERE n = 1",
        "SELECT count(*) FROM (SELECT session_id, count(*) AS n FROM events WHERE event_type = 'pageView' GROUP BY session_id) s WHERE n = 1",
        "exact",
    ),
    (
        "sessions and views per site",
        "SELECT site, count(DISTINCT session_id), count(*), count(*) * 1.0 / count(DISTINCT session_id) FROM events "
        "WHERE event_type = 'pageView' GROUP BY site ORDER BY site",
        "SELECT site, count(DISTINCT session_id), count(*), count(*) * 1.0 / count(DISTINCT session_id) FROM events "
        "WHERE event_type = 'pageView' GROUP BY site ORDER BY site",
        "float",
    ),
    (
        "visitors per hour and country",
        "SELECT TIME_FLOOR(__time, 'PT1H') AS h, country, count(DISTINCT party_id) FROM events GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST",
        "SELECT date_trunc('hour', __time) AS h, country, count(DISTINCT party_id) FROM events GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST",
        "exact",
    ),
    (
        "new and returning",
        "SELECT is_new_party, count(*) FROM events WHERE event_type = 'pageView' GROUP BY 1 ORDER BY 1 NULLS FIRST",
        "SELECT is_new_party, count(*) FROM events WHERE event_type = 'pageView' GROUP BY 1 ORDER BY 1 NULLS FIRST",
        "exact",
    ),
    (
        "landing pages",
        "SELECT path, count(*) AS n FROM events WHERE is_first_in_session AND event_type = 'pageView' GROUP BY path ORDER BY n DESC, path LIMIT 10",
        "SELECT path, count(*) AS n FROM events WHERE is_first_in_session AND event_type = 'pageView' GROUP BY path ORDER BY n DESC, path LIMIT 10",
        "exact",
    ),
    (
        "time window",
        "SELECT count(*), count(DISTINCT party_id) FROM events WHERE __time >= (SELECT min(__time) FROM events) + INTERVAL '2' SECOND "
        "AND __time < (SELECT max(__time) FROM events)",
        "SELECT count(*), count(DISTINCT party_id) FROM events WHERE __time >= (SELECT min(__time) FROM events) + INTERVAL '2' SECOND "
        "AND __time < (SELECT max(__time) FROM events)",
        "exact",
    ),
    (
        "custom events",
        "SELECT event_type, site, count(*) FROM events WHERE event_type IN ('signup', 'purchase', 'addToCart') GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT event_type, site, count(*) FROM events WHERE event_type IN ('signup', 'purchase', 'addToCart') GROUP BY 1, 2 ORDER BY 1, 2",
        "exact",
    ),
]

COLUMNS = {
    "__time": "BIGINT", "client_time": "BIGINT", "site": "VARCHAR", "event_id": "VARCHAR", "event_type": "VARCHAR",
    "party_id": "VARCHAR", "session_id": "VARCHAR", "page_view_id": "VARCHAR", "is_new_party": "BOOLEAN",
    "is_first_in_session": "BOOLEAN", "user_id": "VARCHAR", "url": "VARCHAR", "host": "VARCHAR", "path": "VARCHAR",
    "query": "VARCHAR", "title": "VARCHAR", "referrer": "VARCHAR", "referrer_host": "VARCHAR", "channel": "VARCHAR",
    "utm_source": "VARCHAR", "utm_medium": "VARCHAR", "utm_campaign": "VARCHAR", "utm_term": "VARCHAR",
    "utm_content": "VARCHAR", "browser": "VARCHAR", "browser_version": "VARCHAR", "os": "VARCHAR",
    "os_version": "VARCHAR", "device_type": "VARCHAR", "language": "VARCHAR", "screen_width": "INTEGER",
    "screen_height": "INTEGER", "viewport_width": "INTEGER", "viewport_height": "INTEGER", "pixel_ratio": "DOUBLE",
    "country": "VARCHAR", "region": "VARCHAR", "city": "VARCHAR", "ip": "VARCHAR", "engaged_ms": "BIGINT",
    "scroll_depth": "INTEGER", "props": "VARCHAR", "is_bot": "BOOLEAN", "is_duplicate": "BOOLEAN",
    "is_corrupt": "BOOLEAN", "source": "VARCHAR",
}


def oriel(url, token, out):
    answers = {}
    for name, sql, _, _ in QUERIES:
        request = urllib.request.Request(
            url.rstrip("/") + "/api/v1/sql",
            data=json.dumps({"query": sql}).encode(),
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as e:
            sys.exit(f"oriel refused {name!r}: {e.read().decode()}")
        if "error" in answer:
            sys.exit(f"oriel failed {name!r} part-way: {answer['error']}")
        answers[name] = answer["rows"]
    with open(out, "w") as f:
        json.dump(answers, f)
    print(f"oriel: {len(answers)} queries answered")


def normalize(value):
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, bool):
        return value
    if hasattr(value, "__float__") and not isinstance(value, (int, float)):
        return float(value)
    return value


def same(a, b, tolerance):
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return a == b
    if tolerance == "exact" and isinstance(a, int) and isinstance(b, int):
        return a == b
    rel = 0.03 if tolerance == "approx" else 1e-9
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def load_events(events):
    """A DuckDB connection with table `events` holding the JSON-lines events of file `events`."""
    import duckdb

    con = duckdb.connect()
    columns = ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items())
    select = ", ".join(f'"{k}"' if k != "__time" else 'epoch_ms("__time") AS "__time"' for k in COLUMNS)
    con.execute(
        f"CREATE TABLE events AS SELECT {select} FROM read_json('{events}', format = 'newline_delimited', "
        f"columns = {{{columns}}})"
    )
    return con


def duckdb_check(events, oriel_answers):
    con = load_events(events)
    with open(oriel_answers) as f:
        answers = json.load(f)
    total = con.execute("SELECT count(*) FROM events").fetchone()[0]
    failures = []
    for name, _, sql, tolerance in QUERIES:
        expected = [[normalize(v) for v in row] for row in con.execute(sql).fetchall()]
        got = answers.get(name)
        ok = got is not None and len(got) == len(expected) and all(
            len(g) == len(e) and all(same(x, y, tolerance) for x, y in zip(g, e)) for g, e in zip(got, expected)
        )
        if not ok:
            failures.append(f"{name}:\n  oriel:  {json.dumps(got)[:600]}\n  duckdb: {json.dumps(expected)[:600]}")
    if failures:
        print(f"{len(failures)} of {len(QUERIES)} queries differ:\n" + "\n".join(failures))
        sys.exit(1)
    print(f"duckdb: all {len(QUERIES)} queries match over {total} events")


def main():
    args = sys.argv[1:]
    opts = dict(zip(args[1::2], args[2::2]))
    if args and args[0] == "oriel":
        oriel(opts["--url"], opts["--token"], opts["--out"])
    elif args and args[0] == "duckdb":
        duckdb_check(opts["--events"], opts["--oriel"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
