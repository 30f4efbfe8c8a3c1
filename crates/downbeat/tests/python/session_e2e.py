#!/usr/bin/env python3
"""End-to-end session against the real `downbeat mcp` binary, driven by the official MCP
Python SDK client (the `mcp` package, see requirements.txt) over stdio.

    python session_e2e.py /path/to/downbeat        # or DOWNBEAT_BIN=/path/to/downbeat

It creates a temporary project (`downbeat init`), then plays a conductor and its sub-agents:
session start and brief, a whole plan with dependencies in one call, ready set and waves,
claims with prompts and fencing tokens, a completion with summary, artifact, flag and
discovered task, a stale-token completion (must be a tool error and change nothing), two
server processes claiming at the same time (never the same task), the dependents, synthesis,
handover (tool and resource), and the final statuses.

Exit status 0 when every check passed; otherwise 1, with the failed check on stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

try:
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
except ImportError as e:  # the Rust test checks this first; this is for direct runs
    sys.exit(
        f"session_e2e: the MCP Python SDK is not importable ({e}); "
        "run `pip install -r crates/downbeat/tests/python/requirements.txt`"
    )

try:
    from mcp import Implementation
except ImportError:  # older SDKs
    from mcp.types import Implementation

CALL_TIMEOUT_S = 60
TOTAL_TIMEOUT_S = 180


class CheckFailed(Exception):
    pass


def check(cond: bool, what: str, got=None) -> None:
    if not cond:
        detail = "" if got is None else f"\n  got: {json.dumps(got, indent=None, default=str)[:2000]}"
        raise CheckFailed(f"{what}{detail}")


def field(obj, *names):
    """The first present attribute: SDK 1.x uses camelCase fields, 2.x snake_case."""
    for n in names:
        v = getattr(obj, n, None)
        if v is not None:
            return v
    return None


class Client:
    """One MCP client session to one `downbeat mcp` process."""

    def __init__(self, session: ClientSession, name: str):
        self.session, self.name = session, name

    async def call_raw(self, tool: str, args: dict) -> tuple[bool, object]:
        """Calls a tool; returns (is_error, the result text parsed as JSON when it is JSON)."""
        with anyio.fail_after(CALL_TIMEOUT_S):
            r = await self.session.call_tool(tool, args)
        texts = [c.text for c in r.content if getattr(c, "type", None) == "text"]
        text = texts[0] if texts else ""
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        return bool(field(r, "is_error", "isError")), value

    async def call(self, tool: str, args: dict) -> dict:
        """Calls a tool that must succeed and answer a JSON object."""
        err, v = await self.call_raw(tool, args)
        check(not err, f"[{self.name}] {tool} {json.dumps(args)} failed", v)
        check(isinstance(v, dict), f"[{self.name}] {tool} {json.dumps(args)}: not a JSON object", v)
        return v

    async def fails(self, tool: str, args: dict, needle: str) -> str:
        """Calls a tool that must be refused with a tool error containing `needle`."""
        err, v = await self.call_raw(tool, args)
        text = v if isinstance(v, str) else json.dumps(v)
        check(err, f"[{self.name}] {tool} {json.dumps(args)} should be a tool error", v)
        check(needle in text, f"[{self.name}] {tool}: expected `{needle}` in the error", text)
        return text

    async def read_text(self, uri: str) -> str:
        with anyio.fail_after(CALL_TIMEOUT_S):
            r = await self.session.read_resource(uri)
        check(len(r.contents) == 1, f"resource {uri}: one content", str(r))
        return r.contents[0].text


class Server:
    """Spawns `downbeat --project DIR mcp` through the SDK's stdio client."""

    def __init__(self, binary: str, project: Path, client_name: str, errlog):
        self.params = StdioServerParameters(
            command=binary,
            args=["--project", str(project), "mcp"],
            cwd=str(project),
            env={"RUST_BACKTRACE": "1"},
        )
        self.client_name, self.errlog = client_name, errlog

    async def __aenter__(self) -> Client:
        self._transport = stdio_client(self.params, errlog=self.errlog)
        read, write = await self._transport.__aenter__()
        self._session = ClientSession(
            read, write, client_info=Implementation(name=self.client_name, version="1.0")
        )
        await self._session.__aenter__()
        with anyio.fail_after(CALL_TIMEOUT_S):
            init = await self._session.initialize()
        info = field(init, "server_info", "serverInfo")
        check(info is not None and info.name == "downbeat", "initialize names the server", str(init))
        return Client(self._session, self.client_name)

    async def __aexit__(self, *exc):
        try:
            await self._session.__aexit__(*exc)
        finally:
            await self._transport.__aexit__(*exc)
        return False


