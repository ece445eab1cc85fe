#!/usr/bin/env python3
"""Oriel against its peers, side by side in one run, on this machine: writes bench/RESULTS.md.

Areas (each a table in the report):

1. Collector: wrk against Oriel's GET /e.gif and POST /e and against nginx (empty_gif, return
   204) with the same connections and duration; afterwards Oriel's SQL count of the events it
   stored is checked against wrk's count of 2xx answers (every acknowledged event is durable).
2. Freshness: a sender at a fixed rate stamps each event with the time of its 2xx; a poller asks
   SQL for new event ids; per event, ms from the 2xx to the poll answer that first shows it.
3. Ingest: `oriel gen --url` at full speed through HTTP until every event is visible, then the
   same log replayed into an empty store (data_dir/store deleted), per Oriel CPU-second.
4. Queries: the dashboard suite of tests/oracle/oracle.py plus sessions, funnel and retention
   written with window functions, on `oriel gen` data, in Oriel, DuckDB (table and Parquet),
   chDB (MergeTree) and DataFusion; every answer is checked against an exact DuckDB reference
   before its time counts.
5. Footprint: bytes per event on disk and Oriel's resident memory (idle, under load, querying).

A result is a ratio measured in this run; absolute numbers are for reading, not for comparing
across runs or machines. `--smoke` runs everything tiny, fails on any wrong answer or crash and
writes its report to a temporary file.

This file is also the peer query worker: `harness.py --worker ENGINE ...` (one process per
engine, so a crash or a memory peak is that engine's own and nothing stays resident after).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import decimal
import hashlib
import http.client
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CACHE = Path(os.environ.get("ORIEL_CACHE", Path.home() / ".cache" / "oriel"))
VENV = CACHE / "bench-venv"
REQUIREMENTS = BENCH / "requirements.txt"
GEOIP = ROOT / "node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb"
# The generated query data ends at a fixed instant, so a cached file is the same file tomorrow.
GEN_END = "2026-11-01T00:00:00Z"
GEN_SEED = 42

sys.path.insert(0, str(ROOT / "tests" / "oracle"))


# ───────────────────────────── sizes ─────────────────────────────


@dataclass
class Plan:
    """How much of everything one run does."""

    tier: str
    query_events: int  # events of the query suite's data set
    ingest_events: int  # events sent through HTTP and replayed from the log
    days: float  # span of the generated query data (28: four weekly cohorts for retention)
    warmup: int  # untimed runs per query before the timed ones ("hot" runs)
    runs: int  # timed runs per query; the median is reported
    budget: float  # seconds of timed runs per query and engine before fewer runs are taken
    wrk_seconds: int
    wrk_connections: int
    wrk_threads: int
    fresh_seconds: float
    fresh_rates: tuple[int, ...]  # events per second


FULL = dict(days=28, warmup=1, runs=5, budget=30, wrk_seconds=10, wrk_connections=64, wrk_threads=2, fresh_seconds=10,
            fresh_rates=(1_000, 10_000))
TIERS = {
    "smoke": Plan("smoke", query_events=20_000, ingest_events=20_000, days=7, warmup=0, runs=1, budget=30, wrk_seconds=2,
                  wrk_connections=16, wrk_threads=2, fresh_seconds=2, fresh_rates=(200,)),
    "10m": Plan("10m", query_events=10_000_000, ingest_events=2_000_000, **FULL),
    "100m": Plan("100m", query_events=100_000_000, ingest_events=10_000_000, **FULL),
}


# ───────────────────────────── progress ─────────────────────────────

STARTED = time.monotonic()


def log(message: str) -> None:
    """One progress line with the time since start; the lead watches these during long tiers."""
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", flush=True)


# ───────────────────────────── installing the peers ─────────────────────────────


def ensure_debian_tools() -> None:
    """wrk, nginx and hey from Debian; `apt-get update` only when something is missing."""
    missing = [p for p, exe in (("wrk", "wrk"), ("nginx", "nginx"), ("hey", "hey")) if not find_exe(exe)]
    if not missing:
        return
    log(f"installing {' '.join(missing)} from Debian")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def find_exe(name: str) -> str | None:
    # nginx lives in /usr/sbin, which a non-root PATH may lack.
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)


def ensure_venv() -> Path:
    """The virtualenv with the pinned peers, rebuilt only when bench/requirements.txt changes."""
    marker = VENV / ".oriel-requirements"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    python = VENV / "bin" / "python"
    if python.exists() and marker.exists() and marker.read_text().strip() == digest:
        return python
    log(f"installing the peers into {VENV} (pip, pinned in bench/requirements.txt)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)], check=True
    )
    marker.write_text(digest + "\n")
    return python


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


# ───────────────────────────── child processes ─────────────────────────────

CHILDREN: list[subprocess.Popen] = []


def spawn(args: list, **kwargs) -> subprocess.Popen:
    """Starts a child in its own session (Ctrl-C reaches only the harness, which then stops the
    children in order) and remembers it, so every exit path can end it."""
    proc = subprocess.Popen([str(a) for a in args], start_new_session=True, **kwargs)
    CHILDREN.append(proc)
    return proc


def end(proc: subprocess.Popen, grace: float = 30.0, sig: int = signal.SIGTERM) -> int | None:
    """Asks a child to stop, waits, then kills its process group (nginx's workers too)."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    if proc in CHILDREN:
        CHILDREN.remove(proc)
    return proc.returncode


def end_all() -> None:
    for proc in list(CHILDREN):
        end(proc, grace=10)


def on_terminate(signum, _frame):
    raise SystemExit(128 + signum)


# ───────────────────────────── /proc and disk ─────────────────────────────

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all threads) from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kib(pid: int, key: str) -> int:
    """A `kB` line of /proc/PID/status (VmRSS, VmHWM), in KiB; 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class RssSampler:
    """Samples a process's VmRSS every 100 ms in a thread; `.max` is the largest, in bytes."""

    def __init__(self, pid: int):
        self.pid, self.max, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.max = max(self.max, status_kib(self.pid, "VmRSS") * 1024)
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()


