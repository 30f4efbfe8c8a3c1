"""Shared library of the fake coding-agent CLIs (claude, codex, gemini, aider, opencode).

Python 3.11, standard library only.  Each fake under ../bin/ parses its own
command line exactly like the real CLI and uses this module for everything
that is the same across CLIs: the test script, prompt checks, permissions,
edits, sessions, the MCP stdio client and the invocation log.

Environment contract (see ../README.md):

  FAKE_AGENT_SCRIPT     JSON file {"steps": [Step, ...]}; first matching step applies
  FAKE_AGENT_LOG        append one JSON line per invocation
  FAKE_AGENT_STATE      session store root (default $HOME/.fake-agents)
  FAKE_AGENT_VERSION    overrides the version the fake reports
  FAKE_AGENT_FAIL_AUTH  "1": behave as if not logged in
  DOWNBEAT_ATTEMPT      matched against a step's "attempt"
  DOWNBEAT_RESULT_FILE  where a step's "result_file" value is written

Step keys: when, attempt, write, append, message, result_file, exit, stderr,
error, sleep_ms, usage, cost_usd, mcp.

Typical use in a fake:

    run = fakeagent.Invocation("claude")
    run.stdin = fakeagent.read_stdin()          # only where the CLI reads stdin
    run.prompt = ...                            # as the CLI combines arg/stdin
    fakeagent.check_prompt_twice("claude", run.prompt)
    run.permission = "read" | "edit" | "full"
    step = run.pick_step()
    store = fakeagent.SessionStore("claude")
    run.session_id = store.create(run.prompt)   # or store.append(id, prompt)
    outcome = run.perform_edits(step)           # -> EditOutcome
    run.mcp_results = run.call_mcp(step, servers)
    fakeagent.write_result_file(step)
    fakeagent.sleep_step(step)
    run.write_log()
    ... print the CLI's output ...
    fakeagent.emit_stderr(step); sys.exit(exit_code(step))

The public API of this module (names listed in __all__) is shared by several
fakes: only extend it compatibly.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PERMISSIONS",
    "DEFAULT_MESSAGE",
    "DEFAULT_USAGE",
    "MCP_PROTOCOL_VERSION",
    "MCP_TIMEOUT_S",
    "TWICE_MIN_LEN",
    "die",
    "read_stdin",
    "peek_stdin",
    "load_script",
    "pick_step",
    "step_message",
    "step_usage",
    "step_cost",
    "exit_code",
    "emit_stderr",
    "sleep_step",
    "write_result_file",
    "prompt_delivered_twice",
    "check_prompt_twice",
    "allows_edit",
    "EditOutcome",
    "perform_edits",
    "SessionStore",
    "McpError",
    "McpClient",
    "call_mcp_steps",
    "version",
    "auth_failed",
    "Invocation",
    "install_signal_log",
    "write_log",
    "new_id",
]

PERMISSIONS = ("read", "edit", "full")
DEFAULT_MESSAGE = "Done."
DEFAULT_USAGE = {"input_tokens": 100, "output_tokens": 20}
MCP_PROTOCOL_VERSION = "2025-06-18"
MCP_TIMEOUT_S = 10.0
TWICE_MIN_LEN = 20


# --------------------------------------------------------------------------- basics


def die(message: str, code: int = 1) -> "NoReturn":  # type: ignore[name-defined]
    """Print `message` (a newline is added) to stderr and exit with `code`."""
    sys.stderr.write(message if message.endswith("\n") else message + "\n")
    sys.stderr.flush()
    sys.exit(code)


def read_stdin() -> str | None:
    """Read all of stdin as text.

    Returns None when stdin is closed/absent, is a terminal, or is empty
    (the log records null then)."""
    try:
        stream = sys.stdin
        if stream is None or stream.closed:
            return None
        if stream.isatty():
            return None
        data = stream.buffer.read()
    except (OSError, ValueError):
        return None
    text = data.decode("utf-8", errors="replace")
    return text if text != "" else None


def peek_stdin(timeout_s: float) -> tuple[str | None, bool]:
    """Read stdin like a CLI that waits at most `timeout_s` for the FIRST byte
    (Claude Code's 3 s peek): returns (text, timed_out).

    - stdin a terminal / closed: (None, False), nothing read;
    - EOF at once (e.g. /dev/null, closed pipe): (None, False);
    - data within the timeout: read to EOF, (text, False);
    - nothing within the timeout (an open pipe nobody writes): (None, True)."""
    try:
        stream = sys.stdin
        if stream is None or stream.closed or stream.isatty():
            return None, False
        fd = stream.fileno()
    except (OSError, ValueError):
        return None, False
    try:
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout_s))
    except (OSError, ValueError):
        ready = [fd]
    if not ready:
        return None, True
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return (text if text != "" else None), False


def new_id() -> str:
    """A fresh session id (uuid4 string)."""
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- script


def load_script() -> list[dict]:
    """The steps of FAKE_AGENT_SCRIPT ([] when unset).  A bad file exits 70."""
    path = os.environ.get("FAKE_AGENT_SCRIPT")
    if not path:
        return []
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        die(f"fake-agent: cannot read FAKE_AGENT_SCRIPT {path}: {exc}", 70)
    steps = doc.get("steps", []) if isinstance(doc, dict) else doc
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        die(f"fake-agent: FAKE_AGENT_SCRIPT {path}: 'steps' must be a list of objects", 70)
    return steps


def pick_step(prompt: str | None, steps: list[dict] | None = None) -> dict:
    """The first step whose `when` occurs in the prompt and whose `attempt`
    equals DOWNBEAT_ATTEMPT (missing keys match anything); {} when none does
    (default behaviour: message "Done.", no edits, exit 0)."""
    if steps is None:
        steps = load_script()
    prompt = prompt or ""
    attempt_env = os.environ.get("DOWNBEAT_ATTEMPT")
    for step in steps:
        when = step.get("when")
        if when is not None and str(when) not in prompt:
            continue
        if "attempt" in step:
            try:
                if attempt_env is None or int(attempt_env) != int(step["attempt"]):
                    continue
            except (TypeError, ValueError):
                continue
        return step
    return {}


def step_message(step: dict) -> str:
    """The step's `message`, or the text of the file its `message_file` names (relative to
    the working directory); default "Done."."""
    if step.get("message_file") is not None:
        with open(str(step["message_file"]), encoding="utf-8") as fh:
            return fh.read()
    msg = step.get("message")
    return DEFAULT_MESSAGE if msg is None else str(msg)


def step_usage(step: dict) -> dict:
    """{"input_tokens", "output_tokens"} (defaults 100 / 20) plus any extra keys."""
    usage = dict(DEFAULT_USAGE)
    given = step.get("usage") or {}
    if isinstance(given, dict):
        usage.update(given)
    return usage


def step_cost(step: dict, default: float = 0.0123) -> float:
    cost = step.get("cost_usd")
    return float(default if cost is None else cost)


def exit_code(step: dict) -> int:
    """The exit code the step asks for: 1 when `error` is set, else `exit` (default 0)."""
    if step.get("error"):
        return int(step.get("exit", 1) or 1)
    return int(step.get("exit", 0) or 0)


def emit_stderr(step: dict) -> None:
    text = step.get("stderr")
    if text:
        sys.stderr.write(str(text))
        if not str(text).endswith("\n"):
            sys.stderr.write("\n")
        sys.stderr.flush()


def sleep_step(step: dict) -> None:
    ms = step.get("sleep_ms")
    if ms:
        sys.stdout.flush()
        time.sleep(float(ms) / 1000.0)


def write_result_file(step: dict) -> str | None:
    """Write the step's `result_file` JSON value to $DOWNBEAT_RESULT_FILE (no
    permission needed: it lies outside the repo).  Returns the path written."""
    if "result_file" not in step:
        return None
    path = os.environ.get("DOWNBEAT_RESULT_FILE")
    if not path:
        return None
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(step["result_file"], fh)
    return path


# --------------------------------------------------------------------------- prompt


def prompt_delivered_twice(prompt: str | None, min_len: int = TWICE_MIN_LEN) -> bool:
    """True when the prompt holds the same non-trivial text twice, e.g. argument
    plus appended stdin.  Detects a repeated block of at least `min_len`
    characters: the two halves are equal (whatever separates them), or the
    prompt's first line or first paragraph occurs a second time."""
    if not prompt:
        return False
    text = prompt.strip()
    if len(text) < 2 * min_len:
        return False
    # Whole text repeated (with any separator in between).
    half = len(text) // 2
    for cut in range(max(min_len, half - 64), min(len(text) - min_len, half + 64) + 1):
        a, b = text[:cut].strip(), text[cut:].strip()
        if len(a) >= min_len and a == b:
            return True
    # The prompt's first line / first paragraph occurs again later (the
    # second copy was appended or prepended with a wrapper around it).
    first_par = text.split("\n\n", 1)[0].strip()
    first_line = text.splitlines()[0].strip()
    for block in (first_par, first_line):
        if len(block) >= min_len and any(ch.isalnum() for ch in block) \
                and text.count(block) >= 2:
            return True
    return False


