#!/usr/bin/env python3
"""Latency of `downbeat mcp` over stdio for two (or more) binaries, measured in the same run.

Needs nothing but the MCP Python SDK
(`pip install -r crates/downbeat/tests/python/requirements.txt`).

    python crates/downbeat/benches/mcp_latency.py \\
        --bin before=/path/to/old/downbeat --bin after=target/release/downbeat -n 200 --rounds 3

In every round each binary in turn (the order alternates from one round to the next) gets a
fresh project of 1,000 tasks (ten chains of 100, five roles: `plan()` of mcp_workloads.py).
Against it: five cold starts (spawn until `initialize` is answered), then one
`downbeat --project DIR mcp` session through the SDK's stdio client: `initialize` and
`tools/list` (not timed), `n` calls of each read (`tasks` show, ready, list limit 20,
`report` status, `context` list), `n` `context` insights and `n` claims of the best ready task,
each followed by `work complete` of that claim (timed separately). Calls go one at a time; a
call's latency runs from sending it to its parsed result (`time.perf_counter()`).

The table gives, per tool and binary, the median over rounds of each round's p50 and p95, in
milliseconds, and the ratio of each binary's figures to the first binary's. `--json` prints
one JSON document instead, per-round figures included. A failed call, a tool error
(`isError`) or a missing binary stops the run with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mcp_workloads import plan  # noqa: E402

try:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
except ImportError as e:
    sys.exit(
        f"mcp_latency: the MCP Python SDK is not importable ({e}); "
        "pip install -r crates/downbeat/tests/python/requirements.txt"
    )

COLD_SPAWNS = 5
CHAINS, LENGTH = 10, 100

COLD = "cold start"
READS: list[tuple[str, str, dict[str, Any]]] = [
    ("tasks show", "tasks", {"action": "show", "id": "c3-50"}),
    ("tasks ready", "tasks", {"action": "ready"}),
    ("tasks list limit 20", "tasks", {"action": "list", "limit": 20}),
    ("report status", "report", {"action": "status"}),
    ("context list", "context", {"action": "list"}),
]
INSIGHT = "context insight"
CLAIM = "claim best ready"
COMPLETE = "work complete"
LABELS = [COLD] + [r[0] for r in READS] + [INSIGHT, CLAIM, COMPLETE]


class BenchError(Exception):
    """Stops the benchmark; the message says why."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; the argument is the exit status."""


# Set by the signal handlers. The SDK's stdio client can absorb a task cancellation while it
# shuts a server down, so the benchmark also checks this before and after every call.
STOP: list[int] = []


def check_stop() -> None:
    if STOP:
        raise Interrupted(STOP[0])


@dataclass
class Binary:
    name: str
    path: str


Samples = dict[str, list[float]]  # label -> seconds
E = TypeVar("E", bound=BaseException)


def field(obj: object, *names: str) -> Any:
    """The first attribute present: SDK 1.x spells result fields in camelCase, 2.x in snake_case."""
    for n in names:
        v = getattr(obj, n, None)
        if v is not None:
            return v
    return None


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