def children_cpu_seconds() -> float:
    """User + system CPU of the harness's children that have been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_bytes(path: Path, suffix: str = "") -> int:
    """Bytes on disk (allocated blocks) of the files under a path; the log preallocates a spare
    segment, and allocated blocks are what a disk really gives up."""
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    for p in path.rglob("*" + suffix):
        if p.is_file():
            total += p.stat().st_blocks * 512
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ───────────────────────────── Oriel ─────────────────────────────


def default_binary() -> Path:
    candidates = []
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "oriel")
    candidates += [ROOT / "target" / "release" / "oriel", ROOT / "target" / "debug" / "oriel"]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "oriel")
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise SystemExit("no oriel binary found: build one (cargo build --release) or pass --binary PATH")


def write_config(path: Path, partition: str | None = None) -> Path:
    """Defaults, except what a benchmark on loopback needs: believe X-Forwarded-For from
    127.0.0.1 (oriel gen sends visitors' addresses that way), locate countries like a real
    deployment when the CC0 database is installed, and never age out the log under a replay.
    `partition` overrides store.partition (default "hour")."""
    geoip = f'geoip_database = "{GEOIP}"\n' if GEOIP.exists() else ""
    store = f'\n[store]\npartition = "{partition}"\n' if partition else ""
    path.write_text(f'[collector]\ntrusted_proxies = ["127.0.0.1"]\n{geoip}\n[log.embedded]\nretention_hours = 0\n{store}')
    return path


class SqlError(Exception):
    pass


class Oriel:
    """One `oriel serve` (or another role, with `listen` and `env` of its own) on 127.0.0.1 with
    its own data directory."""

    ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, binary: Path, data_dir: Path, config: Path, role: str = "serve",
                 listen: str = "127.0.0.1:0", env: dict | None = None):
        self.binary, self.data_dir, self.config = binary, data_dir, config
        self.role, self.listen, self.env = role, listen, env or {}
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._conn: http.client.HTTPConnection | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, ready: bool = True, timeout: float = 300) -> "Oriel":
        """Starts the server and waits until it listens (and, with `ready`, until /readyz)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")
        offset = out.tell()  # a restart appends to the same log: read only this start's lines
        self.proc = spawn(
            [self.binary, self.role, "--config", self.config, "--listen", self.listen, "--data-dir", self.data_dir],
            stdout=out, stderr=out,
            env=dict(os.environ, NO_COLOR="1", RUST_LOG=os.environ.get("RUST_LOG", "info"), **self.env),
        )
        deadline = time.monotonic() + timeout
        while not self.port:
            self._check_alive()
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = self.ANSI.sub("", f.read().decode(errors="replace"))
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
            if found:
                self.port = int(found.group(1))
            elif time.monotonic() > deadline:
                raise RuntimeError(f"oriel did not start listening within {timeout:.0f} s; see {self.log_path}")
            else:
                time.sleep(0.02)
        while ready and self.get("/readyz")[0] != 200:
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"oriel did not become ready within {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.05)
        return self

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"oriel exited with {self.proc.returncode}; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM: a clean shutdown that flushes; a crash or hang is an error."""
        if self._conn:
            self._conn.close()
            self._conn = None
        code = end(self.proc, grace=300)
        if code != 0:
            raise RuntimeError(f"oriel exited with {code} on SIGTERM; see {self.log_path}")

    def _request(self, method: str, path: str, body: bytes | None, timeout: float):
        # One kept-alive connection per server: a query's time should not include a TCP handshake.
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                # A kept-alive socket keeps the timeout it was opened with (10 s for /readyz).
                self._conn.sock.settimeout(timeout)
            try:
                headers = {"content-type": "application/json"} if body is not None else {}
                if (path.startswith("/api/v1/") and path != "/api/v1/events") or path.startswith("/druid/"):
                    headers["authorization"] = f"Bearer {self.token()}"
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                # A kept-alive connection the server closed: one fresh try. (A timeout is not
                # retried: it would only run the slow query again.)
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
            except OSError:
                self._conn.close()
                self._conn = None
                raise

    def token(self) -> str:
        """The admin token the server wrote into its data directory on first start."""
        if getattr(self, "_token", None) is None:
            self._token = (self.data_dir / "admin-token").read_text().strip()
        return self._token

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            return self._request("GET", path, None, 10)
        except OSError:
            return 0, b""

    def sql(self, query: str, timeout: float = 1800) -> list[list]:
        status, body = self._request("POST", "/api/v1/sql", json.dumps({"query": query}).encode(), timeout)
        if status != 200:
            try:
                message = json.loads(body).get("error", body.decode(errors="replace"))
            except ValueError:
                message = body.decode(errors="replace")
            raise SqlError(f"HTTP {status}: {message}")
        answer = json.loads(body)
        if "error" in answer:
            raise SqlError(f"stopped part-way: {answer['error']}")
        return answer["rows"]

    def count(self, where: str = "") -> int:
        return int(self.sql(f"SELECT count(*) FROM events {where}", timeout=120)[0][0])

    def wait_count(self, expected: int, where: str = "", timeout: float = 1800, interval: float = 0.1,
                   stall: float = 60) -> tuple[int, float]:
        """Polls count(*) until it reaches `expected`, or stops moving for `stall` seconds, or
        `timeout` passes; returns (last count, monotonic time of that count)."""
        deadline = time.monotonic() + timeout
        last, moved = -1, time.monotonic()
        while True:
            self._check_alive()
            try:
                current = self.count(where)
            except (SqlError, OSError):
                current = -1  # not ready yet: the store opens after the log recovers
            now = time.monotonic()
            if current != last:
                last, moved = current, now
            if last >= expected or now > deadline or now - moved > stall:
                return last, now
            time.sleep(interval)

    def wait_settled(self, where: str, at_least: int, quiet: float = 1.0, timeout: float = 120) -> int:
        """Waits until count(*) is at least `at_least` and has not moved for `quiet` seconds: the
        store has ingested what the log holds (including requests wrk abandoned in flight)."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now_count = self.count(where)
            if now_count != last:
                last, since = now_count, time.monotonic()
            elif last >= at_least and time.monotonic() - since >= quiet:
                break
            time.sleep(0.1)
        return last


def version_line(binary: Path) -> str:
    """`oriel version`: "oriel 0.1.0 (release build)" (before 2026-11-27 without the build)."""
    out = subprocess.run([str(binary), "version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).strip()


def oriel_version(binary: Path) -> str:
    return version_line(binary).split(" (")[0]


def build_profile(binary: Path) -> str:
    """What `oriel version` says it is, else what its path says (target/release, target/debug)."""
    said = re.search(r"\((\w+) build\)", version_line(binary))
    if said:
        return said.group(1)
    parts = binary.resolve().parts
    return "release" if "release" in parts else "debug" if "debug" in parts else "unknown"


def gen_events(binary: Path, out: Path, events: int, days: float) -> Path:
    """`oriel gen` data for the query suite, cached by size, span and Oriel version: the file is
    a pure function of those, and generating 100M events takes a while."""
    if out.exists():
        import oracle
        import pyarrow.parquet

        # A file from an older build with other columns would fail the import: make it anew.
        if pyarrow.parquet.ParquetFile(out).schema_arrow.names == list(oracle.COLUMNS):
            log(f"reusing {out.name} ({out.stat().st_size / 1e6:.0f} MB)")
            return out
        out.unlink()
    log(f"oriel gen: {events:,} events over {days:g} days -> {out.name}")
    tmp = out.with_suffix(".partial.parquet")
    run_checked([binary, "gen", "--events", events, "--days", days, "--end", GEN_END, "--seed", GEN_SEED, "--out", tmp],
                detail=lambda: f"{tmp.stat().st_size / 1e6:.0f} MB written" if tmp.exists() else "starting")
    tmp.rename(out)
    return out


def run_checked(args: list, detail=None, **kwargs) -> subprocess.CompletedProcess:
    """Runs a command to completion as a registered child; its stderr is shown on failure. A
    long step (generating or importing 100M events) says every minute that it is still going,
    with `detail()` when given."""
    proc = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    started = time.monotonic()
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=60)
                break
            except subprocess.TimeoutExpired:
                extra = f", {detail()}" if detail else ""
                log(f"  ... {Path(str(args[0])).name} {args[1]} running for {time.monotonic() - started:.0f} s{extra}")
    finally:
        if proc in CHILDREN:
            CHILDREN.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args[:3]))} ... exited with {proc.returncode}:\n{err[-3000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


# ───────────────────────────── results kept for the report ─────────────────────────────


@dataclass
class Results:
    plan: Plan
    command: str
    binary: Path
    facts: dict = field(default_factory=dict)
    collector: list = field(default_factory=list)  # dicts, one per wrk run
    latency: list = field(default_factory=list)  # dicts, one per fixed-rate hey run
    freshness: list = field(default_factory=list)
    ingest: list = field(default_factory=list)
    queries: dict = field(default_factory=dict)  # filled by query_suite
    druid: list = field(default_factory=list)  # dicts, one per native query and its SQL form
    ui: dict = field(default_factory=dict)  # page -> ms runs, "panels" -> {name: {oriel, duckdb}}
    analytics: dict = field(default_factory=dict)  # question -> {oriel, duckdb ms, same}
    kafka: dict = field(default_factory=dict)  # "runs": per log, "broker": the broker's own rates
    store_partition: str = "hour"  # Oriel's store.partition for the query suite
    footprint_bytes: list = field(default_factory=list)  # (what, bytes, events)
    memory: list = field(default_factory=list)  # (process, state, bytes)
    failures: list = field(default_factory=list)  # human-readable lines
    timings: dict = field(default_factory=dict)  # area -> seconds

    def fail(self, message: str) -> None:
        log(f"FAILURE: {message}")
        self.failures.append(message)


# ───────────────────────────── 1. collector ─────────────────────────────

# Counts answers by status class in every thread and prints one JSON line at the end; makes every
# request a distinct event (its own id), so duplicates could not hide a lost event.
WRK_LUA = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  ok, other, n = 0, 0, 0
  mode, site, per_request = args[1], args[2], tonumber(args[3])
end
function request()
  n = n + 1
  local id = string.format("w%d-%d", tid, n)
  if mode == "post" or mode == "batch" then
    local events = {}
    for i = 1, (mode == "batch" and per_request or 1) do
      events[i] = string.format('{"id":"%s-%d","t":"pageView","ts":%d,"url":"https://bench.example/p"}',
        id, i, os.time() * 1000)
    end
    local body = string.format('{"site":"%s","vid":"v%d-%d","sid":"s%d-%d","ev":[%s]}',
      site, tid, n % 997, tid, n % 997, table.concat(events, ","))
    return wrk.format("POST", "/e", {["Content-Type"] = "text/plain"}, body)
  end
  return wrk.format("GET", "/e.gif?site=" .. site .. "&t=pageView&url=https%3A%2F%2Fbench.example%2Fp&id=" .. id)
end
function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local all_ok, all_other = 0, 0
  for _, t in ipairs(threads) do
    all_ok = all_ok + t:get("ok")
    all_other = all_other + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"ok":%d,"non2xx":%d,"socket_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, all_ok, all_other, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""

NGINX_CONF = """
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:{port} reuseport;
    location = /e.gif {{ empty_gif; }}
    location = /e {{ return 204; }}
  }}
}}
"""


# Events in one request of the batched `POST /e` run: what a busy page or a server-side sender
# puts in one beacon, well under the collector's default cap of 100.
BATCH_EVENTS = 50
# (wrk mode, label, events per request)
COLLECTOR_ENDPOINTS = [("get", "GET /e.gif", 1), ("post", "POST /e", 1),
                       ("batch", f"POST /e, {BATCH_EVENTS} events each", BATCH_EVENTS)]


def run_wrk(plan: Plan, url: str, mode: str, site: str, script: Path, per_request: int) -> dict:
    out = run_checked(
        ["wrk", "-t", plan.wrk_threads, "-c", plan.wrk_connections, "-d", f"{plan.wrk_seconds}s", "--latency",
         "-s", script, url, "--", mode, site, per_request]
    ).stdout
    line = next((l for l in out.splitlines() if l.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    result = json.loads(line[len("WRKJSON "):])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["events_per_request"] = per_request
    return result


def batch_body(site: str, events: int) -> bytes:
    """One tag-style batch; every request of a fixed-rate run repeats it (the collector flags the
    repeated ids as duplicates and stores them all, so counting still works)."""
    ev = [{"id": f"{site}-{i}", "t": "pageView", "ts": int(time.time() * 1000), "url": "https://bench.example/p"}
          for i in range(events)]
    return json.dumps({"site": site, "vid": "v-hey", "sid": "s-hey", "ev": ev}).encode()


def run_hey(plan: Plan, url: str, rate: float, body: Path | None) -> dict:
    """`hey` at a fixed total request rate: every worker is limited to its share of `rate`."""
    per_worker = max(1, round(rate / plan.wrk_connections))
    args = ["hey", "-z", f"{plan.wrk_seconds}s", "-c", plan.wrk_connections, "-q", per_worker]
    if body is not None:
        args += ["-m", "POST", "-T", "text/plain", "-D", body]
    out = run_checked(args + [url]).stdout

    def seconds(pattern: str) -> float:
        match = re.search(pattern, out)
        if match is None:
            raise RuntimeError(f"hey printed no {pattern!r}:\n{out}")
        return float(match.group(1))

    statuses = {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s", out[out.find("Error distribution"):], re.M)) \
        if "Error distribution" in out else 0
    ok = sum(n for code, n in statuses.items() if 200 <= code < 300)
    return {"target_rps": per_worker * plan.wrk_connections, "rps": seconds(r"Requests/sec:\s+([\d.]+)"),
            "p50_ms": seconds(r"50%+ in ([\d.]+) secs") * 1000, "p99_ms": seconds(r"99%+ in ([\d.]+) secs") * 1000,
            "max_ms": seconds(r"Slowest:\s+([\d.]+) secs") * 1000, "ok": ok,
            "failed": sum(statuses.values()) - ok + errors}


def area_collector(res: Results, work: Path, binary: Path, config: Path) -> None:
    plan = res.plan
    script = work / "collector.lua"
    script.write_text(WRK_LUA)

    nginx_dir = work / "nginx"
    nginx_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = nginx_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=nginx_dir, port=port))
    log(f"collector: nginx on 127.0.0.1:{port}")
    nginx = spawn([find_exe("nginx"), "-e", nginx_dir / "error.log", "-p", nginx_dir, "-c", conf, "-g", "daemon off;"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, nginx)
        nginx_rps = {}
        for mode, label, per_request in COLLECTOR_ENDPOINTS:
            log(f"collector: wrk {plan.wrk_connections} connections, {plan.wrk_seconds} s -> nginx {label}")
            r = run_wrk(plan, f"http://127.0.0.1:{port}", mode, "nginx", script, per_request)
            r.update(target="nginx", endpoint=label + (" (empty_gif)" if mode == "get" else " (return 204)"))
            nginx_rps[mode] = r["rps"]
            res.collector.append(r)
    finally:
        end(nginx, grace=10, sig=signal.SIGQUIT)

    server = Oriel(binary, work / "collector", config).start()
    try:
        with RssSampler(server.pid) as idle:
            time.sleep(2)
        res.memory.append(("Oriel", "idle, empty store", idle.max))
        for mode, label, per_request in COLLECTOR_ENDPOINTS:
            site = f"wrk-{mode}"
            log(f"collector: wrk {plan.wrk_connections} connections, {plan.wrk_seconds} s -> Oriel {label}")
            r = run_wrk(plan, server.url, mode, site, script, per_request)
            r.update(target="Oriel", endpoint=label, ratio=r["rps"] / nginx_rps[mode])
            # wrk stops with requests in flight: the server may store up to one request per
            # connection more than wrk saw answered. Fewer than the 2xx count is a lost event.
            check_durable(res, server, r, site, f"wrk {label}", in_flight=plan.wrk_connections)
            log(f"collector: Oriel {label}: {r['rps']:.0f} req/s = {r['rps'] * per_request:.0f} events/s "
                f"({r['ratio']:.2f}x nginx), {r['ok']} 2xx, {r['stored']} stored")
            res.collector.append(r)
        # Latency at a steady load, as a site sees it on a normal day: half of the peak rate
        # just measured, held by hey's per-worker rate limit.
        for mode, label, per_request in (COLLECTOR_ENDPOINTS[0], COLLECTOR_ENDPOINTS[2]):
            peak = next(r["rps"] for r in res.collector if r["target"] == "Oriel" and r["endpoint"] == label)
            site = f"hey-{mode}"
            body = None
            url = f"{server.url}/e.gif?site={site}&t=pageView&url=https%3A%2F%2Fbench.example%2Fp"
            if mode == "batch":
                body = work / "batch.json"
                body.write_bytes(batch_body(site, per_request))
                url = f"{server.url}/e"
            log(f"collector: hey at half the peak, {peak / 2:.0f} req/s for {plan.wrk_seconds} s -> Oriel {label}")
            r = run_hey(plan, url, peak / 2, body)
            r.update(endpoint=label, events_per_request=per_request)
            check_durable(res, server, r, site, f"hey {label}", in_flight=plan.wrk_connections)
            log(f"collector: Oriel {label} at {r['rps']:.0f} req/s: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms")
            res.latency.append(r)
    finally:
        server.stop()
    shutil.rmtree(work / "collector", ignore_errors=True)


def check_durable(res: Results, server: "Oriel", r: dict, site: str, what: str, in_flight: int) -> None:
    """Every 2xx answer's events must be in SQL; a load tool that stops with `in_flight` requests
    unanswered may leave that many more."""
    per_request = r["events_per_request"]
    r["acked"] = r["ok"] * per_request
    r["stored"] = server.wait_settled(f"WHERE site = '{site}'", at_least=r["acked"])
    r["durable"] = 0 <= r["stored"] - r["acked"] <= in_flight * per_request
    if not r["durable"]:
        res.fail(f"collector {what}: {r['ok']} 2xx answers ({r['acked']} events), SQL counts {r['stored']} events")


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


# ───────────────────────────── 2. freshness ─────────────────────────────


class FreshnessRun:
    """Sends `rate` events/s for `seconds` (in requests of several events, on a fixed schedule),
    records each event's 2xx time, and polls SQL for event ids not yet seen. Event ids are
    zero-padded sequence numbers, so `event_id >= lowest unseen` asks only for what is new."""

    SENDERS = 4
    MAX_REQUESTS_PER_SECOND = 200

    def __init__(self, server: Oriel, rate: int, seconds: float):
        self.server, self.rate = server, rate
        self.rps = min(rate, self.MAX_REQUESTS_PER_SECOND)
        self.per_request = max(1, rate // self.rps)
        self.requests = max(1, int(seconds * self.rps))
        self.total = self.requests * self.per_request
        self.site = f"fresh-{rate}"
        self.prefix = f"f{rate}-"
        self.acked: list[float | None] = [None] * self.total
        self.visible: list[float | None] = [None] * self.total
        self.poll_seconds: list[float] = []
        self.retries = 0
        self.send_errors: list[str] = []
        self._next = 0
        self._lock = threading.Lock()
        self.sending = True

    def event_id(self, seq: int) -> str:
        return f"{self.prefix}{seq:09d}"

    def _sender(self, start: float):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        while True:
            with self._lock:
                k, self._next = self._next, self._next + 1
            if k >= self.requests:
                break
            delay = start + k / self.rps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            first = k * self.per_request
            now_ms = int(time.time() * 1000)
            body = json.dumps({
                "site": self.site, "vid": f"v{k % 500}", "sid": f"s{k % 500}",
                "ev": [{"id": self.event_id(s), "t": "pageView", "ts": now_ms, "url": "https://bench.example/fresh"}
                       for s in range(first, first + self.per_request)],
            })
            while True:
                try:
                    conn.request("POST", "/e", body=body, headers={"content-type": "text/plain"})
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    self.send_errors.append(str(e))
                    break
                if response.status == 503:  # full: retry as the tag would
                    self.retries += 1
                    time.sleep(0.05)
                    continue
                if 200 <= response.status < 300:
                    acked = time.monotonic()
                    for s in range(first, first + self.per_request):
                        self.acked[s] = acked
                else:
                    self.send_errors.append(f"HTTP {response.status}")
                break
        conn.close()

    def run(self) -> dict:
        start = time.monotonic() + 0.2
        senders = [threading.Thread(target=self._sender, args=(start,), daemon=True) for _ in range(self.SENDERS)]
        for t in senders:
            t.start()
        lowest = 0
        drain_deadline = None
        while lowest < self.total:
            if drain_deadline is None and not any(t.is_alive() for t in senders):
                drain_deadline = time.monotonic() + 30  # everything sent: wait this long for the rest
            if drain_deadline is not None and time.monotonic() > drain_deadline:
                break
            asked = time.monotonic()
            rows = self.server.sql(
                f"SELECT event_id FROM events WHERE site = '{self.site}' AND event_id >= '{self.event_id(lowest)}'", timeout=60
            )
            answered = time.monotonic()
            self.poll_seconds.append(answered - asked)
            for (event_id,) in rows:
                seq = int(event_id[len(self.prefix):])
                if self.visible[seq] is None:
                    self.visible[seq] = answered
            while lowest < self.total and self.visible[lowest] is not None:
                lowest += 1
            time.sleep(max(0.0, 0.005 - (time.monotonic() - asked)))  # at most 200 polls/s
        for t in senders:
            t.join()
        latencies = sorted((v - a) * 1000 for a, v in zip(self.acked, self.visible) if a is not None and v is not None)
        acked = [a for a in self.acked if a is not None]
        missing = sum(1 for a, v in zip(self.acked, self.visible) if a is not None and v is None)
        span = (max(acked) - min(acked)) if len(acked) > 1 else 0
        return {
            "rate": self.rate, "events": self.total, "acked": len(acked), "missing": missing,
            "achieved": len(acked) / span if span else 0.0, "per_request": self.per_request,
            "retries": self.retries, "send_errors": len(self.send_errors),
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "max": latencies[-1] if latencies else None,
            "poll_p50": percentile(sorted(self.poll_seconds), 50) * 1000 if self.poll_seconds else None,
            "polls": len(self.poll_seconds),
        }


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))]


def area_freshness(res: Results, work: Path, binary: Path, config: Path) -> None:
    plan = res.plan
    for rate in plan.fresh_rates:
        data_dir = work / f"fresh-{rate}"
        server = Oriel(binary, data_dir, config).start()
        try:
            log(f"freshness: {rate:,} events/s for {plan.fresh_seconds:g} s")
            with RssSampler(server.pid) as rss:
                r = FreshnessRun(server, rate, plan.fresh_seconds).run()
            res.memory.append(("Oriel", f"under {rate:,} events/s for {plan.fresh_seconds:g} s (freshness run)", rss.max))
            log(f"freshness: {rate:,}/s: p50 {fmt_ms(r['p50'])}, p99 {fmt_ms(r['p99'])}, max {fmt_ms(r['max'])} ms; "
                f"{r['missing']} missing, achieved {r['achieved']:.0f}/s")
            if r["missing"] or r["send_errors"] or r["acked"] < r["events"]:
                res.fail(f"freshness {rate}/s: {r['acked']} of {r['events']} events acknowledged "
                         f"({r['send_errors']} send errors), {r['missing']} acknowledged events never visible in SQL")
            res.freshness.append(r)
        finally:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


# ───────────────────────────── Kafka log ─────────────────────────────

KAFKA_MESSAGE = json.dumps({
    "__time": 1764547200123, "site": "bench", "event_id": "k" * 12, "event_type": "pageView", "party_id": "v" * 24,
    "session_id": "s" * 24, "url": "https://bench.example/products/item?ref=home", "host": "bench.example",
    "path": "/products/item", "query": "ref=home", "referrer": "https://search.example/?q=bench", "channel": "search",
    "browser": "Firefox", "browser_version": "139", "os": "Linux", "device_type": "desktop", "language": "en-US",
    "screen_width": 1920, "screen_height": 1080, "country": "NL", "ip": "192.0.2.0",
    "is_bot": False, "is_duplicate": False, "is_corrupt": False, "source": "tag",
}).encode()

# The broker's own rate, measured with confluent-kafka (librdkafka, as Oriel uses it) with
# Oriel's producer settings: what the broker allows, next to what Oriel gets through it.
KAFKA_PEER = r"""
import json, sys, time
from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic
brokers, topic, count, message = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
admin = AdminClient({"bootstrap.servers": brokers})  # kept: its futures die with it
for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
    future.result(30)