def check_prompt_twice(cli: str, prompt: str | None) -> None:
    """Exit 1 with `fake-<cli>: the prompt arrived twice` when it did."""
    if prompt_delivered_twice(prompt):
        die(f"fake-{cli}: the prompt arrived twice", 1)


# --------------------------------------------------------------------------- edits


def allows_edit(permission: str) -> bool:
    return permission in ("edit", "full")


@dataclass
class EditOutcome:
    """What perform_edits did.  `ops` lists every requested edit in order as
    {"path", "action": "write"|"append", "content", "applied": bool,
    "existed": bool}: use it to emit the CLI's tool-call events."""

    edits: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    ops: list[dict] = field(default_factory=list)

    @property
    def any_denied(self) -> bool:
        return bool(self.denied)


def perform_edits(step: dict, permission: str, cwd: str | None = None) -> EditOutcome:
    """Apply the step's `write` (create/overwrite) and `append` maps relative
    to `cwd` (default: the process cwd) if `permission` is "edit" or "full";
    otherwise list the paths in `denied` and write nothing."""
    cwd = cwd or os.getcwd()
    outcome = EditOutcome()
    for action in ("write", "append"):
        mapping = step.get(action) or {}
        if not isinstance(mapping, dict):
            continue
        for rel, content in mapping.items():
            content = "" if content is None else str(content)
            full = os.path.join(cwd, rel)
            existed = os.path.exists(full)
            op = {"path": rel, "action": action, "content": content,
                  "applied": False, "existed": existed}
            if allows_edit(permission):
                parent = os.path.dirname(full)
                if parent:
                    os.makedirs(parent, exist_ok=True)
                with open(full, "w" if action == "write" else "a", encoding="utf-8") as fh:
                    fh.write(content)
                op["applied"] = True
                if rel not in outcome.edits:
                    outcome.edits.append(rel)
            else:
                if rel not in outcome.denied:
                    outcome.denied.append(rel)
            outcome.ops.append(op)
    return outcome