async def run_command(argv: list[str]) -> None:
    """Runs a command to completion; kills it if the benchmark is interrupted meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        raise BenchError(f"`{' '.join(argv)}` exited with status {proc.returncode}:\n"
                         f"{out.decode(errors='replace').strip()[-2000:]}")


async def make_project(binary: str, project: Path) -> None:
    """A project of 1,000 tasks: ten chains of 100, five roles."""
    project.mkdir(parents=True)
    await run_command([binary, "--project", str(project), "init"])
    plan_file = project.parent / f"{project.name}-plan.json"
    plan_file.write_text(json.dumps(plan(CHAINS, LENGTH)))
    try:
        await run_command([binary, "--project", str(project), "plan", "apply", str(plan_file)])
    finally:
        plan_file.unlink(missing_ok=True)


def server(binary: str, project: Path) -> StdioServerParameters:
    return StdioServerParameters(command=binary, args=["--project", str(project), "mcp"],
                                 cwd=str(project))


async def call(session: ClientSession, label: str, tool: str, args: dict[str, Any]
               ) -> tuple[float, Any]:
    """One timed `tools/call`: the seconds from sending it to its parsed result, and that result."""
    check_stop()
    t0 = time.perf_counter()
    try:
        r = await session.call_tool(tool, args)
    except Exception as e:  # a protocol-level error or a broken connection
        check_stop()
        raise BenchError(f"{label}: {tool} {json.dumps(args)} failed: {e!r}") from e
    texts = [c.text for c in r.content if getattr(c, "type", None) == "text"]
    text = texts[0] if texts else ""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    dt = time.perf_counter() - t0
    if field(r, "is_error", "isError"):
        raise BenchError(f"{label}: {tool} {json.dumps(args)} returned an error: {text[:2000]}")
    if not isinstance(value, dict):
        raise BenchError(f"{label}: {tool} {json.dumps(args)} did not answer a JSON object: "
                         f"{text[:2000]!r}")
    return dt, value


async def cold_start(binary: str, project: Path, errlog: IO[str]) -> float:
    """Seconds from spawning the server until its `initialize` answer."""
    check_stop()
    t0 = time.perf_counter()
    async with stdio_client(server(binary, project), errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            dt = time.perf_counter() - t0
    return dt


async def session_calls(binary: str, project: Path, errlog: IO[str], n: int, tag: str,
                        samples: Samples) -> None:
    async with stdio_client(server(binary, project), errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()  # the SDK lists tools before a first call otherwise
            for label, tool, args in READS:
                for _ in range(n):
                    dt, _ = await call(session, label, tool, args)
                    samples[label].append(dt)
            for i in range(n):
                dt, _ = await call(session, INSIGHT, "context",
                                   {"action": "insight", "text": f"Insight {tag} {i}"})
                samples[INSIGHT].append(dt)
            for i in range(n):
                dt, got = await call(session, CLAIM, "claim", {})
                task, token = got.get("task"), got.get("token")
                if task is None or token is None:
                    raise BenchError(f"{CLAIM}: nothing claimed at call {i + 1}: "
                                     f"{json.dumps(got)[:2000]}")
                samples[CLAIM].append(dt)
                dt, _ = await call(session, COMPLETE, "work",
                                   {"action": "complete", "task": task, "token": token,
                                    "summary": "ok"})
                samples[COMPLETE].append(dt)


async def measure(b: Binary, workdir: Path, n: int, tag: str) -> Samples:
    """One round of one binary, on a fresh project that is removed afterwards."""
    project = workdir / f"{b.name}-{tag}"
    log = workdir / f"{b.name}-{tag}.stderr"
    samples: Samples = {label: [] for label in LABELS}
    try:
        await make_project(b.path, project)
        with log.open("w") as errlog:
            try:
                for _ in range(COLD_SPAWNS):
                    samples[COLD].append(await cold_start(b.path, project, errlog))
                await session_calls(b.path, project, errlog, n, tag, samples)
                check_stop()
            except Exception as e:  # the SDK's task groups wrap it in an exception group
                found = find(e, BenchError)
                if found is None:
                    raise
                errlog.flush()
                err = tail(log)
                raise BenchError(f"[{b.name}] {found}"
                                 + (f"\nserver stderr:\n{err}" if err else "")) from None
    finally:
        shutil.rmtree(project, ignore_errors=True)
        log.unlink(missing_ok=True)
    return samples


def quantile(xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks."""
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