p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "acks": "all",
              "compression.type": "lz4", "linger.ms": 5})
failed = []
t0 = time.monotonic()
for i in range(count):
    while True:
        try:
            p.produce(topic, key=b"v%d" % (i % 5000), value=message,
                      on_delivery=lambda err, _m: err and failed.append(str(err)))
            break
        except BufferError:
            p.poll(0.01)
    p.poll(0)
p.flush(60)
produce = time.monotonic() - t0
c = Consumer({"bootstrap.servers": brokers, "group.id": "bench-peer", "enable.auto.commit": False})
c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
seen, t0 = 0, time.monotonic()
while seen < count and time.monotonic() - t0 < 120:
    for m in c.consume(1000, 1.0):
        if not m.error():
            seen += 1
consume = time.monotonic() - t0
print(json.dumps({"produced": count - len(failed), "produce_s": produce, "consumed": seen, "consume_s": consume}))
"""


class Cluster:
    """`oriel collect`, one `oriel ingest` per partition and `oriel query` on one Kafka topic and a
    shared store directory, standing in for one `Oriel` server: events go to the collector,
    queries to the query node."""

    TOKEN = "bench-cluster-token-" + "0" * 24

    def __init__(self, binary: Path, work: Path, config: Path, partitions: int):
        env = {"ORIEL_CLUSTER__TOKEN": self.TOKEN, "ORIEL_CLUSTER__STORE_DIR": str(work / "shared")}
        self.collector = Oriel(binary, work / "collect", config, "collect", env=env)
        self.ingest = []
        for p in range(partitions):
            port = free_port()
            self.ingest.append(Oriel(binary, work / f"ingest-{p}", config, "ingest", f"127.0.0.1:{port}", dict(
                env, ORIEL_CLUSTER__PARTITIONS=f"[{p}]", ORIEL_CLUSTER__ADVERTISE_URL=f"http://127.0.0.1:{port}")))
        self.query = Oriel(binary, work / "query", config, "query", env=env)

    def start(self) -> "Cluster":
        for node in [self.collector, *self.ingest, self.query]:
            node.start()
        return self

    def stop(self) -> None:
        for node in [self.collector, *self.ingest, self.query]:
            if node.proc is not None:
                node.stop()

    @property
    def port(self) -> int:
        return self.collector.port

    @property
    def url(self) -> str:
        return self.collector.url

    def sql(self, query: str, timeout: float = 1800) -> list[list]:
        return self.query.sql(query, timeout)

    def count(self, where: str = "") -> int:
        return self.query.count(where)

    def wait_settled(self, where: str, at_least: int, quiet: float = 1.0, timeout: float = 120) -> int:
        return self.query.wait_settled(where, at_least, quiet, timeout)


def find_tansu() -> str | None:
    path = os.environ.get("ORIEL_TANSU") or find_exe("tansu") or str(Path.home() / ".cargo/bin/tansu")
    return path if os.access(path, os.X_OK) else None


# Partitions of the topic in the roles run, one ingest node each.
ROLES_PARTITIONS = 2


def area_kafka(res: Results, work: Path, binary: Path, config: Path) -> None:
    """The same collector and freshness measurements on the embedded log, on a Kafka topic, and
    through the cluster roles on Kafka (collect → Kafka → ingest nodes → query), one after the
    other, and the broker's own produce and consume rate beside them."""
    plan = res.plan
    tansu = find_tansu()
    if tansu is None:
        res.fail("kafka: tansu is not installed; scripts/test installs it "
                 "(cargo install tansu --version 0.6.0 --locked --features libsql)")
        return
    broker_dir = work / "tansu"
    broker_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log(f"kafka: tansu broker on 127.0.0.1:{port} (SQLite storage)")
    broker = spawn([tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
                    "--storage-engine", "sqlite://tansu.db"], cwd=broker_dir,
                   stdout=subprocess.DEVNULL, stderr=open(broker_dir / "tansu.log", "ab"))
    try:
        wait_for_port(port, broker, timeout=30)
        kafka_config = work / "oriel-kafka.toml"
        kafka_config.write_text(config.read_text() + f'\n[log]\ntype = "kafka"\n\n[log.kafka]\n'
                                f'brokers = "127.0.0.1:{port}"\ntopic = "bench-events"\n')
        roles_config = work / "oriel-roles.toml"
        roles_config.write_text(config.read_text() + f'\n[log]\ntype = "kafka"\n\n[log.kafka]\n'
                                f'brokers = "127.0.0.1:{port}"\ntopic = "bench-roles"\npartitions = {ROLES_PARTITIONS}\n')
        script = work / "collector.lua"
        script.write_text(WRK_LUA)
        mode, label, per_request = COLLECTOR_ENDPOINTS[2]
        rate = plan.fresh_rates[0]
        runs = []
        setups = (("embedded", lambda d: Oriel(binary, d, config)), ("Kafka", lambda d: Oriel(binary, d, kafka_config)),
                  ("Kafka, roles", lambda d: Cluster(binary, d, roles_config, ROLES_PARTITIONS)))
        for name, make in setups:
            server = make(work / f"kafka-{name.replace(', ', '-')}").start()
            try:
                log(f"kafka: wrk {plan.wrk_connections} connections, {plan.wrk_seconds} s -> Oriel on the {name} log, {label}")
                site = f"kafka-{name.replace(', ', '-')}"
                r = run_wrk(plan, server.url, mode, site, script, per_request)
                check_durable(res, server, r, site, f"{name} log {label}", in_flight=plan.wrk_connections)
                log(f"kafka: freshness on the {name} log, {rate:,} events/s for {plan.fresh_seconds:g} s")
                fresh = FreshnessRun(server, rate, plan.fresh_seconds).run()
                if fresh["missing"] or fresh["send_errors"] or fresh["acked"] < fresh["events"]:
                    res.fail(f"kafka: freshness on the {name} log: {fresh['acked']} of {fresh['events']} acknowledged, "
                             f"{fresh['missing']} never visible")
                runs.append({"log": name, "events_s": r["rps"] * per_request, "p50_ms": r["p50_us"] / 1000,
                             "p99_ms": r["p99_us"] / 1000, "fresh_p50": fresh["p50"], "fresh_p99": fresh["p99"],
                             "rate": rate, "stored": r["stored"], "acked": r["acked"]})
                log(f"kafka: {name}: {runs[-1]['events_s']:,.0f} events/s, freshness p99 {fmt_ms(fresh['p99'])} ms")
            finally:
                server.stop()
            shutil.rmtree(work / f"kafka-{name.replace(', ', '-')}", ignore_errors=True)
        count = max(20_000, int(runs[1]["events_s"] * plan.wrk_seconds))
        log(f"kafka: the broker's own rate, confluent-kafka, {count:,} messages of {len(KAFKA_MESSAGE)} bytes")
        out = run_checked([sys.executable, "-c", KAFKA_PEER, f"127.0.0.1:{port}", "bench-peer", str(count),
                           KAFKA_MESSAGE.decode()])
        peer = json.loads(out.stdout.strip().splitlines()[-1])
        if peer["produced"] != count or peer["consumed"] != count:
            res.fail(f"kafka: the peer produced {peer['produced']} and consumed {peer['consumed']} of {count} messages")
        res.kafka = {"runs": runs, "broker": peer, "message_bytes": len(KAFKA_MESSAGE), "per_request": per_request}
    finally:
        end(broker, grace=10)


def kafka_report(res: Results) -> list[str]:
    k = res.kafka
    plan = res.plan
    embedded = next((r for r in k["runs"] if r["log"] == "embedded"), None)
    out = ["", "## Kafka log", "",
           f"The same `oriel serve` on the embedded log and on a Kafka topic (`[log] type = \"kafka\"`, one partition) of "
           f"a tansu broker with SQLite storage on this machine, and the cluster roles on a topic of {ROLES_PARTITIONS} "
           f"partitions (`oriel collect` → Kafka → one `oriel ingest` per partition → `oriel query`, all on this machine; "
           "events go to the collector, SQL to the query node): wrk posting batches of "
           f"{k['per_request']} events "
           f"({plan.wrk_connections} connections, {plan.wrk_seconds} s), then the freshness probe (an event's "
           "acknowledgement to its first appearance in SQL). *How to read:* Kafka/embedded is the share of the embedded "
           "log's rate Oriel keeps on Kafka; the broker's own rate (confluent-kafka with Oriel's producer settings: "
           "idempotent, acks=all, lz4, linger 5 ms) is the ceiling Kafka allows here.", ""]
    rows = []
    for r in k["runs"]:
        ratio = f"{r['events_s'] / embedded['events_s']:.2f}" if embedded and r is not embedded else "–"
        rows.append([r["log"], f"{r['events_s']:,.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", ratio,
                     f"{r['rate']:,}", fmt_ms(r["fresh_p50"]), fmt_ms(r["fresh_p99"])])
    out.append(table(["log", "events/s", "request p50 ms", "request p99 ms", "Kafka/embedded", "freshness at events/s",
                      "freshness p50 ms", "freshness p99 ms"], rows, "lrrrrrrr"))
    b = k["broker"]
    kafka = next((r for r in k["runs"] if r["log"] == "Kafka"), None)
    roles = next((r for r in k["runs"] if r["log"] == "Kafka, roles"), None)
    produce, consume = b["produced"] / max(b["produce_s"], 1e-9), b["consumed"] / max(b["consume_s"], 1e-9)
    out += ["", table(["the broker, alone", "messages", "messages/s", "Oriel serve / roles through Kafka, over this"],
                      [["produce (confluent-kafka)", f"{b['produced']:,}", f"{produce:,.0f}",
                        " / ".join(f"{r['events_s'] / produce:.2f}" for r in (kafka, roles) if r and produce) or "–"],
                       ["consume (confluent-kafka)", f"{b['consumed']:,}", f"{consume:,.0f}", "–"]], "lrrr")]
    return out


# ───────────────────────────── 3. ingest ─────────────────────────────