# --------------------------------------------------------------------------- sessions


class SessionStore:
    """Sessions of one CLI under $FAKE_AGENT_STATE/<cli>/sessions/<id>.json.

    A session file is {"id", "cli", "cwd", "created", "updated",
    "prompts": [str, ...]}."""

    def __init__(self, cli: str, root: str | None = None):
        if root is None:
            root = os.environ.get("FAKE_AGENT_STATE") or os.path.join(
                os.path.expanduser("~"), ".fake-agents")
        self.cli = cli
        self.dir = os.path.join(root, cli, "sessions")

    def path(self, session_id: str) -> str:
        safe = os.path.basename(session_id)
        return os.path.join(self.dir, f"{safe}.json")

    def exists(self, session_id: str | None) -> bool:
        return bool(session_id) and os.path.basename(session_id) == session_id \
            and os.path.isfile(self.path(session_id))

    def load(self, session_id: str) -> dict | None:
        if not self.exists(session_id):
            return None
        with open(self.path(session_id), encoding="utf-8") as fh:
            return json.load(fh)

    def _save(self, data: dict) -> None:
        os.makedirs(self.dir, exist_ok=True)
        tmp = self.path(data["id"]) + f".tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, self.path(data["id"]))

    def create(self, prompt: str | None, session_id: str | None = None) -> str:
        """Start a new session (uuid4 unless `session_id` is given); returns its id."""
        sid = session_id or new_id()
        now = time.time()
        self._save({"id": sid, "cli": self.cli, "cwd": os.getcwd(),
                    "created": now, "updated": now,
                    "prompts": [prompt] if prompt is not None else []})
        return sid

    def append(self, session_id: str, prompt: str | None) -> bool:
        """Record a resumed prompt; False when the session is unknown."""
        data = self.load(session_id)
        if data is None:
            return False
        if prompt is not None:
            data.setdefault("prompts", []).append(prompt)
        data["updated"] = time.time()
        self._save(data)
        return True

    def latest(self, cwd: str | None = None) -> str | None:
        """Id of the most recently updated session (optionally only those
        started in `cwd`), or None."""
        if not os.path.isdir(self.dir):
            return None
        best: tuple[float, str] | None = None
        for name in os.listdir(self.dir):
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.dir, name), encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                continue
            if cwd is not None and os.path.realpath(data.get("cwd", "")) != os.path.realpath(cwd):
                continue
            key = (float(data.get("updated", 0)), data.get("id", name[:-5]))
            if best is None or key > best:
                best = key
        return best[1] if best else None