async def bench(bins: list[Binary], n: int, rounds: int, workdir: Path, quiet: bool
                ) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """label -> binary name -> per-round (p50, p95) in milliseconds."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def stop(status: int) -> None:
        STOP.append(status)
        if task is not None:
            task.cancel()

    for sig, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            loop.add_signal_handler(sig, stop, status)
    figures: dict[str, dict[str, list[tuple[float, float]]]] = {
        label: {b.name: [] for b in bins} for label in LABELS}
    for r in range(rounds):
        order = bins if r % 2 == 0 else list(reversed(bins))
        for b in order:
            if not quiet:
                print(f"round {r + 1}/{rounds}: {b.name}", file=sys.stderr, flush=True)
            samples = await measure(b, workdir, n, f"r{r + 1}")
            for label, xs in samples.items():
                figures[label][b.name].append((quantile(xs, 0.5) * 1e3, quantile(xs, 0.95) * 1e3))
    return figures


def summarize(bins: list[Binary], figures: dict[str, dict[str, list[tuple[float, float]]]]
              ) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    base = bins[0].name
    for label in LABELS:
        row: dict[str, Any] = {}
        for b in bins:
            rs = figures[label][b.name]
            row[b.name] = {
                "p50_ms": round(statistics.median(p50 for p50, _ in rs), 4),
                "p95_ms": round(statistics.median(p95 for _, p95 in rs), 4),
                "p50_ms_rounds": [round(p50, 4) for p50, _ in rs],
                "p95_ms_rounds": [round(p95, 4) for _, p95 in rs],
            }
        for b in bins[1:]:
            row[f"{b.name}/{base}"] = {
                "p50": round(row[b.name]["p50_ms"] / row[base]["p50_ms"], 4),
                "p95": round(row[b.name]["p95_ms"] / row[base]["p95_ms"], 4),
            }
        out[label] = row
    return out


def table(bins: list[Binary], summary: dict[str, dict[str, Any]]) -> str:
    base = bins[0].name
    head = ["tool"]
    for b in bins:
        head += [f"{b.name} p50", f"{b.name} p95"]
    for b in bins[1:]:
        head += [f"{b.name}/{base} p50", f"{b.name}/{base} p95"]
    rows = [head]
    for label in LABELS:
        row = summary[label]
        cells = [label]
        for b in bins:
            cells += [f"{row[b.name]['p50_ms']:.2f}", f"{row[b.name]['p95_ms']:.2f}"]
        for b in bins[1:]:
            ratio = row[f"{b.name}/{base}"]
            cells += [f"{ratio['p50']:.2f}", f"{ratio['p95']:.2f}"]
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(r, widths))) + " |")
        if k == 0:
            lines.append("|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":")
                                        for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)


def parse_bins(specs: list[str]) -> list[Binary]:
    bins: list[Binary] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise BenchError(f"--bin {spec!r}: expected NAME=PATH")
        if any(b.name == name for b in bins):
            raise BenchError(f"--bin {spec!r}: the name {name!r} is given twice")
        p = Path(path).expanduser().resolve()
        if not p.is_file():
            raise BenchError(f"--bin {name}: no binary at {p}")
        if not os.access(p, os.X_OK):
            raise BenchError(f"--bin {name}: {p} is not executable")
        bins.append(Binary(name, str(p)))
    return bins


def find(e: BaseException, kind: type[E]) -> E | None:
    """The exception of this kind in an exception, looking inside exception groups."""
    if isinstance(e, kind):
        return e
    group = getattr(e, "exceptions", None)  # an exception group (the backport's too)
    if isinstance(group, (list, tuple)):
        for inner in group:
            found = find(inner, kind)
            if found is not None:
                return found
    return None


def main() -> int:
    ap = argparse.ArgumentParser(
        description="MCP server latency of `downbeat` binaries, measured in the same run.")
    ap.add_argument("--bin", action="append", required=True, metavar="NAME=PATH",
                    help="a binary to measure (give two; ratios are against the first)")
    ap.add_argument("-n", type=int, default=200, help="calls per tool per round (default 200)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    a = ap.parse_args()
    if a.n < 1 or a.rounds < 1:
        ap.error("-n and --rounds must be at least 1")
    try:
        bins = parse_bins(a.bin)
    except BenchError as e:
        print(f"mcp_latency: {e}", file=sys.stderr)
        return 2

    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="downbeat-mcp-latency-"))
    try:
        figures = asyncio.run(bench(bins, a.n, a.rounds, workdir, a.json))
    except BaseException as e:
        stopped = find(e, Interrupted)
        if STOP or stopped is not None or isinstance(e, KeyboardInterrupt):
            print("mcp_latency: interrupted; temporary projects and servers removed",
                  file=sys.stderr)
            return STOP[0] if STOP else 130
        found = find(e, BenchError)
        if found is None:
            raise
        print(f"mcp_latency: {found}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    summary = summarize(bins, figures)
    if a.json:
        doc = {
            "n": a.n,
            "rounds": a.rounds,
            "cold_spawns": COLD_SPAWNS,
            "project": {"tasks": CHAINS * LENGTH, "chains": CHAINS, "length": LENGTH},
            "binaries": {b.name: b.path for b in bins},
            "python": platform.python_version(),
            "mcp_sdk": metadata.version("mcp"),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "cpus": os.cpu_count(),
            "tools": summary,
        }
        print(json.dumps(doc, indent=2))
    else:
        print(f"downbeat mcp latency: {a.n} calls per tool, {a.rounds} rounds, "
              f"{COLD_SPAWNS} cold starts per binary per round, {CHAINS * LENGTH} tasks")
        for b in bins:
            print(f"  {b.name} = {b.path}")
        print(f"  MCP Python SDK {metadata.version('mcp')}, CPython {platform.python_version()}, "
              f"{os.cpu_count()} CPUs")
        print("  load average before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}".format(
            *load_before, *load_after))
        print("  ms; median over rounds of each round's p50 and p95\n")
        print(table(bins, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