def area_ingest(res: Results, work: Path, binary: Path, config: Path) -> None:
    n = res.plan.ingest_events
    data_dir = work / "ingest"

    # End to end: the generator posts through the collector as browsers would, at full speed.
    server = Oriel(binary, data_dir, config).start()
    try:
        log(f"ingest: oriel gen --url, {n:,} events at full speed")
        started, cpu_before = time.monotonic(), cpu_seconds(server.pid)
        children_before = children_cpu_seconds()
        gen = spawn([binary, "gen", "--events", n, "--days", 1, "--seed", 7, "--url", server.url],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, gen_err = gen.communicate()
        CHILDREN.remove(gen)
        sent_at = time.monotonic()
        gen_cpu = children_cpu_seconds() - children_before  # the sender shares the two cores
        if gen.returncode != 0:
            raise RuntimeError(f"oriel gen --url exited with {gen.returncode}: {gen_err[-2000:]}")
        # gen may make a little fewer events than asked (the end of its span can stay empty).
        n = int(re.search(r"generated (\d+) events", gen_err).group(1))
        count, visible_at = server.wait_count(n)
        cpu = cpu_seconds(server.pid) - cpu_before
        wall = visible_at - started
        res.ingest.append({"path": "HTTP end to end (oriel gen --url → visible in SQL)", "events": count, "wall": wall,
                           "send_wall": sent_at - started, "cpu": cpu, "client_cpu": gen_cpu})
        log(f"ingest: HTTP: {count:,} visible after {wall:.1f} s ({count / wall:,.0f} events/s), Oriel used {cpu:.1f} CPU s")
        if count != n:
            res.fail(f"ingest over HTTP: {n} events sent, {count} visible in SQL")
    finally:
        server.stop()
    # The bytes the records take (`oriel log stats`); the files on disk are larger by design: the
    # active segment and a spare are preallocated to log.embedded.segment_bytes.
    stats = run_checked([binary, "log", "stats", "--data-dir", data_dir]).stdout
    log_bytes = int(re.search(r"(\d+) bytes in segments", stats).group(1))
    res.footprint_bytes.append(("Oriel event log (records, `oriel log stats`; collected over HTTP)", log_bytes, n))

    # Replay: the store must rebuild itself from the whole log.
    shutil.rmtree(data_dir / "store")
    log(f"ingest: replaying {n:,} events from the log into an empty store")
    server = Oriel(binary, data_dir, config)
    started = time.monotonic()
    server.start(ready=False)
    try:
        count, visible_at = server.wait_count(n, interval=0.05)
        cpu = cpu_seconds(server.pid)  # since process start: recovery and replay, nothing else ran
        wall = visible_at - started
        res.ingest.append({"path": "replay of a pre-filled log (restart with data_dir/store deleted)", "events": count,
                           "wall": wall, "cpu": cpu})
        log(f"ingest: replay: {count:,} visible after {wall:.1f} s, {cpu:.1f} CPU s ({count / max(cpu, 1e-9):,.0f} events per CPU s)")
        if count != n:
            res.fail(f"ingest replay: the log holds {n} events, {count} visible in SQL")
    finally:
        server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


# ───────────────────────────── 4. the query suite ─────────────────────────────

ENGINES = ["oriel", "duckdb", "duckdb-parquet", "chdb", "datafusion"]
ENGINE_LABELS = {
    "oriel": "Oriel",
    "duckdb": "DuckDB (table)",
    "duckdb-parquet": "DuckDB (Parquet)",
    "chdb": "chDB (MergeTree)",
    "datafusion": "DataFusion (Parquet)",
}
ENGINE_DIALECT = {"oriel": "oriel", "duckdb": "duckdb", "duckdb-parquet": "duckdb", "chdb": "clickhouse", "datafusion": "datafusion"}


@dataclass
class Query:
    name: str
    tolerance: str  # "exact", "float" or "approx" (as in tests/oracle/oracle.py)
    sql: dict  # dialect -> SQL
    reference: str  # DuckDB SQL whose exact answer every engine must give


# Oriel's Druid functions spelled the DataFusion way (Oriel's dialect is DataFusion plus these).
DRUID_TO_DATAFUSION = [
    (r"TIME_FLOOR\((\w+), 'PT1M'\)", r"date_trunc('minute', \1)"),
    (r"TIME_FLOOR\((\w+), 'PT1H'\)", r"date_trunc('hour', \1)"),
    (r"TIME_FLOOR\((\w+), 'P1D'\)", r"date_trunc('day', \1)"),
    (r"FLOOR\((\w+) TO (\w+)\)", lambda m: f"date_trunc('{m.group(2).lower()}', {m.group(1)})"),
    (r"APPROX_COUNT_DISTINCT\(", "approx_distinct("),
]
# DuckDB's SQL spelled the ClickHouse way; everything else in the suite is the same SQL.
# ClickHouse's date_trunc keeps DateTime64 (toStartOfMinute's DateTime reaches Arrow as uint32).
DUCKDB_TO_CLICKHOUSE = [
    (r"time_bucket\(INTERVAL '1 minute', (\w+)\)", r"date_trunc('minute', \1)"),
]


def translate(sql: str, rules) -> str:
    for pattern, replacement in rules:
        sql = re.sub(pattern, replacement, sql)
    return sql


# Per dialect: epoch milliseconds of a timestamp, its week (Monday), and whole weeks between two.
DIALECT_FUNCTIONS = {
    "oriel": {"ms": "CAST({} AS BIGINT)", "week": "date_trunc('week', {})",
              "weeks": "CAST((CAST({b} AS BIGINT) - CAST({a} AS BIGINT)) / 604800000 AS BIGINT)"},
    "duckdb": {"ms": "epoch_ms({})", "week": "date_trunc('week', {})", "weeks": "date_diff('week', {a}, {b})"},
    "clickhouse": {"ms": "toUnixTimestamp64Milli({})", "week": "toStartOfWeek({}, 1)", "weeks": "dateDiff('week', {a}, {b})"},
}
DIALECT_FUNCTIONS["datafusion"] = DIALECT_FUNCTIONS["oriel"]

# Sessions rebuilt from raw events with window functions: a visitor's session ends after 30
# minutes of inactivity (LAG), sessions are numbered by a running SUM; then duration, pages and
# bounce (one page view) per site. ClickHouse's LAG gives 1970 instead of NULL on the first row,
# which the 30-minute test also treats as a new session.
SESSIONS_SQL = """
WITH marked AS (
  SELECT site, party_id, __time, event_type,
         lag(__time) OVER (PARTITION BY site, party_id ORDER BY __time) AS prev
  FROM events
), numbered AS (
  SELECT site, party_id, __time, event_type,
         sum(CASE WHEN prev IS NULL OR {ms:__time} - {ms:prev} > 1800000 THEN 1 ELSE 0 END)
           OVER (PARTITION BY site, party_id ORDER BY __time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_no
  FROM marked
), sessions AS (
  SELECT site, party_id, session_no,
         {ms:max(__time)} - {ms:min(__time)} AS duration_ms,
         sum(CASE WHEN event_type = 'pageView' THEN 1 ELSE 0 END) AS pages
  FROM numbered GROUP BY site, party_id, session_no
)
SELECT site, count(*) AS sessions, avg(duration_ms) AS avg_duration_ms, avg(pages) AS avg_pages,
       avg(CASE WHEN pages = 1 THEN 1.0 ELSE 0.0 END) AS bounce_rate
FROM sessions GROUP BY site ORDER BY site
"""

# pageView → addToCart → purchase within a session, each step at or after the previous one.
FUNNEL_SQL = """
WITH steps AS (
  SELECT site, session_id, event_type, __time,
         min(CASE WHEN event_type = 'pageView' THEN __time END) OVER (PARTITION BY site, session_id) AS viewed_at
  FROM events WHERE event_type IN ('pageView', 'addToCart', 'purchase')
), carts AS (
  SELECT site, session_id, event_type, __time, viewed_at,
         min(CASE WHEN event_type = 'addToCart' AND __time >= viewed_at THEN __time END)
           OVER (PARTITION BY site, session_id) AS carted_at
  FROM steps
), per_session AS (
  SELECT site, session_id, min(viewed_at) AS first_view, min(carted_at) AS first_cart,
         min(CASE WHEN event_type = 'purchase' AND __time >= carted_at THEN __time END) AS first_purchase
  FROM carts GROUP BY site, session_id
)
SELECT site, count(first_view) AS viewed, count(first_cart) AS added_to_cart, count(first_purchase) AS purchased
FROM per_session GROUP BY site ORDER BY site
"""

# Weekly retention: a visitor's cohort is the first week seen (MIN over a window); active in
# week N of the cohort.
RETENTION_SQL = """
WITH weekly AS (
  SELECT DISTINCT party_id, {week:__time} AS week FROM events
), cohorts AS (
  SELECT party_id, week, min(week) OVER (PARTITION BY party_id) AS cohort FROM weekly
)
SELECT cohort, {weeks:cohort,week} AS week_n, count(*) AS visitors
FROM cohorts GROUP BY 1, 2 ORDER BY 1, 2
"""


def render_template(template: str, dialect: str) -> str:
    """Fills {ms:x}, {week:x} and {weeks:a,b} with the dialect's spelling."""
    functions = DIALECT_FUNCTIONS[dialect]

    def fill(match):
        name, args = match.group(1), match.group(2)
        if name == "weeks":
            a, b = args.split(",")
            return functions["weeks"].format(a=a, b=b)
        return functions[name].format(args)

    return re.sub(r"\{(ms|week|weeks):([^{}]+)\}", fill, template).strip()


def build_suite() -> list[Query]:
    import oracle  # tests/oracle/oracle.py: the dashboard queries, Oriel and DuckDB dialects

    suite = []
    for name, oriel_sql, duckdb_sql, tolerance in oracle.QUERIES:
        clickhouse_sql = translate(duckdb_sql, DUCKDB_TO_CLICKHOUSE)
        if tolerance == "approx":
            # Oriel and DataFusion answer APPROX_COUNT_DISTINCT with a sketch, ClickHouse with its
            # own (uniq). DuckDB keeps the oracle's exact count: its approx_count_distinct misses
            # the 3 % bar on small sites (4.9 % on 20k events).
            clickhouse_sql = re.sub(r"count\(DISTINCT (\w+)\)", r"uniq(\1)", clickhouse_sql)
        suite.append(Query(name, tolerance, {
            "oriel": oriel_sql,
            "duckdb": duckdb_sql,
            "clickhouse": clickhouse_sql,
            "datafusion": translate(oriel_sql, DRUID_TO_DATAFUSION),
        }, reference=duckdb_sql))
    for name, template, tolerance in (("sessions (window)", SESSIONS_SQL, "float"),
                                      ("funnel (window)", FUNNEL_SQL, "exact"),
                                      ("weekly retention (window)", RETENTION_SQL, "exact")):
        sql = {d: render_template(template, d) for d in DIALECT_FUNCTIONS}
        suite.append(Query(name, tolerance, sql, reference=sql["duckdb"]))
    return suite


def normalize(value):
    """One spelling per value across engines: timestamps as ISO-8601 ms 'Z' strings (as Oriel
    answers), dates as midnight, decimals as floats."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat() + "T00:00:00.000Z"
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def compare(got: list, expected: list, tolerance: str) -> str | None:
    """None when the answers agree, else what differs first."""
    import oracle

    if len(got) != len(expected):
        return f"{len(got)} rows, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        if len(g) != len(e) or not all(oracle.same(x, y, tolerance) for x, y in zip(g, e)):
            return f"row {i}: {json.dumps(g, default=str)[:200]} expected {json.dumps(e, default=str)[:200]}"
    return None


def timed_runs(execute, warmup: int, runs: int, budget: float) -> dict:
    """Warm-up runs, then up to `runs` timed runs while their sum stays within `budget`
    seconds (at least one). A warm-up already over the budget is the one reported run: a query
    that slow gains nothing from a warm cache, and five more runs would blow the tier's time.
    The answer checked is that of the first reported run."""
    for _ in range(warmup):
        t0 = time.perf_counter()
        result = execute()
        elapsed = time.perf_counter() - t0
        if elapsed > budget:
            return {"rows": result, "times": [elapsed]}
    rows, times = None, []
    for i in range(runs):
        t0 = time.perf_counter()
        result = execute()
        times.append(time.perf_counter() - t0)
        if i == 0:
            rows = result
        if sum(times) > budget:
            break
    return {"rows": rows, "times": times}


# ── peers, each in its own worker process ──


class Peer:
    """What a worker engine does: load the data, run a query to an Arrow table, tell its size."""

    def __init__(self, parquet: str, directory: str):
        self.parquet, self.directory = parquet, Path(directory)

    def load(self) -> dict:
        return {"bytes": None}

    def execute(self, sql: str):
        raise NotImplementedError

    @staticmethod
    def rows(table) -> list[list]:
        """Arrow table to rows by column position (result names may repeat, e.g. two count(*))."""
        columns = [c.to_pylist() for c in table.columns]
        return [[normalize(v) for v in row] for row in zip(*columns)]

    def version(self) -> str:
        raise NotImplementedError


class DuckDBTable(Peer):
    def load(self):
        import duckdb

        path = self.directory / "events.duckdb"
        for p in (path, path.with_suffix(".duckdb.wal")):
            p.unlink(missing_ok=True)
        self.con = duckdb.connect(str(path))
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{self.parquet}')")
        self.con.execute("CHECKPOINT")
        return {"bytes": tree_bytes(path)}

    def execute(self, sql):
        return self.con.execute(sql).to_arrow_table()

    def version(self):
        import duckdb

        return f"DuckDB {duckdb.__version__}"


class DuckDBParquet(DuckDBTable):
    def load(self):
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{self.parquet}')")
        return {"bytes": None}


class ChDB(Peer):
    def load(self):
        import chdb.session

        path = self.directory / "chdb"
        shutil.rmtree(path, ignore_errors=True)
        self.session = chdb.session.Session(str(path))
        # The sort key a ClickHouse user would pick for per-site dashboards; site is Nullable in
        # the Parquet schema, hence allow_nullable_key. One part after OPTIMIZE, as Oriel compacts.
        self.session.query(
            "CREATE TABLE events ENGINE = MergeTree ORDER BY (site, __time) SETTINGS allow_nullable_key = 1 "
            f"AS SELECT * FROM file('{self.parquet}', Parquet)"
        )
        self.session.query("OPTIMIZE TABLE events FINAL")
        parts = self.session.query(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active",
            "CSV",
        )
        return {"bytes": int(str(parts).strip().strip('"'))}

    def execute(self, sql):
        return self.session.query(sql, "ArrowTable")

    def version(self):
        import chdb

        return f"chDB {chdb.__version__} (ClickHouse {chdb.engine_version})"


class DataFusion(Peer):
    def load(self):
        from datafusion import SessionContext

        self.ctx = SessionContext()
        self.ctx.register_parquet("events", self.parquet)
        return {"bytes": None}

    def execute(self, sql):
        import pyarrow as pa

        return pa.Table.from_batches(self.ctx.sql(sql).collect())

    def version(self):
        import datafusion

        return f"DataFusion {datafusion.__version__}"


PEERS = {"duckdb": DuckDBTable, "duckdb-parquet": DuckDBParquet, "chdb": ChDB, "datafusion": DataFusion}


def worker_main(engine: str, parquet: str, directory: str) -> None:
    """Serves one engine over stdin/stdout, one JSON object a line. Engines may print; the
    protocol keeps the original stdout and everything else goes to stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    # If a query runs the machine out of memory, the kernel should end this worker (recorded as
    # that engine's crash), not Oriel or the harness.
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass
    peer = PEERS[engine](parquet, directory)
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["op"] == "load":
                t0 = time.perf_counter()
                answer = peer.load()
                answer["seconds"] = time.perf_counter() - t0
                answer["version"] = peer.version()
            elif command["op"] == "query":
                result = timed_runs(lambda: peer.execute(command["sql"]), command["warmup"], command["runs"],
                                    command["budget"])
                answer = {"rows": Peer.rows(result["rows"]), "times": result["times"]}
            else:
                answer = {"error": f"unknown op {command['op']}"}
        except Exception as e:  # the engine's own error message is the answer
            answer = {"error": f"{type(e).__name__}: {str(e)[:1000]}"}
        protocol.write(json.dumps(answer, default=str) + "\n")


class Worker:
    """The harness's side of a peer worker process."""

    def __init__(self, engine: str, parquet: Path, directory: Path):
        self.engine = engine
        directory.mkdir(parents=True, exist_ok=True)
        self.stderr_path = directory / f"{engine}.worker.log"
        self.proc = spawn(
            [sys.executable, Path(__file__).resolve(), "--worker", engine, "--parquet", parquet, "--dir", directory],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.stderr_path, "wb"), text=True,
        )

    def ask(self, **command) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = self.stderr_path.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{self.engine} worker crashed (exit {self.proc.returncode}): {tail}")
        return json.loads(line)

    def peak_rss(self) -> int:
        return status_kib(self.proc.pid, "VmHWM") * 1024

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=120)
        if self.proc in CHILDREN:
            CHILDREN.remove(self.proc)