# --------------------------------------------------------------------------- MCP


class McpError(Exception):
    pass


class McpClient:
    """Minimal MCP client over stdio (newline-delimited JSON-RPC 2.0)."""

    def __init__(self, command: str, args: list[str] | None = None,
                 env: dict[str, str] | None = None, cwd: str | None = None,
                 timeout: float = MCP_TIMEOUT_S):
        self.timeout = timeout
        full_env = dict(os.environ)
        for k, v in (env or {}).items():
            full_env[str(k)] = str(v)
        try:
            self.proc = subprocess.Popen(
                [command, *[str(a) for a in (args or [])]],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=full_env, cwd=cwd, text=True, encoding="utf-8", bufsize=1)
        except OSError as exc:
            raise McpError(f"cannot start MCP server {command!r}: {exc}") from exc
        self._next_id = 0
        self._lines: "queue.Queue[str | None]" = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _send(self, msg: dict) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            raise McpError(f"MCP server closed its stdin: {exc}") from exc

    def notify(self, method: str, params: dict | None = None) -> None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self._send(msg)

    def request(self, method: str, params: dict | None = None) -> Any:
        self._next_id += 1
        rid = self._next_id
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self._send(msg)
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise McpError(f"MCP request {method} timed out after {self.timeout:g}s")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                raise McpError(f"MCP request {method} timed out after {self.timeout:g}s")
            if line is None:
                err = "".join(self._stderr[-5:]).strip()
                raise McpError(f"MCP server exited during {method}" + (f": {err}" if err else ""))
            line = line.strip()
            if not line:
                continue
            try:
                reply = json.loads(line)
            except ValueError:
                continue  # not JSON-RPC (a log line); ignore
            if not isinstance(reply, dict) or reply.get("id") != rid or "method" in reply:
                continue  # notification or server->client request; ignore
            if "error" in reply:
                e = reply["error"] or {}
                raise McpError(f"MCP error {e.get('code')}: {e.get('message')}")
            return reply.get("result")

    def initialize(self, client_name: str = "fake-agent", client_version: str = "0.0.0") -> Any:
        result = self.request("initialize", {
            "protocolVersion": MCP_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": client_name, "version": client_version},
        })
        self.notify("notifications/initialized")
        return result

    def call_tool(self, name: str, arguments: dict | None = None) -> Any:
        return self.request("tools/call", {"name": name, "arguments": arguments or {}})

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _result_text(result: Any) -> str:
    if isinstance(result, dict):
        parts = [c.get("text", "") for c in result.get("content") or []
                 if isinstance(c, dict) and c.get("type") == "text"]
        if parts:
            return "\n".join(parts)
    return json.dumps(result)


def call_mcp_steps(step: dict, servers: dict[str, dict], client_name: str = "fake-agent",
                   client_version: str = "0.0.0", cwd: str | None = None) -> list[dict]:
    """Perform the step's `mcp` calls.  `servers` maps a configured server name
    to {"command", "args", "env"} (stdio transport; "cwd" optional).

    Returns one record per call: {"server", "tool", "arguments", "ok": bool,
    "result": <tools/call result> | None, "text": str (text content or error),
    "error": str | None}.  An unconfigured server gives ok=False with error
    "MCP server '<name>' is not configured"."""
    results: list[dict] = []
    calls = step.get("mcp") or []
    clients: dict[str, McpClient] = {}
    try:
        for call in calls:
            name = call.get("server")
            tool = call.get("tool")
            arguments = call.get("arguments") or {}
            rec: dict[str, Any] = {"server": name, "tool": tool, "arguments": arguments,
                                   "ok": False, "result": None, "text": "", "error": None}
            results.append(rec)
            spec = servers.get(name) if name is not None else None
            if spec is None:
                rec["error"] = rec["text"] = f"MCP server '{name}' is not configured"
                continue
            if not spec.get("command"):
                rec["error"] = rec["text"] = f"MCP server '{name}' has no stdio command"
                continue
            try:
                client = clients.get(name)
                if client is None:
                    client = McpClient(spec["command"], spec.get("args") or [],
                                       spec.get("env") or {}, cwd=spec.get("cwd") or cwd)
                    clients[name] = client
                    client.initialize(client_name, client_version)
                res = client.call_tool(tool, arguments)
                rec["result"] = res
                rec["text"] = _result_text(res)
                rec["ok"] = not (isinstance(res, dict) and res.get("isError"))
                if not rec["ok"]:
                    rec["error"] = rec["text"]
            except McpError as exc:
                rec["error"] = rec["text"] = str(exc)
    finally:
        for c in clients.values():
            c.close()
    return results