PLAN = {
    "plan": {"name": "Rate limiting"},
    "objectives": [{"title": "Protect the API from bursts", "tasks": ["impl"]}],
    "decisions": [{"text": "Token bucket per client", "why": "simple and fair"}],
    "tasks": [
        {"key": "feature", "title": "Rate limiting", "role": "architect"},
        {"key": "design", "parent": "feature", "title": "Design the limiter", "role": "architect", "effort": 2},
        {"key": "impl", "parent": "feature", "title": "Implement the limiter", "role": "implementer",
         "depends_on": ["design"], "files": ["src/limiter.rs"]},
        {"key": "docs", "parent": "feature", "title": "Document the limits", "role": "documenter",
         "depends_on": ["design"]},
        {"key": "test", "parent": "feature", "title": "Test the limiter", "role": "tester",
         "depends_on": ["impl"]},
    ],
}

RULES = """
[[rules]]
flag = "NEEDS_REVIEW"
action = "add-task"
role = "reviewer"
title = "Review {{ task.title }}"
"""


async def session(binary: str, project: Path, errlog) -> None:
    async with Server(binary, project, "e2e-conductor", errlog) as c:
        tools = await c.session.list_tools()
        names = sorted(t.name for t in tools.tools)
        check(names == ["claim", "context", "plan", "report", "run", "session", "tasks", "work"],
              "default profile tools", names)

        # -- session start and brief
        s = await c.call("session", {"action": "start", "label": "e2e"})
        check(s.get("started") is True, "session start", s)
        s = await c.call("session", {})
        check("No tasks yet" in s.get("brief", ""), "brief of an empty project", s)

        # -- a whole plan in one call
        checked = await c.call("plan", {"action": "check", "plan": PLAN})
        check(checked == {"valid": True, "tasks": 5, "edges": 3, "objectives": 1}, "plan check", checked)
        applied = await c.call("plan", {"plan": PLAN})
        check(len(applied.get("tasks", [])) == 5, "plan apply created 5 tasks", applied)
        keys = applied["keys"]
        design, impl, docs, test = keys["design"], keys["impl"], keys["docs"], keys["test"]
        check(len({design, impl, docs, test, keys["feature"]}) == 5, "distinct task ids", keys)
        bad = {"tasks": [{"key": "a", "title": "A", "depends_on": ["b"]},
                         {"key": "b", "title": "B", "depends_on": ["a"]}]}
        await c.fails("plan", {"plan": bad}, "cycle")
        listed = await c.call("tasks", {"action": "list"})
        check(listed.get("count") == 5, "a refused plan writes nothing", listed)

        # -- ready set and waves
        waves = await c.call("plan", {"action": "waves", "workers": [1, 2]})
        check(waves.get("ready") == [design], "only the design is ready", waves)
        check(len(waves.get("waves", [])) == 3, "three waves", waves)
        check(waves.get("critical_path_effort") == 4, "critical path effort", waves)
        ready = await c.call("tasks", {"action": "ready"})
        check([t["id"] for t in ready.get("ready", [])] == [design], "tasks ready", ready)
        s = await c.call("session", {"action": "resume"})
        check("Next (ready now)" in s.get("brief", ""), "brief lists the next work", s)

        # -- claim the best ready task: prompt and fencing token
        cl = await c.call("claim", {"worker": "w1"})
        check(cl.get("task") == design, "claim takes the design", cl)
        check("You are the architect" in cl.get("prompt", ""), "claim renders the role's prompt", cl)
        check("Protect the API from bursts" in cl["prompt"], "prompt carries the objective", cl)
        check(cl.get("holder") == "mcp:e2e-conductor/w1", "lease holder", cl)
        old_token = cl["token"]
        check(isinstance(old_token, str) and old_token.count(".") == 1, "fencing token is EPOCH.ATTEMPT", cl)
        none = await c.call("claim", {})
        check(none.get("task") is None and none.get("reason"), "nothing else is ready", none)

        # a stale token: give the task back, claim it again, complete with the old token
        rel = await c.call("work", {"action": "release", "task": design, "token": old_token})
        check(rel.get("status") == "pending", "release", rel)
        cl = await c.call("claim", {"task": design, "prompt": False})
        token = cl["token"]
        check(token != old_token and cl.get("attempt") == 2, "a new claim has a new token", cl)
        await c.fails("work", {"task": design, "token": old_token, "summary": "late"},
                      f"stale fencing token {old_token}")
        shown = await c.call("tasks", {"action": "show", "id": design})
        check(shown.get("state") == "running" and shown["lease"]["token"] == token,
              "a stale completion changes nothing", shown)
        hb = await c.call("work", {"action": "heartbeat", "task": design, "token": token, "lease": "10m"})
        check("lease_until" in hb, "heartbeat", hb)

        # an artifact outside the project is refused, and records nothing
        (project.parent / "outside.md").write_text("not part of the project\n")
        await c.fails("work", {"task": design, "token": token, "summary": "x",
                               "artifacts": ["../outside.md"]}, "outside")

        # -- complete with summary, artifact, flag and discovered task
        (project / "docs").mkdir(exist_ok=True)
        (project / "docs" / "limiter.md").write_text("# Limiter\n\nOne token bucket per client.\n")
        done = await c.call("work", {
            "task": design, "token": token,
            "summary": "Token bucket per client, refilled every second",
            "artifacts": ["docs/limiter.md"],
            "flags": ["NEEDS_REVIEW"],
            "discovered": [{"title": "Benchmark the bucket", "role": "debugger"}],
        })
        check(done.get("status") == "completed", "design completed", done)
        check(done.get("artifacts") == ["docs/limiter.md"], "artifact recorded", done)
        check(len(done.get("created", [])) == 2, "the flag's follow-up and the discovered task", done)
        check(done.get("flags", [{}])[0].get("flag") == "NEEDS_REVIEW", "flag handled", done)
        check((project / ".downbeat" / "artifacts").is_dir(), "artifact copied into .downbeat/artifacts")
        await c.fails("work", {"task": design, "token": token, "summary": "again"}, "now completed")
        listed = await c.call("tasks", {"action": "list", "search": "Review Design"})
        check(listed.get("count") == 1, "the flag rule added a review task", listed)
        review = listed["tasks"][0]["id"]
        listed = await c.call("tasks", {"action": "list", "search": "Benchmark the bucket"})
        check(listed.get("count") == 1, "the discovered task", listed)
        bench = listed["tasks"][0]["id"]
        check(set(done["created"]) == {review, bench}, "created = review + discovered", done)
        shown = await c.call("tasks", {"action": "show", "id": bench})
        check(shown.get("role") == "debugger", "the discovered task's role", shown)

        # -- two server processes claim at the same time: never the same task
        async with Server(binary, project, "e2e-agent", errlog) as b:
            ready = await c.call("tasks", {"action": "ready"})
            ready_ids = {t["id"] for t in ready.get("ready", [])}
            check({impl, docs} <= ready_ids, "impl and docs are ready after the design", ready)
            results: dict[str, dict] = {}

            async def claim(client: Client) -> None:
                results[client.name] = await client.call("claim", {"prompt": False})

            for _ in range(5):
                results.clear()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(claim, c)
                    tg.start_soon(claim, b)
                got = [r.get("task") for r in results.values()]
                check(all(got) and got[0] != got[1], "two concurrent claims got two different tasks", results)
                for r in results.values():
                    rel = await (c if r["holder"].startswith("mcp:e2e-conductor") else b).call(
                        "work", {"action": "release", "task": r["task"], "token": r["token"]})
                    check(rel.get("status") == "pending", "release after the race", rel)

            # the agent takes the docs, the conductor the implementation
            got = await b.call("claim", {"task": docs, "prompt": False})
            check(got.get("holder") == "mcp:e2e-agent", "the second process holds the docs", got)
            await b.fails("claim", {"task": docs}, "already claimed")
            cl = await c.call("claim", {"task": "impl"})
            check(cl.get("task") == impl, "claim by plan key", cl)
            p = cl.get("prompt", "")
            check("Token bucket per client" in p and "docs/limiter.md" in p,
                  "the dependent's prompt carries the design's result and artifact", cl)
            (project / "src").mkdir(exist_ok=True)
            (project / "src" / "limiter.rs").write_text("pub struct Limiter;\n")
            done = await c.call("work", {"task": impl, "token": cl["token"],
                                         "summary": "Limiter in src/limiter.rs",
                                         "artifacts": ["src/limiter.rs"]})
            check(done.get("status") == "completed", "impl completed", done)
            done = await b.call("work", {"task": docs, "token": got["token"], "summary": "Limits documented"})
            check(done.get("status") == "completed", "docs completed by the second process", done)

        # -- the test task now, then synthesis and handover
        cl = await c.call("claim", {"role": "tester"})
        check(cl.get("task") == test, "the test task became ready", cl)
        done = await c.call("work", {"task": test, "token": cl["token"], "summary": "All limits hold"})
        check(done.get("status") == "completed", "test completed", done)
        await c.call("context", {"action": "insight", "text": "Bursts above 100/s are rare", "task": design})

        syn = await c.call("report", {"action": "synthesize", "id": "feature"})
        check(syn.get("path", "").endswith(".md"), "synthesis path", syn)
        text = syn.get("text", "")
        for needle in ("Token bucket per client", "Limiter in src/limiter.rs", "All limits hold"):
            check(needle in text, f"synthesis mentions `{needle}`", syn)
        check((project / syn["path"]).is_file() or Path(syn["path"]).is_file(), "synthesis written", syn)

        h = await c.call("report", {"action": "handover"})
        check(h.get("path", "").endswith("handover.md"), "handover path", h)
        check((project / ".downbeat" / "handover.md").is_file(), "handover written")
        doc = await c.read_text("downbeat://handover")
        check(doc.startswith("# Handover"), "handover resource", doc[:200])
        check("Bursts above 100/s are rare" in doc, "handover carries the insight", doc)
        task_doc = json.loads(await c.read_text(f"downbeat://task/{design}"))
        check(task_doc.get("state") == "completed", "task resource", task_doc)

        # -- final state
        for tid, want in ((design, "completed"), (impl, "completed"), (docs, "completed"),
                          (test, "completed"), (review, "ready"), (bench, "ready")):
            shown = await c.call("tasks", {"action": "show", "id": tid})
            check(shown.get("state") == want, f"task {tid} is {want}", shown)
        st = await c.call("report", {"action": "status"})
        check(st.get("progress") == "4/6", "progress 4/6 (the container does not count)", st)
        check(st.get("roles", {}).get("implementer") == "1/1", "implementer progress", st)
        end = await c.call("session", {"action": "end"})
        check(end.get("ended") is True, "session end", end)