def area_queries(res: Results, work: Path, binary: Path, config: Path, data_cache: Path) -> None:
    plan = res.plan
    suite = build_suite()
    version = re.sub(r"\W+", "_", oriel_version(binary))
    parquet = gen_events(binary, data_cache / f"events-{plan.query_events}-{plan.days:g}d-s{GEN_SEED}-{version}.parquet",
                         plan.query_events, plan.days)
    import pyarrow.parquet

    # gen may make a little fewer events than asked (the end of its span can stay empty).
    events = pyarrow.parquet.ParquetFile(parquet).metadata.num_rows
    res.footprint_bytes.append(("Parquet from oriel gen (zstd)", tree_bytes(parquet), events))
    answers: dict[str, dict[str, dict]] = {e: {} for e in ENGINES}  # engine -> query -> {rows, times} | {error}
    loads: dict[str, dict] = {}

    # Oriel: backfill into a stopped server, then serve; nothing else runs while it is measured.
    data_dir = work / "queries-oriel"
    log(f"queries: oriel import {events:,} events")
    t0 = time.monotonic()
    run_checked([binary, "import", "--config", config, "--data-dir", data_dir, parquet])
    loads["oriel"] = {"seconds": time.monotonic() - t0, "version": oriel_version(binary)}
    segments = tree_bytes(data_dir / "store" / "segments", ".parquet")
    loads["oriel"]["bytes"] = segments
    loads["oriel"]["files"] = sum(1 for _ in (data_dir / "store" / "segments").rglob("*.parquet"))
    server = Oriel(binary, data_dir, config).start()
    try:
        count, _ = server.wait_count(events, stall=10)
        if count != events:
            res.fail(f"oriel import: {events} events in the file, {count} in SQL")
        with RssSampler(server.pid) as idle:
            time.sleep(2)
        res.memory.append(("Oriel", f"idle, {events:,} events loaded", idle.max))
        log(f"queries: Oriel, {len(suite)} queries × ({plan.warmup} warm-up + {plan.runs} timed)")
        with RssSampler(server.pid) as busy:
            for q in suite:
                try:
                    result = timed_runs(lambda: server.sql(q.sql["oriel"]), plan.warmup, plan.runs, plan.budget)
                    answers["oriel"][q.name] = {"rows": [[normalize(v) for v in row] for row in result["rows"]],
                                                "times": result["times"]}
                except (SqlError, OSError) as e:
                    answers["oriel"][q.name] = {"error": str(e)[:1000]}
                progress_line("Oriel", q.name, answers["oriel"][q.name])
        res.memory.append(("Oriel", "running the query suite (max)", busy.max))
        log(f"queries: Druid native queries beside their SQL, {len(DRUID_PAIRS)} pairs")
        for pair in DRUID_PAIRS:
            res.druid.append(druid_pair(res, server, pair))
        ui_timings(res, server)
    finally:
        server.stop()
    res.footprint_bytes.append(("Oriel store segments (data_dir/store/segments)", segments, events))
    shutil.rmtree(data_dir, ignore_errors=True)

    # Peers, one worker process at a time; the exact reference comes from the DuckDB table.
    reference: dict[str, dict] = {}
    for engine in ENGINES[1:]:
        label = ENGINE_LABELS[engine]
        log(f"queries: {label}: loading")
        worker = Worker(engine, parquet, work / f"queries-{engine}")
        try:
            loads[engine] = worker.ask(op="load")
            if "error" in loads[engine]:
                res.fail(f"{label} could not load the data: {loads[engine]['error']}")
                continue
            log(f"queries: {label}: loaded in {loads[engine]['seconds']:.1f} s; running the suite")
            for q in suite:
                sql = q.sql[ENGINE_DIALECT[engine]]
                answers[engine][q.name] = worker.ask(op="query", sql=sql, warmup=plan.warmup, runs=plan.runs,
                                                     budget=plan.budget)
                progress_line(label, q.name, answers[engine][q.name])
                if engine == "duckdb":
                    if q.reference == sql:
                        reference[q.name] = answers[engine][q.name]
                    else:
                        reference[q.name] = worker.ask(op="query", sql=q.reference, warmup=0, runs=1, budget=0)
            res.memory.append((label, "running the query suite (peak, VmHWM)", worker.peak_rss()))
            if engine == "duckdb" and loads[engine].get("bytes"):
                res.footprint_bytes.append(("DuckDB database file", loads[engine]["bytes"], events))
            if engine == "chdb" and loads[engine].get("bytes"):
                res.footprint_bytes.append(("ClickHouse MergeTree (system.parts bytes_on_disk)", loads[engine]["bytes"],
                                            events))
            worker.close()
        except RuntimeError as e:  # a crashed worker: that engine's remaining answers are errors
            res.fail(str(e)[:500])
            for q in suite:
                answers[engine].setdefault(q.name, {"error": "worker crashed"})
        finally:
            end(worker.proc, grace=10)
        shutil.rmtree(work / f"queries-{engine}", ignore_errors=True)

    # The UI's panels as DuckDB answers them, for the UI section's peer column.
    if res.ui and "panels" in res.ui:
        ui_peer(res, parquet, work)

    # Check every answer before any time counts.
    for q in suite:
        expected = reference.get(q.name, {})
        for engine in ENGINES:
            answer = answers[engine].get(q.name, {"error": "not run"})
            if "error" in answer:
                answer["status"] = "error"
                res.fail(f"{ENGINE_LABELS[engine]} failed {q.name!r}: {answer['error'][:300]}")
            elif "rows" not in expected:
                answer["status"] = "unchecked"
                res.fail(f"no reference answer for {q.name!r}: {expected.get('error', 'missing')[:300]}")
            else:
                diff = compare(answer["rows"], expected["rows"], q.tolerance)
                answer["status"] = "ok" if diff is None else "wrong"
                if diff:
                    answer["diff"] = diff
                    res.fail(f"{ENGINE_LABELS[engine]} answered {q.name!r} wrongly: {diff}")
    res.queries = {"suite": suite, "answers": answers, "loads": loads, "events": events}


# Dashboard queries of the suite as a Druid client sends them natively, each beside the same
# question in Druid SQL, both through Oriel's Druid API: (name, native query, SQL, native answer
# to rows). The answers must be equal; the time shows what the native translation costs.
ALL = "1000/3000"
DRUID_PAIRS = [
    ("total events", {"queryType": "timeseries", "dataSource": "events", "intervals": ALL, "granularity": "all",
                      "aggregations": [{"type": "count", "name": "n"}]},
     "SELECT COUNT(*) FROM events", lambda a: [[e["result"]["n"]] for e in a]),
    ("events per hour", {"queryType": "timeseries", "dataSource": "events", "intervals": ALL, "granularity": "hour",
                         "context": {"skipEmptyBuckets": "true"}, "aggregations": [{"type": "count", "name": "n"}]},
     "SELECT TIME_FLOOR(__time, 'PT1H') AS t, COUNT(*) FROM events GROUP BY 1 ORDER BY 1",
     lambda a: [[e["timestamp"], e["result"]["n"]] for e in a]),
    ("top pages", {"queryType": "topN", "dataSource": "events", "intervals": ALL, "granularity": "all", "dimension": "path",
                   "threshold": 10, "metric": "views", "filter": {"type": "selector", "dimension": "event_type", "value": "pageView"},
                   "aggregations": [{"type": "count", "name": "views"}]},
     "SELECT path, COUNT(*) AS views FROM events WHERE event_type = 'pageView' GROUP BY path ORDER BY views DESC, path LIMIT 10",
     lambda a: [[r["path"], r["views"]] for r in a[0]["result"]] if a else []),
    ("channels", {"queryType": "groupBy", "dataSource": "events", "intervals": ALL, "granularity": "all", "dimensions": ["channel"],
                  "filter": {"type": "selector", "dimension": "event_type", "value": "pageView"},
                  "aggregations": [{"type": "count", "name": "n"},
                                   {"type": "cardinality", "name": "sessions", "fields": ["session_id"], "round": True}]},
     "SELECT channel, COUNT(*), COUNT(DISTINCT session_id) FROM events WHERE event_type = 'pageView' GROUP BY 1 ORDER BY 1 NULLS FIRST",
     lambda a: [[e["event"]["channel"], e["event"]["n"], e["event"]["sessions"]] for e in a]),
    ("filtered breakdown", {"queryType": "topN", "dataSource": "events", "intervals": ALL, "granularity": "all", "dimension": "os",
                            "threshold": 100, "metric": {"type": "dimension", "ordering": "lexicographic"},
                            "filter": {"type": "and", "fields": [{"type": "selector", "dimension": "site", "value": "shop"},
                                                                 {"type": "selector", "dimension": "device_type", "value": "mobile"}]},
                            "aggregations": [{"type": "count", "name": "n"}]},
     "SELECT os, COUNT(*) FROM events WHERE site = 'shop' AND device_type = 'mobile' GROUP BY os ORDER BY os NULLS FIRST",
     lambda a: [[r["os"], r["n"]] for r in a[0]["result"]] if a else []),
    ("visitors per day and country", {"queryType": "groupBy", "dataSource": "events", "intervals": ALL, "granularity": "day",
                                      "dimensions": ["country"],
                                      "aggregations": [{"type": "cardinality", "name": "v", "fields": ["party_id"], "round": True}]},
     "SELECT TIME_FLOOR(__time, 'P1D') AS d, country, COUNT(DISTINCT party_id) FROM events GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST",
     lambda a: [[e["timestamp"], e["event"]["country"], e["event"]["v"]] for e in a]),
]


