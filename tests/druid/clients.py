"""The real Druid clients against a running Oriel, every number held against DuckDB.

    python clients.py --url http://127.0.0.1:PORT --user U --password P --events events.jsonl \
        --start 2026-11-24T00:00:00Z --end 2026-11-27T00:00:00Z --plywood tests/druid/plywood.mjs

The events file holds exactly the events Oriel serves (the test imported it). Scenarios:
pydruid's DB-API cursor and its SQLAlchemy dialect as Superset uses them (the inspector's
schemas, tables and columns, a time-bucketed aggregate, a filtered top-N built with SQLAlchemy
core), pydruid's native client (timeseries, topN, groupBy), and plywood (Turnilo's query layer,
run by plywood.mjs). Exits 1 listing every difference.
"""

import datetime
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import oracle  # noqa: E402

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message=".*supports_statement_cache.*")

from pydruid.client import PyDruid  # noqa: E402
from pydruid.db import connect  # noqa: E402
from pydruid.utils.aggregators import count, longsum  # noqa: E402
from pydruid.utils.filters import Dimension  # noqa: E402
from sqlalchemy import MetaData, Table, create_engine, desc, func, inspect, select, text  # noqa: E402

FAILURES = []
CHECKED = []


def iso(value):
    """DuckDB's timestamps as Druid writes them."""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value


def check(name, got, expected):
    CHECKED.append(name)
    if got != expected:
        FAILURES.append(f"{name}:\n  oriel:  {json.dumps(got, default=str)[:800]}\n  duckdb: {json.dumps(expected, default=str)[:800]}")


def rows(con, sql, *params):
    return [[iso(v) for v in row] for row in con.execute(sql, list(params)).fetchall()]


def pydruid_sql(url, user, password, con, start, end):
    host, port = url.removeprefix("http://").split(":")
    cursor = connect(host=host, port=int(port), path="/druid/v2/sql/", scheme="http", user=user, password=password).cursor()
    cursor.execute("SELECT COUNT(*) AS n FROM events")
    check("DB-API: count", [list(r) for r in cursor.fetchall()], rows(con, "SELECT count(*) FROM events"))
    cursor.execute('SELECT "site", COUNT(DISTINCT "party_id") AS "visitors" FROM "druid"."events" GROUP BY "site" ORDER BY "site"')
    check("DB-API: visitors per site", [list(r) for r in cursor.fetchall()],
          rows(con, "SELECT site, count(DISTINCT party_id) FROM events GROUP BY site ORDER BY site"))

    engine = create_engine(f"druid://{user}:{password}@{host}:{port}/druid/v2/sql/")
    inspector = inspect(engine)
    check("inspector: schemas", "druid" in inspector.get_schema_names(), True)
    check("inspector: tables", inspector.get_table_names(schema="druid"), ["events"])
    check("inspector: has_table", inspector.has_table("events"), True)
    columns = {c["name"]: str(c["type"]) for c in inspector.get_columns("events", schema="druid")}
    check("inspector: column names", sorted(columns), sorted(oracle.COLUMNS))
    check("inspector: column types", [columns["__time"], columns["country"], columns["engaged_ms"], columns["pixel_ratio"]],
          ["TIMESTAMP", "VARCHAR", "BIGINT", "FLOAT"])

    # Superset's time-bucketed chart query, verbatim in form.
    day = start[:10]
    bucketed = text(
        'SELECT TIME_FLOOR(CAST("__time" AS TIMESTAMP), \'PT1H\') AS "__time", "country" AS "country", COUNT(*) AS "count" '
        'FROM "druid"."events" '
        f'WHERE "__time" >= TIME_PARSE(\'{day}T00:00:00\') AND "__time" < TIME_PARSE(\'{day}T12:00:00\') '
        'GROUP BY TIME_FLOOR(CAST("__time" AS TIMESTAMP), \'PT1H\'), "country" ORDER BY "__time", "country" LIMIT 10000'
    )
    with engine.connect() as connection:
        got = [list(r) for r in connection.execute(bucketed).fetchall()]
        table = Table("events", MetaData(), autoload_with=engine, schema="druid")
        top = (
            select(table.c.utm_medium, func.count().label("count"))
            .where(table.c.device_type == "mobile")
            .group_by(table.c.utm_medium)
            .order_by(desc("count"), table.c.utm_medium)
            .limit(5)
        )
        top_rows = [list(r) for r in connection.execute(top).fetchall()]
    check("SQLAlchemy: hourly by country", got, rows(
        con,
        "SELECT date_trunc('hour', __time) AS h, country, count(*) FROM events "
        f"WHERE __time >= TIMESTAMP '{day} 00:00:00' AND __time < TIMESTAMP '{day} 12:00:00' "
        "GROUP BY 1, 2 ORDER BY 1, 2 NULLS LAST"))
    check("SQLAlchemy core: filtered top-N", top_rows, rows(
        con,
        "SELECT utm_medium, count(*) AS c FROM events WHERE device_type = 'mobile' GROUP BY 1 ORDER BY c DESC, utm_medium NULLS LAST LIMIT 5"))