# --------------------------------------------------------------------------- env


def version(default: str) -> str:
    """FAKE_AGENT_VERSION if set, else `default`."""
    return os.environ.get("FAKE_AGENT_VERSION") or default


def auth_failed() -> bool:
    return os.environ.get("FAKE_AGENT_FAIL_AUTH") == "1"


# --------------------------------------------------------------------------- log


def write_log(record: dict) -> None:
    """Append `record` as one JSON line to FAKE_AGENT_LOG (if set)."""
    path = os.environ.get("FAKE_AGENT_LOG")
    if not path:
        return
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    line = json.dumps(record, sort_keys=False) + "\n"
    # O_APPEND single write: lines of concurrent fakes don't interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


class Invocation:
    """Collects the fields of one invocation's log line.

    Set the attributes as the fake learns them, then call write_log() once
    (it is idempotent: only the first call writes)."""

    def __init__(self, cli: str, argv: list[str] | None = None):
        self.cli = cli
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.stdin: str | None = None
        self.prompt: str | None = None
        self.cwd = os.getcwd()
        self.permission = "read"
        self.resumed: str | None = None
        self.session_id: str | None = None
        self.model: str | None = None
        self.mcp_servers: list[str] = []
        self.edits: list[str] = []
        self.denied: list[str] = []
        self.mcp_results: list[dict] = []
        self.extra: dict[str, Any] = {}
        self._logged = False

    def pick_step(self, steps: list[dict] | None = None) -> dict:
        return pick_step(self.prompt, steps)

    def perform_edits(self, step: dict) -> EditOutcome:
        outcome = perform_edits(step, self.permission, self.cwd)
        self.edits.extend(p for p in outcome.edits if p not in self.edits)
        self.denied.extend(p for p in outcome.denied if p not in self.denied)
        return outcome

    def call_mcp(self, step: dict, servers: dict[str, dict], client_version: str = "0.0.0") -> list[dict]:
        self.mcp_servers = sorted(servers)
        self.mcp_results = call_mcp_steps(step, servers, client_name=self.cli,
                                          client_version=client_version, cwd=self.cwd)
        return self.mcp_results

    def record(self) -> dict:
        rec = {
            "cli": self.cli,
            "argv": self.argv,
            "stdin": self.stdin,
            "prompt": self.prompt,
            "cwd": self.cwd,
            "permission": self.permission,
            "resumed": self.resumed,
            "session_id": self.session_id,
            "model": self.model,
            "mcp_servers": list(self.mcp_servers),
            "env_names": sorted(os.environ),
            "downbeat_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("DOWNBEAT_")},
            "edits": list(self.edits),
            "denied": list(self.denied),
            "mcp_results": [{k: r.get(k) for k in ("server", "tool", "arguments", "ok", "text", "error")}
                            for r in self.mcp_results],
        }
        rec.update(self.extra)
        return rec

    def write_log(self) -> None:
        if self._logged:
            return
        self._logged = True
        write_log(self.record())


def install_signal_log(run: "Invocation", exit_code: int | None = None) -> None:
    """On SIGTERM/SIGINT write `run`'s log line (so cancelled runs are still
    recorded), then exit with `exit_code` (e.g. 143 for Claude Code) or, when
    None, die by the signal like a program without a handler."""

    def handler(signum, _frame):
        try:
            run.extra.setdefault("signal", signum)
            run.write_log()
        finally:
            sys.stdout.flush()
            if exit_code is not None:
                os._exit(exit_code)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
