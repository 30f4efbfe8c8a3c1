#!/usr/bin/env python3
"""Workloads for `downbeat mcp` in the stdio MCP benchmark harness (`mcp_bench.py`, which
drives a server with the official MCP Python SDK client and prints JSON figures).

    # a project of 1,000 tasks (ten chains of 100, five roles) to point --cmd at
    python mcp_workloads.py make-project /tmp/db1000 --bin target/release/downbeat

    # a workload: registers `downbeat` with the harness and runs it; every other argument
    # goes to mcp_bench.py (each run gets a fresh 1,000-task project in its work directory)
    python mcp_workloads.py --harness DIR --bin target/release/downbeat --workload reads -n 200

Workloads: `reads` (tasks show/list/ready, context list, report status), `writes` (context
insight, claim of the best ready task followed by work complete, tasks add, claim of a named
task followed by work complete).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROLES = ["architect", "implementer", "tester", "reviewer", "documenter"]


def plan(chains: int, length: int) -> dict:
    tasks = []
    for c in range(chains):
        for j in range(length):
            t = {"key": f"c{c}-{j}", "title": f"Chain {c} step {j}",
                 "role": ROLES[(c + j) % len(ROLES)]}
            if j:
                t["depends_on"] = [f"c{c}-{j - 1}"]
            tasks.append(t)
    return {"plan": {"name": f"{chains} chains of {length}"},
            "objectives": [{"title": "Finish every chain", "tasks": [f"c{c}-{length - 1}" for c in range(chains)]}],
            "decisions": [{"text": "Chains run in parallel", "why": "benchmark"}],
            "tasks": tasks}


def make_project(binary: str, project: str, chains: int = 10, length: int = 100) -> None:
    Path(project).mkdir(parents=True, exist_ok=True)
    subprocess.run([binary, "--project", project, "init"], check=True, capture_output=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(plan(chains, length), f)
    try:
        subprocess.run([binary, "--project", project, "plan", "apply", f.name], check=True,
                       capture_output=True)
    finally:
        os.unlink(f.name)


def entry(binary: str, registry) -> dict:
    call, loop = registry.call, registry.loop

    def ok(text, ctx):
        return None if text.startswith("{") else text[:200]

    def expect_count(want):
        def check(text, ctx):
            got = json.loads(text).get("count")
            return None if got == want else f"listed {got}, expected {want}"
        return check

    def claimed(field):
        return lambda text, ctx: json.loads(text)[field]

    def complete(ctx):
        return {"task": ctx.vars["task"][-1], "token": ctx.vars["token"][-1],
                "summary": f"done {ctx.i}"}

    def expect_claim(text, ctx):
        return None if json.loads(text).get("task") else f"nothing claimed: {text[:200]}"

    return {
        "description": "downbeat mcp (default profile)",
        "command": binary,
        "args": ["--project", "{workdir}", "mcp"],
        "prepare": lambda workdir: make_project(binary, workdir),
        "is_error": lambda text: None if text.startswith("{") else text[:300],
        "workloads": {
            "reads": {"measure": [
                loop("n", call("tasks", lambda c: {"action": "show", "id": f"c{c.i % 10}-{c.i % 100}"},
                               label="tasks show")),
                loop("n", call("tasks", {"action": "list", "limit": 20}, label="tasks list limit 20",
                               expect=expect_count(20))),
                loop("n", call("tasks", {"action": "list", "status": ["ready"]}, label="tasks list ready",
                               expect=expect_count(10))),
                loop("n", call("tasks", {"action": "list"}, label="tasks list all",
                               expect=expect_count(1000))),
                loop("n", call("tasks", {"action": "ready"}, label="tasks ready")),
                loop("n", call("context", {}, label="context list")),
                loop("n", call("report", {}, label="report status")),
            ]},
            "writes": {"measure": [
                loop("n", call("context", {"action": "insight", "text": "Insight {i}"},
                               label="context insight")),
                loop("n", call("claim", {"prompt": False}, label="claim best",
                               capture={"task": claimed("task"), "token": claimed("token")},
                               expect=expect_claim),
                     call("work", complete, label="work complete")),
                loop("n", call("tasks", {"action": "add", "title": "Added {i}", "role": "tester", "key": "a{i}"},
                               label="tasks add")),
                loop("n", call("claim", {"task": "a{i}", "prompt": False}, label="claim named",
                               capture={"task": claimed("task"), "token": claimed("token")},
                               expect=expect_claim),
                     call("work", complete, label="work complete (named)")),
            ]},
        },
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "make-project":
        ap = argparse.ArgumentParser(prog="mcp_workloads.py make-project")
        ap.add_argument("dir")
        ap.add_argument("--bin", default="target/release/downbeat")
        ap.add_argument("--chains", type=int, default=10)
        ap.add_argument("--length", type=int, default=100)
        a = ap.parse_args(sys.argv[2:])
        make_project(str(Path(a.bin).resolve()), a.dir, a.chains, a.length)
        return
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--harness", default=os.environ.get("MCP_BENCH_DIR"),
                    help="the directory holding mcp_bench.py and servers.py")
    ap.add_argument("--bin", default="target/release/downbeat")
    a, rest = ap.parse_known_args()
    if not a.harness or not (Path(a.harness) / "mcp_bench.py").is_file():
        sys.exit("--harness DIR (or MCP_BENCH_DIR) must name the directory of mcp_bench.py")
    sys.path.insert(0, str(Path(a.harness).resolve()))
    import servers  # noqa: PLC0415 -- the harness's registry
    import mcp_bench  # noqa: PLC0415

    servers.SERVERS["downbeat"] = entry(str(Path(a.bin).resolve()), servers)
    sys.argv = [sys.argv[0], "--server", "downbeat"] + rest
    mcp_bench.main()


if __name__ == "__main__":
    main()