def druid_pair(res: Results, server: Oriel, pair) -> dict:
    """Times a native query and its SQL form through the Druid API and checks they agree."""
    name, native, sql, to_rows = pair
    plan = res.plan

    def ask(path: str, body: dict):
        status, text = server._request("POST", path, json.dumps(body).encode(), 1800)
        if status != 200:
            raise SqlError(f"HTTP {status} from {path}: {text[:300].decode(errors='replace')}")
        return json.loads(text)

    try:
        native_run = timed_runs(lambda: to_rows(ask("/druid/v2", native)), plan.warmup, plan.runs, plan.budget)
        sql_run = timed_runs(lambda: ask("/druid/v2/sql", {"query": sql, "resultFormat": "array"}), plan.warmup, plan.runs,
                             plan.budget)
    except (SqlError, OSError, KeyError, IndexError, TypeError) as e:
        res.fail(f"Druid pair {name!r}: {e}")
        return {"name": name, "error": str(e)[:300]}
    native_rows = [[normalize(v) for v in row] for row in native_run["rows"]]
    sql_rows = [[normalize(v) for v in row] for row in sql_run["rows"]]
    if native_rows != sql_rows:
        res.fail(f"Druid pair {name!r}: the native answer differs from the SQL one: "
                 f"{json.dumps(native_rows)[:200]} vs {json.dumps(sql_rows)[:200]}")
    native_ms, sql_ms = statistics.median(native_run["times"]) * 1000, statistics.median(sql_run["times"]) * 1000
    log(f"  {name}: native {native_ms:.1f} ms, SQL {sql_ms:.1f} ms ({len(sql_rows)} rows)")
    return {"name": name, "native_ms": native_ms, "sql_ms": sql_ms, "rows": len(sql_rows), "same": native_rows == sql_rows}


# The UI over the query data (which ends at GEN_END): its overview and explorer over the last 28
# days of the data, and the report each overview panel sends (POST /api/v1/query) beside the same
# question in DuckDB's SQL.
UI_FROM, UI_TO, UI_BEFORE = "2026-10-04", "2026-11-01", "2026-09-06"
UI_SITE = "shop"
UI_OVERVIEW = f"/?site={UI_SITE}&period=custom&from={UI_FROM}&to={UI_TO}&tz=UTC"
UI_EXPLORER = f"/explore?site={UI_SITE}&period=custom&from={UI_FROM}&to={UI_TO}&split=path&m=visitors,pageviews&compare=previous&tz=UTC"


def _ui_panel(measures, split=None, filters=(), compare=None, limit=None):
    body = {"site": UI_SITE, "range": {"start": UI_FROM, "end": UI_TO}, "timeZone": "UTC", "measures": measures,
            "filters": list(filters)}
    if split:
        body["split"] = [split]
    if compare:
        body["compare"] = compare
    if limit:
        body["limit"] = limit
    return body


def _duck_ranked(expr, measure, where=""):
    """A ranked panel in DuckDB: the top 10 rows and, as the report also gives, the total."""
    scope = f"site = '{UI_SITE}' AND __time >= TIMESTAMP '{UI_FROM}' AND __time < TIMESTAMP '{UI_TO}'{where}"
    return (f"(SELECT CAST({expr} AS VARCHAR) AS k, {measure} AS v FROM events WHERE {scope} GROUP BY 1 "
            f"ORDER BY 2 DESC, 1 NULLS FIRST LIMIT 10) UNION ALL SELECT NULL, {measure} FROM events WHERE {scope}")


_UI_STATS_DUCK = f"""
WITH b AS (SELECT CASE WHEN __time >= TIMESTAMP '{UI_FROM}' THEN 0 ELSE 1 END AS period, event_type, party_id, session_id,
                  engaged_ms FROM events
           WHERE site = '{UI_SITE}' AND __time >= TIMESTAMP '{UI_BEFORE}' AND __time < TIMESTAMP '{UI_TO}'),
     s AS (SELECT period, session_id, count(*) FILTER (WHERE event_type = 'pageView') AS views FROM b
           WHERE session_id IS NOT NULL GROUP BY ALL),
     a AS (SELECT period, count(DISTINCT party_id) AS visitors, count(DISTINCT session_id) AS sessions,
                  count(*) FILTER (WHERE event_type = 'pageView') AS views,
                  avg(engaged_ms) FILTER (WHERE event_type = 'engagement') / 1000.0 AS engaged FROM b GROUP BY ALL),
     c AS (SELECT period, 100.0 * count(*) FILTER (WHERE views = 1) / count(*) AS bounce FROM s WHERE views > 0 GROUP BY ALL)
SELECT a.period, visitors, sessions, views, views / sessions, bounce, engaged FROM a JOIN c USING (period) ORDER BY 1"""

UI_PANELS = [
    ("top stats (6 measures, vs previous 28 days)",
     _ui_panel(["visitors", "sessions", "pageviews", "viewsPerSession", "bounceRate", "avgEngagedSeconds"], compare="previous"),
     _UI_STATS_DUCK),
    ("graph (visitors per day)", _ui_panel(["visitors"], split={"time": "auto"}, limit=10000),
     f"SELECT date_trunc('day', __time) AS d, count(DISTINCT party_id) FROM events WHERE site = '{UI_SITE}' "
     f"AND __time >= TIMESTAMP '{UI_FROM}' AND __time < TIMESTAMP '{UI_TO}' GROUP BY 1 ORDER BY 1"),
    ("channels", _ui_panel(["visitors"], split={"dimension": "channel"}, limit=9),
     _duck_ranked("channel", "count(DISTINCT party_id)")),
    ("top pages", _ui_panel(["visitors"], split={"dimension": "path"}, limit=9,
                            filters=[{"dimension": "event_type", "op": "is", "values": ["pageView"]}]),
     _duck_ranked("path", "count(DISTINCT party_id)", " AND event_type = 'pageView'")),
    ("countries", _ui_panel(["visitors"], split={"dimension": "country"}, limit=9),
     _duck_ranked("country", "count(DISTINCT party_id)")),
    ("browsers", _ui_panel(["visitors"], split={"dimension": "browser"}, limit=9),
     _duck_ranked("browser", "count(DISTINCT party_id)")),
    ("custom events", _ui_panel(["events"], split={"dimension": "event_type"}, limit=9,
                                filters=[{"dimension": "event_type", "op": "isNot", "values": ["pageView", "engagement"]}]),
     _duck_ranked("event_type", "count(*)", " AND event_type NOT IN ('pageView', 'engagement')")),
]