def check_failure(e: BaseException) -> CheckFailed | None:
    """The failed check inside `e` (task groups wrap exceptions in groups), if any."""
    if isinstance(e, CheckFailed):
        return e
    for inner in getattr(e, "exceptions", ()):
        found = check_failure(inner)
        if found is not None:
            return found
    return None


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DOWNBEAT_BIN")
    if not binary or not Path(binary).is_file():
        print(f"session_e2e: no downbeat binary (argument or DOWNBEAT_BIN): {binary!r}", file=sys.stderr)
        return 2
    binary = str(Path(binary).resolve())
    tmp = Path(tempfile.mkdtemp(prefix="downbeat-e2e-"))
    project = tmp / "project"
    project.mkdir()
    errlog_path = tmp / "server-stderr.log"
    ok = False
    try:
        init = subprocess.run([binary, "--project", str(project), "init"],
                              capture_output=True, text=True, timeout=60)
        if init.returncode != 0:
            raise CheckFailed(f"downbeat init failed ({init.returncode}): {init.stderr}")
        with open(project / ".downbeat" / "config.toml", "a") as f:
            f.write(RULES)
        with open(errlog_path, "w") as errlog:

            async def run() -> None:
                with anyio.fail_after(TOTAL_TIMEOUT_S):
                    await session(binary, project, errlog)

            anyio.run(run)
        ok = True
        print("session_e2e: ok")
        return 0
    except BaseException as e:  # noqa: BLE001 -- any failure fails the test
        failed = check_failure(e)
        if failed is not None:
            print(f"session_e2e: FAILED: {failed}", file=sys.stderr)
        else:
            print("session_e2e: FAILED with an exception:", file=sys.stderr)
            traceback.print_exc()
    finally:
        if not ok:
            log = errlog_path.read_text() if errlog_path.exists() else ""
            if log.strip():
                print(f"--- server stderr ---\n{log}", file=sys.stderr)
            print(f"(project kept in {project})", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