def pydruid_native(url, user, password, con, start, end):
    client = PyDruid(url, "druid/v2")
    client.set_basic_auth_credentials(user, password)
    interval = f"{start}/{end}"
    series = client.timeseries(datasource="events", granularity="day", intervals=interval,
                               aggregations={"count": count("count"), "ms": longsum("engaged_ms")})
    check("PyDruid: timeseries by day", [[e["timestamp"], e["result"]["count"], e["result"]["ms"]] for e in series.result],
          rows(con, "SELECT date_trunc('day', __time) AS d, count(*), sum(engaged_ms) FROM events GROUP BY 1 ORDER BY 1"))
    top = client.topn(datasource="events", granularity="all", intervals=interval, aggregations={"count": count("count")},
                      dimension="country", metric="count", threshold=5)
    check("PyDruid: topN countries", [[r["country"], r["count"]] for r in top.result[0]["result"]],
          rows(con, "SELECT country, count(*) AS c FROM events GROUP BY 1 ORDER BY c DESC, country NULLS LAST LIMIT 5"))
    grouped = client.groupby(datasource="events", granularity="all", intervals=interval, dimensions=["site", "device_type"],
                             aggregations={"count": count("count"), "ms": longsum("engaged_ms")},
                             filter=Dimension("event_type") == "engagement")
    got = sorted([e["event"]["site"], e["event"]["device_type"], e["event"]["count"], e["event"]["ms"]] for e in grouped.result)
    check("PyDruid: groupBy site and device, filtered", got, rows(
        con, "SELECT site, device_type, count(*), sum(engaged_ms) FROM events WHERE event_type = 'engagement' "
        "GROUP BY 1, 2 ORDER BY 1, 2"))


def plywood(script, url, user, password, con, start, end):
    out = subprocess.run(
        ["node", script, "--host", url.removeprefix("http://"), "--user", user, "--password", password, "--start", start, "--end", end],
        capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        FAILURES.append(f"plywood failed:\n{out.stderr[-3000:]}")
        return
    got = json.loads(out.stdout)
    attributes = dict(got["attributes"])
    check("plywood: introspection", [attributes.get(n) for n in ["__time", "country", "engaged_ms", "is_bot"]],
          ["TIME", "STRING", "NUMBER", "STRING"])
    check("plywood: total", got["total"], con.execute("SELECT count(*) FROM events").fetchone()[0])
    check("plywood: count distinct", got["visitors"], con.execute("SELECT count(DISTINCT party_id) FROM events").fetchone()[0])
    check("plywood: sum", got["engaged"], con.execute("SELECT sum(engaged_ms) FROM events").fetchone()[0])
    check("plywood: time split", got["hourly"],
          rows(con, "SELECT date_trunc('hour', __time) AS h, count(*) FROM events GROUP BY 1 ORDER BY 1"))
    check("plywood: one-dimension split", got["countries"],
          rows(con, "SELECT country, count(*) AS c FROM events GROUP BY 1 ORDER BY c DESC, country NULLS LAST LIMIT 5"))
    check("plywood: two-dimension split", got["sitesAndDevices"], rows(
        con, "SELECT site, device_type, count(*) AS c, count(DISTINCT party_id) FROM events GROUP BY 1, 2 "
        "ORDER BY c DESC, site, device_type LIMIT 10"))
    check("plywood: filtered split", got["mobileOs"], rows(
        con, "SELECT os, count(*) AS c FROM events WHERE device_type = 'mobile' AND event_type IN ('pageView', 'engagement') "
        "GROUP BY 1 ORDER BY c DESC, os NULLS LAST LIMIT 5"))
    check("plywood: raw rows", got["raw"], rows(con, "SELECT __time, event_id, site FROM events ORDER BY __time, event_id LIMIT 5"))


def main():
    args = sys.argv[1:]
    opts = dict(zip(args[0::2], args[1::2]))
    url, user, password = opts["--url"], opts["--user"], opts["--password"]
    start, end = opts["--start"], opts["--end"]
    con = oracle.load_events(opts["--events"])
    pydruid_sql(url, user, password, con, start, end)
    pydruid_native(url, user, password, con, start, end)
    plywood(opts["--plywood"], url, user, password, con, start, end)
    if FAILURES:
        print(f"{len(FAILURES)} of {len(CHECKED)} checks differ:\n" + "\n".join(FAILURES))
        sys.exit(1)
    print(f"pydruid and plywood: all {len(CHECKED)} checks equal DuckDB's answers")


if __name__ == "__main__":
    main()