def ui_timings(res: Results, server: "Oriel") -> None:
    """The UI drawn in Chromium, and each overview panel's report, against the loaded server."""
    plan = res.plan
    log(f"queries: the UI ({len(UI_PANELS)} overview reports; overview and explorer in Chromium)")
    panels = {}
    for name, body, _ in UI_PANELS:
        def ask(body=body):
            status, text = server._request("POST", "/api/v1/query", json.dumps(body).encode(), 1800)
            if status != 200:
                raise SqlError(f"HTTP {status}: {text[:300].decode(errors='replace')}")
            return json.loads(text)["rows"]
        try:
            run = timed_runs(ask, plan.warmup, plan.runs, plan.budget)
        except (SqlError, OSError) as e:
            res.fail(f"UI report {name!r}: {e}")
            continue
        panels[name] = {"oriel": statistics.median(run["times"]) * 1000}
        log(f"  {name}: {panels[name]['oriel']:.1f} ms")
    res.ui["panels"] = panels
    out = subprocess.run(["node", ROOT / "bench/ui.mjs", "--base", server.url, "--token", server.token(),
                          "--overview", UI_OVERVIEW, "--explorer", UI_EXPLORER, "--runs", str(plan.runs)],
                         capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if out.returncode != 0:
        res.fail(f"bench/ui.mjs failed: {(out.stderr or out.stdout)[-800:]}")
        return
    pages = json.loads(out.stdout.strip().splitlines()[-1])
    res.ui.update(pages)
    for page, times in pages.items():
        log(f"  {page} drawn in {statistics.median(times):.0f} ms (median of {len(times)})")


def ui_peer(res: Results, parquet: Path, work: Path) -> None:
    """The overview panels' questions in DuckDB (its own table), the UI section's peer column."""
    plan = res.plan
    worker = Worker("duckdb", parquet, work / "ui-duckdb")
    try:
        loaded = worker.ask(op="load")
        if "error" in loaded:
            res.fail(f"DuckDB could not load the data for the UI's peer column: {loaded['error']}")
            return
        for name, _, sql in UI_PANELS:
            if name not in res.ui["panels"]:
                continue
            answer = worker.ask(op="query", sql=sql, warmup=plan.warmup, runs=plan.runs, budget=plan.budget)
            if "error" in answer:
                res.fail(f"DuckDB failed the UI panel {name!r}: {answer['error'][:300]}")
                continue
            res.ui["panels"][name]["duckdb"] = statistics.median(answer["times"]) * 1000
        worker.close()
    finally:
        end(worker.proc, grace=10)
        shutil.rmtree(work / "ui-duckdb", ignore_errors=True)


def ui_report(res: Results) -> list[str]:
    out = ["", "### The UI", "",
           f"The overview and explorer of site `{UI_SITE}` over the 28 days before the data ends (`{UI_OVERVIEW}`, "
           f"`{UI_EXPLORER}`), opened in headless Chromium with the assets cached, as a returning user; the time runs "
           "from navigation until every stat, the graph, every panel, today's line and the live feed (overview), or "
           "the chart and table (explorer), are drawn. The overview sends its reports at once, so they share the "
           "query slots and two cores. *How to read:* the goal is a complete overview in under 1,000 ms.", ""]
    rows = [[page, f"{statistics.median(res.ui[page]):,.0f}", f"{min(res.ui[page]):,.0f}", f"{max(res.ui[page]):,.0f}",
             f"{statistics.median(res.ui[page]) / 1000:.2f}"] for page in ("overview", "explorer") if page in res.ui]
    out.append(table(["page", "median ms", "min ms", "max ms", "median / 1 s goal"], rows, "lrrrr"))
    out += ["", "Each report of the overview alone (`POST /api/v1/query`, median of the runs; its answer includes the "
            "totals, so it is two SQL statements), beside DuckDB answering the same question over its own table "
            "(the top 10 and the total in one statement). *How to read:* Oriel/DuckDB above 1 is slower than DuckDB.", ""]
    rows = []
    for name, t in res.ui.get("panels", {}).items():
        duck = t.get("duckdb")
        rows.append([name, fmt_ms(t["oriel"]), fmt_ms(duck) if duck else "–", f"{t['oriel'] / duck:.2f}" if duck else "–"])
    out.append(table(["report", "Oriel ms", "DuckDB ms", "Oriel/DuckDB"], rows, "lrrr"))
    return out


def druid_report(res: Results) -> list[str]:
    out = ["", "### Druid native queries beside their SQL", "",
           "Six dashboard queries of the suite sent as Druid native queries (`POST /druid/v2`: timeseries, topN, groupBy) "
           "and as Druid SQL (`POST /druid/v2/sql`, array format) to the same server, one after the other; both are "
           "planned on the same engine, so the difference is the translation and the shaping of the answer. "
           "*How to read:* native/SQL near 1.0; the target is at most 5 % or 2 ms more, whichever is larger. Both "
           "answers are checked equal before their times count.", ""]
    rows = []
    for r in res.druid:
        if "error" in r:
            rows.append([r["name"], "–", "–", "–", "–", "error"])
            continue
        within = r["native_ms"] <= max(r["sql_ms"] * 1.05, r["sql_ms"] + 2)
        rows.append([r["name"], f"{r['rows']:,}", fmt_ms(r["sql_ms"]), fmt_ms(r["native_ms"]), f"{r['native_ms'] / r['sql_ms']:.2f}",
                     ("yes" if within else "**no**") if r["same"] else "**answers differ**"])
    out.append(table(["query", "rows", "SQL ms", "native ms", "native/SQL", "within 5 % or 2 ms"], rows, "lrrrrl"))
    return out


def progress_line(label: str, name: str, answer: dict) -> None:
    if "error" in answer:
        log(f"  {label}: {name}: ERROR {answer['error'][:200]}")
    else:
        log(f"  {label}: {name}: {statistics.median(answer['times']) * 1000:.1f} ms ({len(answer['rows'])} rows)")


# ───────────────────────────── machine facts ─────────────────────────────


def machine_facts(binary: Path) -> dict:
    def first_line(args):
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    disk = shutil.disk_usage(CACHE if CACHE.exists() else Path.home())
    import pyarrow

    return {
        "cores": f"{os.cpu_count()} ({cpu})",
        "memory": f"{mem / 2**20:.1f} GiB",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "disk free at start": f"{disk.free / 2**30:.0f} GiB",
        "kernel": platform.release(),
        "Oriel": f"{oriel_version(binary)}, {build_profile(binary)} build ({binary})",
        # The checkout the harness ran from; the binary is assumed to be built from it.
        "commit": first_line(["git", "-C", str(BENCH.parent), "describe", "--always", "--dirty"]),
        "wrk": first_line([find_exe("wrk") or "wrk", "-v"]).split(" Copyright")[0],
        "nginx": first_line([find_exe("nginx") or "nginx", "-v"]).replace("nginx version: ", ""),
        # hey has no version flag; Debian's package version is the one installed.
        "hey": "hey " + first_line(["dpkg-query", "-W", "-f", "${Version}", "hey"]),
        "Python": platform.python_version(),
        "PyArrow": pyarrow.__version__,
    }


# ───────────────────────────── the report ─────────────────────────────


def fmt_ms(value) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def report(res: Results) -> str:
    plan = res.plan
    out = ["# Oriel benchmark results", ""]
    out.append(f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC with `{res.command}` "
               f"(tier `{plan.tier}`, {sum(res.timings.values()) / 60:.1f} min). Every number below comes from this "
               "one run, each next to its peer measured minutes apart on the same machine: read the ratios, and do not "
               "compare absolute numbers with another run or machine. Load generators and servers share the same cores.")
    if build_profile(res.binary) != "release":
        out += ["", "**Oriel was a debug build in this run: its numbers are far below a release build's.**"]
    out += ["", "## Machine", "", table(["fact", "value"], [[k, v] for k, v in res.facts.items()], "ll")]

    if res.collector:
        out += ["", "## 1. Collector", "",
                f"wrk, {plan.wrk_threads} threads, {plan.wrk_connections} connections, {plan.wrk_seconds} s per row, every "
                "request a distinct event. Oriel answers only once an event is fsynced in its log; nginx answers from "
                "memory and stores nothing, so it is the ceiling of HTTP on this machine, not a like-for-like peer. "
                "*How to read:* Oriel/nginx is the share of nginx's request rate that Oriel sustains while making each "
                "event durable; the durability table must show every 2xx as a stored event.", ""]
        rows = []
        for r in res.collector:
            rows.append([r["target"], r["endpoint"], f"{r['rps']:,.0f}", f"{r['rps'] * r['events_per_request']:,.0f}",
                         f"{r['p50_us'] / 1000:.2f}", f"{r['p99_us'] / 1000:.2f}",
                         r["non2xx"] + r["socket_errors"] + r["timeouts"], f"{r['ratio']:.2f}" if "ratio" in r else "–"])
        out.append(table(["server", "endpoint", "requests/s", "events/s", "p50 ms", "p99 ms", "non-2xx or errors",
                          "Oriel/nginx"], rows, "llrrrrrr"))
        if res.latency:
            rows = [[r["endpoint"], f"{r['target_rps']:,}", f"{r['rps']:,.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                     f"{r['max_ms']:.1f}", r["failed"]] for r in res.latency]
            out += ["", f"Latency at half the peak rate: `hey`, {plan.wrk_connections} workers each limited to its "
                    f"share of half the request rate Oriel reached above, {plan.wrk_seconds} s. *How to read:* the "
                    "latency a site sees on a busy but not saturated collector; hey waits for each answer before its "
                    "worker's next tick, so a stall delays later requests rather than queueing them (it "
                    "under-reports tail latency under overload, which is why the rate is half the peak).", "",
                    table(["endpoint", "target req/s", "achieved req/s", "p50 ms", "p99 ms", "max ms", "failed"],
                          rows, "lrrrrrr")]
        checked = [r for r in res.collector + res.latency if "stored" in r]
        rows = [[("wrk " if r in res.collector else "hey ") + r["endpoint"], f"{r['acked']:,}", f"{r['stored']:,}",
                 f"{r['stored'] - r['acked']:+,}", "ok" if r["durable"] else "**LOST EVENTS**"] for r in checked]
        out += ["", "Durability: events in SQL (`count(*)` per load site) against the events of every 2xx answer. A "
                "load tool stops with up to one request per connection in flight, which Oriel may still store: up to "
                f"{plan.wrk_connections} requests' events more is expected, fewer is a lost acknowledged event.", "",
                table(["run", "events acknowledged", "events in SQL", "difference", "verdict"], rows, "lrrrl")]

    if res.freshness:
        out += ["", "## 2. Freshness", "",
                "A sender posts events to `POST /e` on a fixed schedule (several events per request, at most "
                f"{FreshnessRun.MAX_REQUESTS_PER_SECOND} requests/s) for {plan.fresh_seconds:g} s, with default store "
                "settings; a poller asks SQL for event ids it has not seen yet, back to back. *How to read:* "
                "ms from the collector's 2xx answer to the SQL answer that first contains the event; "
                "the poll time is the resolution of the measurement.", ""]
        rows = [[f"{r['rate']:,}", f"{r['achieved']:,.0f}", f"{r['acked']:,}", fmt_ms(r["p50"]), fmt_ms(r["p99"]),
                 fmt_ms(r["max"]), fmt_ms(r["poll_p50"]), r["missing"] + r["send_errors"]] for r in res.freshness]
        out.append(table(["target events/s", "achieved events/s", "events", "p50 ms", "p99 ms", "max ms",
                          "poll p50 ms", "missing or failed"], rows))

    if res.ingest:
        out += ["", "## 3. Ingest", "",
                "*How to read:* events per Oriel CPU-second is events per core; over HTTP it covers the collector "
                "(parsing, enrichment, GeoIP), the fsynced log and the store, while `oriel gen` competes for the same "
                "two cores. Replay restarts Oriel with `data_dir/store` deleted, so the store rebuilds itself from the "
                "whole log; time and CPU run from process start (start-up included: about a second of CPU in a debug "
                "build) until `SELECT count(*)` shows every event.", ""]
        rows = [[r["path"], f"{r['events']:,}", f"{r['wall']:.1f}", f"{r['events'] / r['wall']:,.0f}", f"{r['cpu']:.1f}",
                 f"{r['events'] / max(r['cpu'], 1e-9):,.0f}", f"{r['client_cpu']:.1f}" if "client_cpu" in r else "–"]
                for r in res.ingest]
        out.append(table(["path", "events", "seconds", "events/s", "Oriel CPU s", "events per Oriel CPU-second",
                          "sender CPU s"], rows, "lrrrrrr"))

    if res.queries:
        out += query_report(res)
    if res.druid:
        out += druid_report(res)
    if res.ui:
        out += ui_report(res)
    if res.analytics:
        out += analytics_report(res)
    if res.kafka:
        out += kafka_report(res)

    if res.footprint_bytes or res.memory:
        out += ["", "## 5. Footprint", "",
                "*How to read:* bytes per event is bytes on disk (allocated blocks) divided by the events held; the "
                "query data set unless noted. Memory is resident set size (VmRSS sampled every 100 ms, the largest "
                "sample; peers: the process's peak, VmHWM).", ""]
        rows = [[what, fmt_bytes(b), f"{events:,}", f"{b / events:.1f}"] for what, b, events in res.footprint_bytes]
        out.append(table(["on disk", "bytes", "events", "bytes/event"], rows, "lrrr"))
        out += ["", table(["process", "while", "resident memory"], [[p, s, fmt_bytes(b)] for p, s, b in res.memory], "llr")]

    out += ["", "## Problems", ""]
    out += [f"- {f}" for f in res.failures] if res.failures else ["None: every engine gave the same answers, no event was lost."]
    out += ["", "Seconds per area: " + ", ".join(f"{k} {v:.0f}" for k, v in res.timings.items()) + "."]
    return "\n".join(out) + "\n"


def query_report(res: Results) -> list[str]:
    plan = res.plan
    suite, answers, loads = res.queries["suite"], res.queries["answers"], res.queries["loads"]
    files = loads.get("oriel", {}).get("files", "?")
    out = ["", "## 4. Queries", "",
           f"`oriel gen` data: {res.queries['events']:,} events over {plan.days:g} days (seed {GEN_SEED}), the same "
           f"Parquet file loaded into every engine; Oriel's store holds it in {files} segment files "
           f"(store.partition = \"{res.store_partition}\"). The dashboard queries of `tests/oracle/oracle.py`, plus "
           "sessions, a funnel and weekly retention written with window functions (SQL in `bench/harness.py`). "
           f"Median of {plan.runs} hot run(s) after {plan.warmup} warm-up, in ms; Oriel's time is a client's: HTTP, "
           "query, JSON. Peers run in-process to an Arrow table. Every answer is first checked against an exact "
           "DuckDB reference (timestamps as ISO-8601 ms, floats within 1e-9 relative, approximate distinct counts "
           "within 3 %; for \"approximate visitors\" Oriel and DataFusion use their sketch, chDB `uniq`, DuckDB the "
           "exact count): **wrong** or **error** replaces the time of a failed answer. †n: only n run(s) fit the "
           f"{plan.budget:g} s budget per query (a warm-up over it is the one reported run). *How to read:* "
           "Oriel/fastest below 1 means Oriel is faster than every peer on that query; the geometric mean covers "
           "the queries every engine answered correctly.", ""]
    header = ["query"] + [ENGINE_LABELS[e] for e in ENGINES] + ["Oriel/fastest peer"]
    rows, common = [], []
    for q in suite:
        cells, medians = [q.name], {}
        for e in ENGINES:
            a = answers[e].get(q.name, {"status": "error"})
            if a.get("status") == "ok":
                medians[e] = statistics.median(a["times"]) * 1000
                short = len(a["times"]) < plan.runs
                cells.append(fmt_ms(medians[e]) + (f" †{len(a['times'])}" if short else ""))
            else:
                cells.append("**wrong**" if a.get("status") == "wrong" else "**error**")
        peers = [medians[e] for e in ENGINES[1:] if e in medians]
        cells.append(f"{medians['oriel'] / min(peers):.2f}" if "oriel" in medians and peers else "–")
        if len(medians) == len(ENGINES):
            common.append(medians)
        rows.append(cells)
    means = {e: geomean([m[e] for m in common]) for e in ENGINES}
    peer_means = [means[e] for e in ENGINES[1:] if means[e]]
    rows.append([f"**geometric mean** ({len(common)} of {len(suite)} queries)"] + [f"**{fmt_ms(means[e])}**" for e in ENGINES]
                + [f"**{means['oriel'] / min(peer_means):.2f}**" if means["oriel"] and peer_means else "–"])
    out.append(table(header, rows))
    load_rows = [[ENGINE_LABELS[e], loads[e].get("version", "?"),
                  f"{loads[e]['seconds']:.1f}" if "seconds" in loads[e] else "–",
                  "`oriel import` (backfill, compaction)" if e == "oriel" else
                  {"duckdb": "CREATE TABLE AS read_parquet, CHECKPOINT", "duckdb-parquet": "a view over the file",
                   "chdb": "CREATE TABLE MergeTree ORDER BY (site, __time) AS file(), OPTIMIZE FINAL",
                   "datafusion": "register_parquet"}[e]] for e in ENGINES if e in loads]
    out += ["", "Loading the data (not part of the query times):", "",
            table(["engine", "version", "seconds", "how"], load_rows, "llrl")]
    details = [f"- {ENGINE_LABELS[e]}, {q.name}: {answers[e][q.name].get('diff') or answers[e][q.name].get('error')}"
               for q in suite for e in ENGINES if answers[e].get(q.name, {}).get("status") in ("wrong", "error")]
    if details:
        out += ["", "Failed answers:", ""] + details
    return out


# ───────────────────────────── main ─────────────────────────────


# ───────────────────────────── 6. product analytics ─────────────────────────────

# Oriel's /api/v1/analytics answers beside DuckDB answering the same questions with the same
# definitions (docs/api.md) over its own table: site shop, the UI's 28 days, UTC.
AN_SCOPE = {"site": UI_SITE, "range": {"start": UI_FROM, "end": UI_TO}, "timeZone": "UTC"}
AN_WHERE = (f"site = '{UI_SITE}' AND __time >= TIMESTAMP '{UI_FROM}' AND __time < TIMESTAMP '{UI_TO}' "
            "AND NOT is_bot AND NOT is_duplicate AND NOT is_corrupt AND party_id IS NOT NULL")
# Sessions as Oriel cuts them: the tag's id, else 30 minutes of inactivity per visitor.
AN_SESSIONS = f"""
ev AS (SELECT party_id, session_id, event_id, event_type, path, channel, epoch_ms(__time) AS t FROM events WHERE {AN_WHERE}),
gap AS (SELECT *, CASE WHEN session_id IS NULL AND (lag(t) OVER w IS NULL OR t - lag(t) OVER w > 1800000) THEN 1 ELSE 0 END
        AS starts FROM ev WINDOW w AS (PARTITION BY party_id, session_id ORDER BY t, event_id)),
sess AS (SELECT *, party_id || coalesce('|tag|' || session_id, '|cut|' || CAST(sum(starts) OVER (PARTITION BY party_id,
         session_id ORDER BY t, event_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS VARCHAR)) AS sid FROM gap)"""
AN_FUNNEL_STEPS = [("path = '/'", {"path": "/"}), ("path LIKE '/products/%'", {"path": "/products/*"}),
                   ("event_type = 'addToCart'", {"eventType": "addToCart"}),
                   ("event_type = 'purchase'", {"eventType": "purchase"})]


def _an_funnel_duck() -> str:
    """A relaxed funnel per visitor within a day: from every first step, each next step at its
    first matching event after the previous (ASOF JOIN on the visitor's event order)."""
    conds = [c if "path" not in c else f"event_type = 'pageView' AND {c}" for c, _ in AN_FUNNEL_STEPS]
    parts = [f"e AS (SELECT party_id AS p, epoch_ms(__time) AS t, row_number() OVER (PARTITION BY party_id ORDER BY __time, "
             f"event_id) AS o, {', '.join(f'({c}) AS s{i}' for i, c in enumerate(conds))} FROM events WHERE {AN_WHERE})",
             "c0 AS (SELECT p, t AS t0, o FROM e WHERE s0)"]
    for i in range(1, len(conds)):
        parts.append(f"c{i} AS (SELECT c.p, c.t0, n.o FROM c{i - 1} c ASOF JOIN (SELECT p, t, o FROM e WHERE s{i}) n "
                     f"ON c.p = n.p AND n.o > c.o WHERE n.t - c.t0 <= 86400000)")
    counts = ", ".join(f"(SELECT count(DISTINCT p) FROM c{i})" for i in range(len(conds)))
    return f"WITH {', '.join(parts)} SELECT {counts}"


ANALYTICS = [
    ("sessions by channel", "sessions", {**AN_SCOPE, "breakdown": "channel", "limit": 1000},
     f"""WITH {AN_SESSIONS},
s AS (SELECT sid, min(party_id) AS party, min(t) AS started, max(t) AS ended,
      count(*) FILTER (WHERE event_type = 'pageView') AS views, arg_min(channel, (t, event_id)) AS k,
      arg_min(path, (t, event_id)) FILTER (WHERE event_type = 'pageView') AS entry,
      arg_max(path, (t, event_id)) FILTER (WHERE event_type = 'pageView') AS exit FROM sess GROUP BY sid)
SELECT 1 AS part, k, count(*), count(DISTINCT party), avg(ended - started) / 1000.0 FROM s GROUP BY k
UNION ALL SELECT 2, entry, count(*), count(DISTINCT party), avg(ended - started) / 1000.0 FROM s WHERE entry IS NOT NULL GROUP BY entry
UNION ALL SELECT 3, exit, count(*), count(DISTINCT party), avg(ended - started) / 1000.0 FROM s WHERE exit IS NOT NULL GROUP BY exit""",
     lambda a: sorted([str(b["key"]), b["sessions"]] for b in a["breakdown"]),
     lambda rows: sorted([str(r[1]), r[2]] for r in rows if r[0] == 1)),
    ("4-step funnel (/, /products/*, addToCart, purchase; 1 day)", "funnel",
     {**AN_SCOPE, "steps": [s for _, s in AN_FUNNEL_STEPS], "windowSeconds": 86400},
     _an_funnel_duck(),
     lambda a: [s["count"] for s in a["totals"]["steps"]],
     lambda rows: list(rows[0])),
    ("weekly retention (8 weeks)", "retention", {**AN_SCOPE, "period": "week", "periods": 8},
     f"""WITH ev AS (SELECT party_id AS p, date_trunc('week', __time) AS w, __time FROM events WHERE
        site = '{UI_SITE}' AND __time < TIMESTAMP '{UI_TO}' AND NOT is_bot AND NOT is_duplicate AND NOT is_corrupt
        AND party_id IS NOT NULL),
     f AS (SELECT p, min(w) AS c FROM ev GROUP BY p HAVING bool_or(__time >= TIMESTAMP '{UI_FROM}')),
     k AS (SELECT * FROM f WHERE c >= date_trunc('week', TIMESTAMP '{UI_FROM}')),
     a AS (SELECT DISTINCT p, w FROM ev)
SELECT k.c, date_diff('week', k.c, a.w) AS n, count(*) FROM k JOIN a ON a.p = k.p AND a.w >= k.c GROUP BY 1, 2 ORDER BY 1, 2""",
     lambda a: sorted([c["start"][:10], i, n] for c in a["cohorts"] for i, n in enumerate(c["returned"]) if n),
     lambda rows: sorted([normalize(r[0])[:10], r[1], r[2]] for r in rows if r[1] <= 8)),
    ("paths from / (depth 3)", "paths", {**AN_SCOPE, "from": "/", "depth": 3, "breadth": 5},
     f"""WITH {AN_SESSIONS},
x AS (SELECT path, lead(path, 1) OVER w AS n1, lead(path, 2) OVER w AS n2, lead(path, 3) OVER w AS n3 FROM sess
      WHERE event_type = 'pageView' WINDOW w AS (PARTITION BY sid ORDER BY t, event_id))
SELECT coalesce(n1, '(end)'), count(*) FROM x WHERE path = '/' GROUP BY 1""",
     lambda a: sorted([c["label"], c["count"]] for c in a["root"]["children"] if c["label"] != "(other)"),
     lambda rows: None),
]


def area_analytics(res: Results, work: Path, binary: Path, config: Path, data_cache: Path) -> None:
    """Each analytics question in Oriel (data imported, served) and in DuckDB, answers checked."""
    plan = res.plan
    version = re.sub(r"\W+", "_", oriel_version(binary))
    parquet = gen_events(binary, data_cache / f"events-{plan.query_events}-{plan.days:g}d-s{GEN_SEED}-{version}.parquet",
                         plan.query_events, plan.days)
    data_dir = work / "analytics-oriel"
    log("analytics: oriel import")
    run_checked([binary, "import", "--config", config, "--data-dir", data_dir, parquet])
    server = Oriel(binary, data_dir, config).start()
    answers = {}
    try:
        import pyarrow.parquet

        events = pyarrow.parquet.ParquetFile(parquet).metadata.num_rows
        server.wait_count(events, stall=10)
        with RssSampler(server.pid) as busy:
            for name, kind, body, _, _, _ in ANALYTICS:
                def ask(body=body, kind=kind):
                    status, text = server._request("POST", f"/api/v1/analytics/{kind}", json.dumps(body).encode(), 1800)
                    if status != 200:
                        raise SqlError(f"HTTP {status}: {text[:300].decode(errors='replace')}")
                    return json.loads(text)
                try:
                    run = timed_runs(lambda: [[ask()]], plan.warmup, plan.runs, plan.budget)
                    answers[name] = {"oriel": statistics.median(run["times"]) * 1000, "answer": run["rows"][0][0]}
                    log(f"  Oriel {name}: {answers[name]['oriel']:.0f} ms")
                except (SqlError, OSError) as e:
                    res.fail(f"Oriel analytics {name!r}: {e}")
        res.memory.append(("Oriel", "answering the analytics (max)", busy.max))
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    worker = Worker("duckdb", parquet, work / "analytics-duckdb")
    try:
        loaded = worker.ask(op="load")
        if "error" in loaded:
            res.fail(f"DuckDB could not load the data for the analytics: {loaded['error']}")
            return
        for name, _, _, sql, ours, theirs in ANALYTICS:
            if name not in answers:
                continue
            answer = worker.ask(op="query", sql=sql, warmup=plan.warmup, runs=plan.runs, budget=plan.budget)
            if "error" in answer:
                res.fail(f"DuckDB failed the analytics question {name!r}: {answer['error'][:300]}")
                continue
            answers[name]["duckdb"] = statistics.median(answer["times"]) * 1000
            log(f"  DuckDB {name}: {answers[name]['duckdb']:.0f} ms")
            expected = theirs(answer["rows"])
            if name.startswith("paths"):
                # The tree keeps the five largest branches: each must have DuckDB's count.
                counts = {str(r[0]): r[1] for r in answer["rows"]}
                expected = sorted([label, counts.get(label)] for label, _ in ours(answers[name]["answer"]))
            got = ours(answers[name]["answer"])
            answers[name]["same"] = got == expected
            if got != expected:
                res.fail(f"Oriel and DuckDB differ on {name!r}: {json.dumps(got, default=str)[:300]} vs "
                         f"{json.dumps(expected, default=str)[:300]}")
        res.memory.append(("DuckDB", "answering the analytics (peak, VmHWM)", worker.peak_rss()))
        worker.close()
    finally:
        end(worker.proc, grace=10)
        shutil.rmtree(work / "analytics-duckdb", ignore_errors=True)
    res.analytics = answers


def analytics_report(res: Results) -> list[str]:
    out = ["", "## 6. Product analytics", "",
           f"`POST /api/v1/analytics/*` on site `{UI_SITE}` over {UI_FROM} to {UI_TO} (UTC), median of the runs, beside "
           "DuckDB answering the same question with the same definitions over its own table (SQL in "
           "`bench/harness.py`; the answers are compared before a time counts). *How to read:* Oriel/DuckDB above 1 "
           "is slower than DuckDB; the goal is at most 1 and under 1,000 ms.", ""]
    rows = []
    for name, t in res.analytics.items():
        duck = t.get("duckdb")
        rows.append([name, fmt_ms(t["oriel"]), fmt_ms(duck) if duck else "–", f"{t['oriel'] / duck:.2f}" if duck else "–",
                     "yes" if t.get("same") else "**no**"])
    out.append(table(["question", "Oriel ms", "DuckDB ms", "Oriel/DuckDB", "same answer"], rows, "lrrrl"))
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, help="oriel binary (default: $CARGO_TARGET_DIR/release/oriel, "
                   "target/release/oriel, target/debug/oriel, whichever exists first); nothing is built")
    p.add_argument("--tier", choices=["10m", "100m"], default="10m", help="data size (default 10m: under 30 min in release)")
    p.add_argument("--smoke", action="store_true", help="tiny everything (about a minute); exits 1 on any wrong answer "
                   "or crash; writes its report to a temporary file, never bench/RESULTS.md")
    p.add_argument("--events", type=int, help="events of the query data set (overrides the tier)")
    p.add_argument("--ingest-events", type=int, help="events sent over HTTP and replayed (default: a fifth of --events, "
                   "20,000 to 2,000,000)")
    p.add_argument("--days", type=float, help="days the query data spans (default 28: four weekly cohorts)")
    p.add_argument("--runs", type=int, help="timed runs per query, the median is reported (default 5; smoke 1)")
    p.add_argument("--warmup", type=int, help="untimed runs per query before the timed ones (default 1; smoke 0)")
    p.add_argument("--query-budget", type=float, help="seconds of timed runs per query and engine; past it fewer runs "
                   "are taken, and a warm-up already past it is the one reported run (default 30)")
    p.add_argument("--store-partition", choices=["hour", "day"],
                   help="Oriel's store.partition for the query suite (default: Oriel's default, hour)")
    p.add_argument("--areas", default="collector,freshness,ingest,queries,analytics,kafka",
                   help="comma-separated subset of collector, freshness, ingest, queries, analytics, kafka")
    p.add_argument("--out", type=Path, help="report path (default bench/RESULTS.md; with --smoke a temporary file)")
    p.add_argument("--work-dir", type=Path, help=f"scratch space (default {CACHE}/bench-work; generated data is cached there)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--parquet", help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def make_plan(args) -> Plan:
    base = TIERS["smoke" if args.smoke else args.tier]
    plan = Plan(**vars(base))
    if args.events:
        plan.query_events = args.events
        plan.ingest_events = min(max(args.events // 5, 20_000), 2_000_000)
        plan.tier = base.tier if args.smoke else f"custom ({args.events:,} events)"
    if args.ingest_events:
        plan.ingest_events = args.ingest_events
    if args.days:
        plan.days = args.days
    if args.runs:
        plan.runs = args.runs
    if args.warmup is not None:
        plan.warmup = args.warmup
    if args.query_budget:
        plan.budget = args.query_budget
    return plan


def main(argv) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.parquet, args.dir)
        return 0

    ensure_debian_tools()
    python = ensure_venv()
    if not in_venv():
        # Everything below needs the peers; continue in the virtualenv's Python.
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *argv])

    signal.signal(signal.SIGTERM, on_terminate)
    atexit.register(end_all)
    binary = (args.binary or default_binary()).resolve()
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary} is not an executable")
    plan = make_plan(args)
    areas = [a.strip() for a in args.areas.split(",") if a.strip()]
    unknown = set(areas) - {"collector", "freshness", "ingest", "queries", "analytics", "kafka"}
    if unknown:
        raise SystemExit(f"unknown areas: {', '.join(sorted(unknown))}")

    if args.smoke:
        out_path = args.out  # None: a temporary file, made when the report is written
        work = Path(tempfile.mkdtemp(prefix="oriel-bench-"))
        data_cache = work
    else:
        out_path = args.out or BENCH / "RESULTS.md"
        data_cache = (args.work_dir or CACHE / "bench-work")
        work = data_cache / f"run-{os.getpid()}"
    data_cache.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    config = write_config(work / "oriel.toml")
    query_config = write_config(work / "oriel-queries.toml", args.store_partition)

    command = "bench/run " + " ".join(argv) if argv else "bench/run"
    res = Results(plan=plan, command=command.strip(), binary=binary, store_partition=args.store_partition or "hour")
    res.facts = machine_facts(binary)
    log(f"bench/run: tier {plan.tier}, Oriel {res.facts['Oriel']}")
    log(f"query data {plan.query_events:,} events; ingest {plan.ingest_events:,}; work dir {work}")
    if build_profile(binary) != "release":
        log("note: a debug build of Oriel: fine to check the harness, not for numbers")

    steps = {
        "collector": lambda: area_collector(res, work, binary, config),
        "freshness": lambda: area_freshness(res, work, binary, config),
        "ingest": lambda: area_ingest(res, work, binary, config),
        "queries": lambda: area_queries(res, work, binary, query_config, data_cache),
        "analytics": lambda: area_analytics(res, work, binary, query_config, data_cache),
        "kafka": lambda: area_kafka(res, work, binary, config),
    }
    try:
        for area in areas:
            t0 = time.monotonic()
            log(f"── {area}")
            try:
                steps[area]()
            except (RuntimeError, SqlError, OSError, subprocess.SubprocessError) as e:
                # One broken area must not hide the others' results: record it, go on.
                res.fail(f"{area} crashed: {e}")
            res.timings[area] = time.monotonic() - t0
        if out_path is None:
            out_path = Path(tempfile.mkdtemp(prefix="oriel-bench-smoke-")) / "RESULTS.md"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(report(res))
    finally:
        # Also on Ctrl-C, SIGTERM or a bug: no server outlives the harness, no scratch stays.
        end_all()
        shutil.rmtree(work, ignore_errors=True)
    log(f"report written to {out_path}")
    if res.failures:
        log(f"{len(res.failures)} problem(s):")
        for f in res.failures:
            print(f"  - {f}", flush=True)
        return 1
    log("no problems: every engine gave the same answers, no event was lost")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        log("interrupted: every process the harness started has been stopped")
        sys.exit(130)
