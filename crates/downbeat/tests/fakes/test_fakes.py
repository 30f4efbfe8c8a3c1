"""Tests of the fake agent CLIs (stdlib unittest).

Run from the repository root:
    python3 -m unittest crates/downbeat/tests/fakes/test_fakes.py -v

Each CLI has its own TestCase class (ClaudeFakeTests, CodexFakeTests, ...);
helpers shared by all of them are at the top.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest
import uuid

FAKES = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(FAKES, "bin")

ECHO_MCP_SERVER = textwrap.dedent('''\
    import json, sys
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        if "id" not in msg:
            continue  # notification
        method = msg.get("method")
        if method == "initialize":
            result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "echo", "version": "1.0"}}
        elif method == "tools/list":
            result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
        elif method == "tools/call":
            args = msg["params"].get("arguments") or {}
            result = {"content": [{"type": "text", "text": "echo:" + json.dumps(args, sort_keys=True)}],
                      "isError": False}
        else:
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"],
                                         "error": {"code": -32601, "message": "no such method"}}) + "\\n")
            sys.stdout.flush()
            continue
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\\n")
        sys.stdout.flush()
''')


class FakeCase(unittest.TestCase):
    """A temp work dir, state dir, log and script per test."""

    CLI = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=f"fake-{self.CLI}-")
        self.work = os.path.join(self.tmp, "work")
        os.makedirs(self.work)
        self.log = os.path.join(self.tmp, "log.jsonl")
        self.script = os.path.join(self.tmp, "script.json")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("FAKE_AGENT_", "DOWNBEAT_", "CODEX_HOME"))}
        self.env.update({"FAKE_AGENT_STATE": os.path.join(self.tmp, "state"),
                         "FAKE_AGENT_LOG": self.log,
                         "HOME": os.path.join(self.tmp, "home")})
        os.makedirs(self.env["HOME"])

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def steps(self, *steps):
        with open(self.script, "w") as fh:
            json.dump({"steps": list(steps)}, fh)
        self.env["FAKE_AGENT_SCRIPT"] = self.script

    def run_cli(self, *args, stdin=None, env=None, timeout=30):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run([os.path.join(BIN, self.CLI), *args], cwd=self.work, env=e,
                              input=stdin if stdin is not None else None,
                              stdin=None if stdin is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def logs(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def last_log(self):
        entries = self.logs()
        self.assertTrue(entries, "no log line was written")
        return entries[-1]

    def echo_server(self):
        path = os.path.join(self.tmp, "echo_mcp.py")
        with open(path, "w") as fh:
            fh.write(ECHO_MCP_SERVER)
        return path


# =========================================================================== claude


class ClaudeFakeTests(FakeCase):
    CLI = "claude"

    def json_result(self, proc):
        self.assertTrue(proc.stdout.strip(), proc.stderr)
        return json.loads(proc.stdout)

    def test_version(self):
        p = self.run_cli("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.strip(), r"^\d+\.\d+\.\d+ \(Claude Code\)$")
        p = self.run_cli("-v", env={"FAKE_AGENT_VERSION": "1.0.0"})
        self.assertEqual(p.stdout.strip(), "1.0.0 (Claude Code)")

    def test_a_message_file_is_the_final_message(self):
        with open(os.path.join(self.work, "answer.md"), "w") as fh:
            fh.write("```toml\n[[tasks]]\ntitle = \"T\"\n```\n")
        self.steps({"message_file": "answer.md", "message": "ignored"})
        p = self.run_cli("-p", "--output-format", "json", "draft a plan for me please")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.json_result(p)["result"], "```toml\n[[tasks]]\ntitle = \"T\"\n```\n")

    def test_unknown_flag_is_refused_like_commander(self):
        p = self.run_cli("-p", "--frobnicate", "hello world")
        self.assertEqual(p.returncode, 1)
        self.assertIn("error: unknown option '--frobnicate'", p.stderr)
        p = self.run_cli("-p", "--verbos", "hello world")
        self.assertIn("(Did you mean --verbose?)", p.stderr)

    def test_invalid_choices_are_refused(self):
        p = self.run_cli("-p", "--output-format", "xml", "hi there")
        self.assertEqual(p.returncode, 1)
        self.assertIn("argument 'xml' is invalid. Allowed choices are text, json, stream-json.", p.stderr)
        p = self.run_cli("-p", "--permission-mode", "yolo", "hi there")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Allowed choices are", p.stderr)

    def test_no_prompt_fails(self):
        p = self.run_cli("-p")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Error: Input must be provided either through stdin or as a prompt argument "
                      "when using --print", p.stderr)

    def test_variadic_flag_swallows_a_trailing_prompt(self):
        p = self.run_cli("-p", "--allowedTools", "Read", "please summarise the repository")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Input must be provided", p.stderr)
        # the `=` form and `--` keep the prompt
        p = self.run_cli("-p", "--allowedTools=Read", "please summarise the repository")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.run_cli("-p", "--allowedTools", "Read", "--", "please summarise the repository")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_prompt_on_stdin_and_argument_are_joined(self):
        p = self.run_cli("-p", "--output-format", "json", stdin="the prompt from stdin\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.last_log()["prompt"], "the prompt from stdin\n")
        p = self.run_cli("-p", "instruction part", stdin="context part")
        self.assertEqual(p.returncode, 0, p.stderr)
        log = self.last_log()
        self.assertEqual(log["prompt"], "instruction part\ncontext part")
        self.assertEqual(log["stdin"], "context part")

    def test_prompt_twice_is_refused(self):
        prompt = "Implement the parser for the plan format in src/plan.rs"
        p = self.run_cli("-p", prompt, stdin=prompt + "\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("fake-claude: the prompt arrived twice", p.stderr)

    def test_read_only_refuses_edits(self):
        self.steps({"write": {"out.txt": "hello\n"}, "message": "Wrote out.txt"})
        p = self.run_cli("-p", "write the file please", "--output-format", "json",
                         "--permission-mode", "dontAsk")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.work, "out.txt")))
        res = self.json_result(p)
        self.assertEqual(res["permission_denials"][0]["tool_name"], "Write")
        self.assertIn("denied", res["result"])
        log = self.last_log()
        self.assertEqual(log["permission"], "read")
        self.assertEqual(log["denied"], ["out.txt"])
        self.assertEqual(log["edits"], [])

    def test_edit_level_writes(self):
        self.steps({"write": {"src/out.txt": "hello\n"}, "append": {"notes.md": "more\n"}})
        p = self.run_cli("-p", "write the file please", "--permission-mode", "acceptEdits")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "Done.\n")
        with open(os.path.join(self.work, "src/out.txt")) as fh:
            self.assertEqual(fh.read(), "hello\n")
        log = self.last_log()
        self.assertEqual(log["permission"], "edit")
        self.assertEqual(sorted(log["edits"]), ["notes.md", "src/out.txt"])

    def test_full_level(self):
        self.steps({"write": {"x.txt": "x"}})
        p = self.run_cli("-p", "--dangerously-skip-permissions", "make x please")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.last_log()["permission"], "full")
        self.assertTrue(os.path.exists(os.path.join(self.work, "x.txt")))

    def test_json_output_usage_cost_session(self):
        self.steps({"message": "All good", "usage": {"input_tokens": 1234, "output_tokens": 56},
                    "cost_usd": 0.5, "result_file": {"status": "done"}})
        p = self.run_cli("-p", "check the thing", "--output-format", "json", "--model", "opus",
                         env={"DOWNBEAT_RESULT_FILE": os.path.join(self.tmp, "res.json"),
                              "DOWNBEAT_TASK": "t1"})
        self.assertEqual(p.returncode, 0, p.stderr)
        res = self.json_result(p)
        self.assertEqual(res["type"], "result")
        self.assertEqual(res["subtype"], "success")
        self.assertFalse(res["is_error"])
        self.assertEqual(res["result"], "All good")
        self.assertEqual(res["usage"]["input_tokens"], 1234)
        self.assertEqual(res["usage"]["output_tokens"], 56)
        self.assertEqual(res["total_cost_usd"], 0.5)
        uuid.UUID(res["session_id"])
        log = self.last_log()
        self.assertEqual(log["session_id"], res["session_id"])
        self.assertEqual(log["model"], "opus")
        self.assertEqual(log["downbeat_env"]["DOWNBEAT_TASK"], "t1")
        with open(os.path.join(self.tmp, "res.json")) as fh:
            self.assertEqual(json.load(fh), {"status": "done"})

    def test_json_verbose_prints_all_messages(self):
        p = self.run_cli("-p", "check the thing", "--output-format", "json", "--verbose")
        arr = json.loads(p.stdout)
        self.assertEqual(arr[0]["type"], "system")
        self.assertEqual(arr[-1]["type"], "result")

    def test_stream_json_requires_verbose(self):
        p = self.run_cli("-p", "check the thing", "--output-format", "stream-json")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--output-format=stream-json requires --verbose", p.stderr)

    def test_stream_json_events(self):
        self.steps({"write": {"a.txt": "a"}, "message": "done"})
        p = self.run_cli("-p", "edit things please", "--output-format", "stream-json", "--verbose",
                         "--permission-mode", "acceptEdits")
        self.assertEqual(p.returncode, 0, p.stderr)
        events = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual((events[0]["type"], events[0]["subtype"]), ("system", "init"))
        tool_uses = [b for e in events if e["type"] == "assistant"
                     for b in e["message"]["content"] if b["type"] == "tool_use"]
        self.assertEqual(tool_uses[0]["name"], "Write")
        results = [b for e in events if e["type"] == "user" for b in e["message"]["content"]]
        self.assertEqual(results[0]["type"], "tool_result")
        self.assertEqual(events[-1]["type"], "result")
        self.assertEqual(events[-1]["result"], "done")

    def test_when_and_attempt_select_the_step(self):
        self.steps({"when": "alpha", "attempt": 2, "message": "alpha second"},
                   {"when": "alpha", "message": "alpha any"})
        p = self.run_cli("-p", "do alpha now", env={"DOWNBEAT_ATTEMPT": "2"})
        self.assertEqual(p.stdout, "alpha second\n")
        p = self.run_cli("-p", "do alpha now", env={"DOWNBEAT_ATTEMPT": "1"})
        self.assertEqual(p.stdout, "alpha any\n")
        p = self.run_cli("-p", "do beta now")
        self.assertEqual(p.stdout, "Done.\n")

    def test_error_step(self):
        self.steps({"error": "tool crashed", "stderr": "boom"})
        p = self.run_cli("-p", "do the thing", "--output-format", "json")
        self.assertEqual(p.returncode, 1)
        res = self.json_result(p)
        self.assertTrue(res["is_error"])
        self.assertEqual(res["subtype"], "error_during_execution")
        self.assertEqual(res["errors"], ["tool crashed"])
        self.assertIn("boom", p.stderr)

    def test_resume_unknown_session_fails(self):
        sid = str(uuid.uuid4())
        p = self.run_cli("-p", "--resume", sid, "continue please")
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"No conversation found with session ID: {sid}", p.stderr)

    def test_resume_known_session(self):
        p = self.run_cli("-p", "first prompt here", "--output-format", "json")
        sid = json.loads(p.stdout)["session_id"]
        p = self.run_cli("-p", "--resume", sid, "--output-format", "json", "second prompt here")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["session_id"], sid)
        log = self.last_log()
        self.assertEqual(log["resumed"], sid)
        with open(os.path.join(self.env["FAKE_AGENT_STATE"], "claude", "sessions", sid + ".json")) as fh:
            self.assertEqual(json.load(fh)["prompts"], ["first prompt here", "second prompt here"])

    def test_session_id_flag(self):
        sid = str(uuid.uuid4())
        p = self.run_cli("-p", "--session-id", sid, "--output-format", "json", "hello there")
        self.assertEqual(json.loads(p.stdout)["session_id"], sid)
        p = self.run_cli("-p", "--session-id", sid, "hello again")
        self.assertEqual(p.returncode, 1)
        self.assertIn("is already in use", p.stderr)
        p = self.run_cli("-p", "--session-id", "nope", "hello again")
        self.assertIn("Invalid session ID", p.stderr)

    def test_auth_failure(self):
        p = self.run_cli("-p", "hello there", "--output-format", "json", env={"FAKE_AGENT_FAIL_AUTH": "1"})
        self.assertEqual(p.returncode, 1)
        res = self.json_result(p)
        self.assertTrue(res["is_error"])
        self.assertEqual(res["result"], "Not logged in · Please run /login")
        p = self.run_cli("auth", "status", env={"FAKE_AGENT_FAIL_AUTH": "1"})
        self.assertEqual(p.returncode, 1)
        self.assertFalse(json.loads(p.stdout)["loggedIn"])

    def mcp_config(self):
        path = os.path.join(self.tmp, "mcp.json")
        with open(path, "w") as fh:
            json.dump({"mcpServers": {"echo": {"command": sys.executable, "args": [self.echo_server()],
                                               "env": {"ECHO_X": "1"}}}}, fh)
        return path

    def test_mcp_call(self):
        self.steps({"mcp": [{"server": "echo", "tool": "echo", "arguments": {"a": 1}}]})
        p = self.run_cli("-p", "--mcp-config", self.mcp_config(), "--strict-mcp-config",
                         "--allowedTools=mcp__echo", "--output-format", "stream-json", "--verbose",
                         "--", "call the tool now")
        self.assertEqual(p.returncode, 0, p.stderr)
        events = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual(events[0]["mcp_servers"], [{"name": "echo", "status": "connected"}])
        names = [b["name"] for e in events if e["type"] == "assistant"
                 for b in e["message"]["content"] if b["type"] == "tool_use"]
        self.assertEqual(names, ["mcp__echo__echo"])
        log = self.last_log()
        self.assertEqual(log["mcp_servers"], ["echo"])
        self.assertTrue(log["mcp_results"][0]["ok"], log["mcp_results"])
        self.assertEqual(log["mcp_results"][0]["text"], 'echo:{"a": 1}')

    def test_mcp_call_needs_permission(self):
        self.steps({"mcp": [{"server": "echo", "tool": "echo", "arguments": {}}]})
        p = self.run_cli("-p", "--mcp-config", self.mcp_config(), "--output-format", "json",
                         "--", "call the tool now")
        self.assertEqual(p.returncode, 0, p.stderr)
        res = json.loads(p.stdout)
        self.assertEqual(res["permission_denials"][0]["tool_name"], "mcp__echo__echo")
        self.assertFalse(self.last_log()["mcp_results"][0]["ok"])

    def test_mcp_unconfigured_server(self):
        self.steps({"mcp": [{"server": "ghost", "tool": "echo", "arguments": {}}]})
        p = self.run_cli("-p", "--dangerously-skip-permissions", "call the tool now")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("not configured", self.last_log()["mcp_results"][0]["error"])

    def test_invalid_mcp_config(self):
        p = self.run_cli("-p", "--mcp-config", '{"servers": {}}', "--", "hello there")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Error: Invalid MCP configuration", p.stderr)
        # an invalid entry is skipped and reported in system/init.mcp_server_errors
        p = self.run_cli("-p", "--mcp-config", '{"mcpServers": {"bad": {"url": "http://x"}}}',
                         "--output-format", "stream-json", "--verbose", "--", "hello there")
        self.assertEqual(p.returncode, 0, p.stderr)
        init = json.loads(p.stdout.splitlines()[0])
        self.assertEqual(init["mcp_servers"], [])
        self.assertEqual(init["mcp_server_errors"][0]["type"], "url_missing_type")


# =========================================================================== codex


class CodexFakeTests(FakeCase):
    CLI = "codex"

    def setUp(self):
        super().setUp()
        os.makedirs(os.path.join(self.work, ".git"))  # exec refuses to run outside a git repo
        self.env["CODEX_HOME"] = os.path.join(self.tmp, "codex-home")

    def jsonl(self, proc):
        return [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]

    def test_version(self):
        p = self.run_cli("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.strip(), r"^codex-cli \d+\.\d+\.\d+$")
        p = self.run_cli("--version", env={"FAKE_AGENT_VERSION": "0.1.0"})
        self.assertEqual(p.stdout.strip(), "codex-cli 0.1.0")

    def test_unknown_flag_is_refused_like_clap(self):
        p = self.run_cli("exec", "--frobnicate", "hello there")
        self.assertEqual(p.returncode, 2)
        self.assertIn("error: unexpected argument '--frobnicate' found", p.stderr)
        p = self.run_cli("exec", "-a", "never", "hello there")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unexpected argument '-a' found", p.stderr)
        p = self.run_cli("exec", "--sandbox", "everything", "hello there")
        self.assertEqual(p.returncode, 2)
        self.assertIn("[possible values: read-only, workspace-write, danger-full-access]", p.stderr)

    def test_git_repo_check(self):
        shutil.rmtree(os.path.join(self.work, ".git"))
        p = self.run_cli("exec", "hello there")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Not inside a trusted directory and --skip-git-repo-check was not specified.", p.stderr)
        p = self.run_cli("exec", "--skip-git-repo-check", "hello there")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_no_prompt_fails(self):
        p = self.run_cli("exec")
        self.assertEqual(p.returncode, 1)
        self.assertIn("No prompt provided via stdin.", p.stderr)

    def test_prompt_from_stdin_and_appended_stdin(self):
        p = self.run_cli("exec", "-", stdin="prompt from stdin\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.last_log()["prompt"], "prompt from stdin\n")
        p = self.run_cli("exec", "Summarize this concisely", stdin="my output\n")
        self.assertEqual(self.last_log()["prompt"],
                         "Summarize this concisely\n\n<stdin>\nmy output\n</stdin>")
        self.assertIn("Reading additional input from stdin...", p.stderr)

    def test_prompt_twice_is_refused(self):
        prompt = "Implement the parser for the plan format in src/plan.rs"
        p = self.run_cli("exec", prompt, stdin=prompt)
        self.assertEqual(p.returncode, 1)
        self.assertIn("fake-codex: the prompt arrived twice", p.stderr)

    def test_read_only_refuses_edits(self):
        self.steps({"write": {"out.txt": "hello\n"}})
        p = self.run_cli("exec", "--json", "--sandbox", "read-only", "write the file please")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.work, "out.txt")))
        items = [e["item"] for e in self.jsonl(p) if e["type"] == "item.completed"]
        fc = [i for i in items if i["type"] == "file_change"][0]
        self.assertEqual(fc["status"], "failed")
        log = self.last_log()
        self.assertEqual((log["permission"], log["denied"]), ("read", ["out.txt"]))

    def test_workspace_write_edits(self):
        self.steps({"write": {"out.txt": "hello\n"}})
        p = self.run_cli("exec", "--sandbox", "workspace-write", "write the file please")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "Done.\n")
        with open(os.path.join(self.work, "out.txt")) as fh:
            self.assertEqual(fh.read(), "hello\n")
        self.assertEqual(self.last_log()["permission"], "edit")
        p = self.run_cli("exec", "--dangerously-bypass-approvals-and-sandbox", "write the file please")
        self.assertEqual(self.last_log()["permission"], "full")

    def test_full_auto_is_deprecated(self):
        p = self.run_cli("exec", "--full-auto", "write the file please")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("`--full-auto` is deprecated", p.stderr)
        self.assertEqual(self.last_log()["permission"], "edit")

    def test_json_events_usage_and_last_message(self):
        self.steps({"message": "All good", "usage": {"input_tokens": 900, "output_tokens": 40,
                                                    "cached_input_tokens": 300}})
        out = os.path.join(self.tmp, "last.txt")
        p = self.run_cli("exec", "--json", "-o", out, "-m", "gpt-5.5", "check the thing")
        self.assertEqual(p.returncode, 0, p.stderr)
        ev = self.jsonl(p)
        self.assertEqual(ev[0]["type"], "thread.started")
        self.assertEqual(ev[1]["type"], "turn.started")
        msgs = [e["item"]["text"] for e in ev
                if e["type"] == "item.completed" and e["item"]["type"] == "agent_message"]
        self.assertEqual(msgs, ["All good"])
        self.assertEqual(ev[-1], {"type": "turn.completed", "usage": {
            "input_tokens": 900, "cached_input_tokens": 300, "output_tokens": 40}})
        with open(out) as fh:
            self.assertEqual(fh.read(), "All good")
        log = self.last_log()
        self.assertEqual(log["session_id"], ev[0]["thread_id"])
        self.assertEqual(log["model"], "gpt-5.5")

    def test_error_step_and_auth_failure(self):
        self.steps({"error": "stream disconnected"})
        p = self.run_cli("exec", "--json", "do the thing")
        self.assertEqual(p.returncode, 1)
        ev = self.jsonl(p)
        self.assertEqual(ev[-1], {"type": "turn.failed", "error": {"message": "stream disconnected"}})
        p = self.run_cli("exec", "do the thing", env={"FAKE_AGENT_FAIL_AUTH": "1"})
        self.assertEqual(p.returncode, 1)
        self.assertIn("401 Unauthorized", p.stderr)
        p = self.run_cli("login", "status", env={"FAKE_AGENT_FAIL_AUTH": "1"})
        self.assertEqual(p.returncode, 1)

    def test_resume_unknown_session_fails(self):
        sid = str(uuid.uuid4())
        p = self.run_cli("exec", "resume", sid, "continue please")
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"no rollout found for thread id {sid}", p.stderr)

    def test_resume_known_session_and_last(self):
        p = self.run_cli("exec", "--json", "first prompt here")
        tid = self.jsonl(p)[0]["thread_id"]
        p = self.run_cli("exec", "--json", "resume", tid, "second prompt here")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.jsonl(p)[0]["thread_id"], tid)
        self.assertEqual(self.last_log()["resumed"], tid)
        p = self.run_cli("exec", "resume", "--last", "--json", "third prompt here")
        self.assertEqual(self.jsonl(p)[0]["thread_id"], tid)
        with open(os.path.join(self.env["FAKE_AGENT_STATE"], "codex", "sessions", tid + ".json")) as fh:
            self.assertEqual(len(json.load(fh)["prompts"]), 3)
        # resume takes no --sandbox of its own
        p = self.run_cli("exec", "resume", tid, "--sandbox", "workspace-write", "x y z")
        self.assertEqual(p.returncode, 2)

    def test_mcp_call_via_config_overrides(self):
        self.steps({"mcp": [{"server": "echo", "tool": "echo", "arguments": {"a": 1}}]})
        server = self.echo_server()
        p = self.run_cli("exec", "--json",
                         "-c", f"mcp_servers.echo.command={json.dumps(sys.executable)}",
                         "-c", f"mcp_servers.echo.args=[{json.dumps(server)}]",
                         "call the tool now")
        self.assertEqual(p.returncode, 0, p.stderr)
        items = [e["item"] for e in self.jsonl(p) if e["type"] == "item.completed"
                 and e["item"]["type"] == "mcp_tool_call"]
        self.assertEqual(items[0]["status"], "completed")
        self.assertEqual(items[0]["result"]["content"][0]["text"], 'echo:{"a": 1}')
        log = self.last_log()
        self.assertEqual(log["mcp_servers"], ["echo"])
        self.assertTrue(log["mcp_results"][0]["ok"])

    def test_mcp_from_config_toml(self):
        self.steps({"mcp": [{"server": "echo", "tool": "echo", "arguments": {}}]})
        os.makedirs(self.env["CODEX_HOME"])
        with open(os.path.join(self.env["CODEX_HOME"], "config.toml"), "w") as fh:
            fh.write(f'[mcp_servers.echo]\ncommand = {json.dumps(sys.executable)}\n'
                     f'args = [{json.dumps(self.echo_server())}]\n')
        p = self.run_cli("exec", "call the tool now")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(self.last_log()["mcp_results"][0]["ok"])
        p = self.run_cli("exec", "-c", "mcp_servers.ghost.command=\"nope\"", "--ignore-user-config",
                         "call the tool now")
        self.assertFalse(self.last_log()["mcp_results"][0]["ok"])


# =========================================================================== gemini


def _clean_env(env, prefixes):
    for k in list(env):
        if k.startswith(prefixes):
            del env[k]


class GeminiFakeTests(FakeCase):
    CLI = "gemini"

    def setUp(self):
        super().setUp()
        _clean_env(self.env, ("GEMINI_", "GOOGLE_GENAI_", "CI", "GITHUB_ACTIONS"))

    def run_h(self, *args, **kw):
        """Headless in a trusted workspace (--skip-trust)."""
        return self.run_cli("--skip-trust", *args, **kw)

    def write_user_settings(self, settings):
        d = os.path.join(self.env["HOME"], ".gemini")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "settings.json"), "w") as fh:
            json.dump(settings, fh)

    def echo_settings(self, **extra):
        spec = {"command": sys.executable, "args": [self.echo_server()]}
        spec.update(extra)
        return {"mcpServers": {"echo": spec}}

    def stream(self, proc):
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def test_version(self):
        p = self.run_cli("--version")
        self.assertEqual((p.returncode, p.stdout), (0, "0.61.0\n"))
        p = self.run_cli("-v", env={"FAKE_AGENT_VERSION": "0.1.0"})
        self.assertEqual(p.stdout, "0.1.0\n")

    def test_unknown_flag_is_refused_like_yargs(self):
        p = self.run_h("--frobnicate", "-p", "hello there")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("Unknown argument: frobnicate\nUsage: gemini [options] [command]"),
                        p.stderr[:200])
        p = self.run_h("--foo-bar", "-p", "hello there")
        self.assertIn("Unknown arguments: foo-bar, fooBar", p.stderr)

    def test_bad_values_are_refused(self):
        p = self.run_h("--approval-mode", "bogus", "-p", "hi")
        self.assertEqual(p.returncode, 1)
        self.assertIn('Argument: approval-mode, Given: "bogus", Choices: "default", "auto_edit", "yolo", "plan"',
                      p.stderr)
        p = self.run_h("-o", "xml", "-p", "hi")
        self.assertIn('Argument: output-format, Given: "xml"', p.stderr)
        p = self.run_h("-p", "--yolo")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Not enough arguments following: p", p.stderr)
        p = self.run_h("-p", "one prompt", "another")
        self.assertIn("Cannot use both a positional prompt and the --prompt (-p) flag together", p.stderr)
        p = self.run_h("--yolo", "--approval-mode", "yolo", "-p", "hi")
        self.assertIn("Cannot use both --yolo (-y) and --approval-mode together", p.stderr)

    def test_untrusted_workspace_exits_55(self):
        p = self.run_cli("-p", "hello there")
        self.assertEqual(p.returncode, 55)
        self.assertIn("Gemini CLI is not running in a trusted directory", p.stderr)
        p = self.run_cli("-p", "hello there", env={"GEMINI_CLI_TRUST_WORKSPACE": "true"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "Done.\n")

    def test_no_prompt_exits_42(self):
        p = self.run_h()
        self.assertEqual(p.returncode, 42)
        self.assertIn("No input provided via stdin. Input can be provided by piping data into gemini or using "
                      "the --prompt option.", p.stderr)

    def test_stdin_comes_before_the_prompt(self):
        p = self.run_h("-p", "instruction part", stdin="context part\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        log = self.last_log()
        self.assertEqual(log["prompt"], "context part\n\n\ninstruction part")
        self.assertEqual(log["stdin"], "context part\n")
        p = self.run_h(stdin="only stdin\n")
        self.assertEqual(self.last_log()["prompt"], "only stdin\n")
        p = self.run_h("a positional prompt")  # non-TTY: a positional prompt is headless
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.last_log()["prompt"], "a positional prompt")

    def test_prompt_twice_is_refused(self):
        prompt = "Implement the parser for the plan format in src/plan.rs"
        p = self.run_h("-p", prompt, stdin=prompt + "\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("fake-gemini: the prompt arrived twice", p.stderr)

    def test_read_levels_refuse_edits(self):
        self.steps({"write": {"out.txt": "hello\n"}})
        p = self.run_h("-o", "stream-json", "-p", "write the file please")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.work, "out.txt")))
        ev = self.stream(p)
        res = [e for e in ev if e["type"] == "tool_result"][0]
        self.assertEqual(res["status"], "error")
        self.assertEqual(res["error"]["type"], "tool_not_registered")
        self.assertIn("denied", [e for e in ev if e["type"] == "message"][-1]["content"])
        log = self.last_log()
        self.assertEqual((log["permission"], log["denied"], log["approval_mode"]), ("read", ["out.txt"], "default"))
        p = self.run_h("--approval-mode", "plan", "-o", "stream-json", "-p", "write the file please")
        res = [e for e in self.stream(p) if e["type"] == "tool_result"][0]
        self.assertEqual(res["error"]["type"], "policy_violation")
        self.assertEqual(self.last_log()["permission"], "read")

    def test_edit_and_full_levels_write(self):
        self.steps({"write": {"src/out.txt": "hello\n"}, "append": {"notes.md": "more\n"}})
        p = self.run_h("--approval-mode", "auto_edit", "-p", "write the file please")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "Done.\n")
        with open(os.path.join(self.work, "src/out.txt")) as fh:
            self.assertEqual(fh.read(), "hello\n")
        self.assertEqual(self.last_log()["permission"], "edit")
        p = self.run_h("--yolo", "-p", "write the file please")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.last_log()["permission"], "full")
        self.assertIn("YOLO mode is enabled", p.stderr)
        with open(os.path.join(self.work, "notes.md")) as fh:
            self.assertEqual(fh.read(), "more\nmore\n")

    def test_json_output(self):
        self.steps({"message": "All good.", "usage": {"input_tokens": 1234, "output_tokens": 56}})
        p = self.run_h("-m", "gemini-2.5-flash", "-o", "json", "-p", "summarise please")
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["response"], "All good.")
        tokens = doc["stats"]["models"]["gemini-2.5-flash"]["tokens"]
        self.assertEqual((tokens["prompt"], tokens["candidates"], tokens["total"]), (1234, 56, 1290))
        self.assertEqual(doc["session_id"], self.last_log()["session_id"])
        self.assertEqual(self.last_log()["model"], "gemini-2.5-flash")

    def test_stream_json_output(self):
        self.steps({"write": {"a.txt": "x\n"}, "usage": {"input_tokens": 300, "output_tokens": 40}})
        p = self.run_h("--approval-mode", "auto_edit", "-o", "stream-json", "-p", "make a.txt please")
        self.assertEqual(p.returncode, 0, p.stderr)
        ev = self.stream(p)
        self.assertEqual([e["type"] for e in ev],
                         ["init", "message", "tool_use", "tool_result", "message", "result"])
        self.assertEqual(ev[0]["session_id"], self.last_log()["session_id"])
        self.assertEqual(ev[2]["tool_name"], "write_file")
        self.assertEqual(ev[3]["status"], "success")
        stats = ev[-1]["stats"]
        self.assertEqual((ev[-1]["status"], stats["input_tokens"], stats["output_tokens"], stats["tool_calls"]),
                         ("success", 300, 40, 1))

    def test_resume(self):
        p = self.run_h("--resume", "no-such-session", "-p", "again please")
        self.assertEqual(p.returncode, 42)
        self.assertIn("Error resuming session: No previous sessions found for this project.", p.stderr)
        p = self.run_h("-o", "json", "-p", "first prompt")
        sid = json.loads(p.stdout)["session_id"]
        p = self.run_h("--resume", "no-such-session", "-p", "again please")
        self.assertEqual(p.returncode, 42)
        self.assertIn('Invalid session identifier "no-such-session"', p.stderr)
        p = self.run_h("--resume", sid, "-o", "json", "-p", "second prompt")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["session_id"], sid)
        self.assertEqual(self.last_log()["resumed"], sid)
        p = self.run_h("-r", "latest", "-p", "third prompt")
        self.assertEqual(self.last_log()["resumed"], sid)
        p = self.run_h("--resume", "1", "-p", "fourth prompt")
        self.assertEqual(self.last_log()["resumed"], sid)
        p = self.run_h("--list-sessions")
        self.assertIn(f"  1. first prompt (Just now) [{sid}]", p.stdout)

    def test_session_id_flag(self):
        p = self.run_h("--session-id", "my-run-1", "-o", "json", "-p", "first prompt")
        self.assertEqual(json.loads(p.stdout)["session_id"], "my-run-1")
        p = self.run_h("--session-id", "my-run-1", "-p", "first prompt")
        self.assertEqual(p.returncode, 42)
        self.assertIn('Session ID "my-run-1" already exists', p.stderr)
        p = self.run_h("--session-id", "bad id!", "-p", "x")
        self.assertEqual(p.returncode, 1)

    def test_not_logged_in(self):
        p = self.run_h("-p", "hello there", env={"FAKE_AGENT_FAIL_AUTH": "1"})
        self.assertEqual(p.returncode, 41)
        self.assertIn("Please set an Auth method", p.stderr)
        p = self.run_h("-o", "json", "-p", "hello there", env={"FAKE_AGENT_FAIL_AUTH": "1"})
        self.assertEqual((p.returncode, p.stdout), (41, ""))
        self.assertEqual(json.loads(p.stderr)["error"]["code"], 41)

    def test_failed_run(self):
        self.steps({"error": "Quota exceeded"})
        p = self.run_h("-o", "json", "-p", "hello there")
        self.assertEqual((p.returncode, p.stdout), (1, ""))
        err = json.loads(p.stderr[p.stderr.index("{"):])
        self.assertEqual(err["error"]["message"], "Quota exceeded")
        p = self.run_h("-o", "stream-json", "-p", "hello there")
        self.assertEqual(p.returncode, 1)
        last = self.stream(p)[-1]
        self.assertEqual((last["type"], last["status"]), ("result", "error"))

    def test_mcp_from_user_settings(self):
        self.write_user_settings(self.echo_settings())
        self.steps({"mcp": [{"server": "echo", "tool": "echo", "arguments": {"q": 1}}]})
        # default approval mode: the server's tools are not available in headless mode
        p = self.run_h("-o", "stream-json", "-p", "call the tool now")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.last_log()["mcp_servers"], ["echo"])
        res = [e for e in self.stream(p) if e["type"] == "tool_result"][0]
        self.assertEqual(res["error"]["type"], "tool_not_registered")
        # allowed by name, or yolo
        p = self.run_h("--allowed-mcp-server-names", "echo", "-o", "stream-json", "-p", "call the tool now")
        ev = self.stream(p)
        self.assertEqual([e for e in ev if e["type"] == "tool_use"][0]["tool_name"], "mcp_echo_echo")
        res = [e for e in ev if e["type"] == "tool_result"][0]
        self.assertEqual(res["status"], "success", res)
        self.assertIn("echo:", res["output"])
        self.assertTrue(self.last_log()["mcp_results"][0]["ok"])
        p = self.run_h("--yolo", "-p", "call the tool now")
        self.assertTrue(self.last_log()["mcp_results"][0]["ok"])

    def test_project_settings_need_trust_at_load(self):
        os.makedirs(os.path.join(self.work, ".gemini"))
        with open(os.path.join(self.work, ".gemini", "settings.json"), "w") as fh:
            json.dump(self.echo_settings(trust=True), fh)
        self.steps({"mcp": [{"server": "echo", "tool": "echo", "arguments": {}}]})
        p = self.run_h("-p", "call the tool now")  # --skip-trust comes too late for project settings
        self.assertEqual(self.last_log()["mcp_servers"], [])
        p = self.run_cli("-p", "call the tool now", env={"GEMINI_CLI_TRUST_WORKSPACE": "true"})
        self.assertEqual(p.returncode, 0, p.stderr)
        log = self.last_log()
        self.assertEqual(log["mcp_servers"], ["echo"])
        self.assertTrue(log["mcp_results"][0]["ok"])  # "trust": true allows it in default mode


# =========================================================================== aider


class AiderFakeTests(FakeCase):
    CLI = "aider"

    def setUp(self):
        super().setUp()
        _clean_env(self.env, ("AIDER_", "GIT_"))
        subprocess.run(["git", "init", "-q", self.work], check=True)
        with open(os.path.join(self.work, "app.py"), "w") as fh:
            fh.write("print('x')\n")
        subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@t", "add", "."], cwd=self.work, check=True)
        subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "init"],
                       cwd=self.work, check=True)

    def commits(self):
        out = subprocess.run(["git", "log", "--format=%H"], cwd=self.work, capture_output=True, text=True).stdout
        return out.split()

    QUIET = ("--model", "sonnet", "--no-check-update", "--no-show-release-notes", "--no-analytics", "--no-pretty")
    EDIT = QUIET + ("--yes-always", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore")

    def test_version(self):
        p = self.run_cli("--version")
        self.assertEqual((p.returncode, p.stdout), (0, "aider 0.86.2\n"))
        p = self.run_cli("--version", env={"FAKE_AGENT_VERSION": "0.80.0"})
        self.assertEqual(p.stdout, "aider 0.80.0\n")

    def test_unknown_flag_is_refused_like_argparse(self):
        p = self.run_cli("--frobnicate", "-m", "hi")
        self.assertEqual(p.returncode, 2)
        self.assertTrue(p.stderr.startswith("usage: aider [-h]"), p.stderr[:100])
        self.assertTrue(p.stderr.endswith("aider: error: unrecognized arguments: --frobnicate\n"))
        p = self.run_cli("--edit-format", "bogus", "-m", "hi")
        self.assertEqual(p.returncode, 2)
        self.assertIn("aider: error: argument --edit-format/--chat-mode: invalid choice: 'bogus'", p.stderr)

    def test_no_prompt_starts_the_chat_and_exits_at_eof(self):
        p = self.run_cli(*self.EDIT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Aider v0.86.2", p.stdout)
        self.assertNotIn("Tokens:", p.stdout)
        self.assertIsNone(self.last_log()["prompt"])

    def test_message_file_and_prompt_twice(self):
        path = os.path.join(self.tmp, "msg.txt")
        prompt = "Implement the parser for the plan format in src/plan.rs"
        with open(path, "w") as fh:
            fh.write(prompt + "\n")
        p = self.run_cli(*self.EDIT, "--message-file", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.last_log()["prompt"], prompt + "\n")
        p = self.run_cli(*self.EDIT, "-m", prompt, "-f", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("fake-aider: the prompt arrived twice", p.stderr)

    def test_read_level_refuses_edits(self):
        self.steps({"write": {"out.txt": "hello\n"}})
        p = self.run_cli(*self.EDIT, "--chat-mode", "ask", "--dry-run", "-m", "write the file please")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.work, "out.txt")))
        self.assertIn("denied", p.stdout)
        log = self.last_log()
        self.assertEqual((log["permission"], log["denied"], log["edits"]), ("read", ["out.txt"], []))
        p = self.run_cli(*self.EDIT, "--dry-run", "-m", "write the file please")
        self.assertIn("Did not apply edit to out.txt (--dry-run)", p.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.work, "out.txt")))

    def test_edit_level_writes_without_committing(self):
        self.steps({"write": {"out.txt": "hello\n"}, "append": {"app.py": "print(1)\n"},
                    "usage": {"input_tokens": 2345, "output_tokens": 120}, "cost_usd": 0.0025})
        before = self.commits()
        p = self.run_cli(*self.EDIT, "-m", "write the file please")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Tokens: 2.3k sent, 120 received. Cost: $0.0025 message, $0.0025 session.", p.stdout)
        self.assertIn("Applied edit to out.txt\nApplied edit to app.py\n", p.stdout)
        self.assertNotIn("Commit ", p.stdout)
        self.assertEqual(self.commits(), before)
        self.assertFalse(os.path.exists(os.path.join(self.work, ".gitignore")))
        with open(os.path.join(self.work, "app.py")) as fh:
            self.assertEqual(fh.read(), "print('x')\nprint(1)\n")
        log = self.last_log()
        self.assertEqual((log["permission"], sorted(log["edits"])), ("edit", ["app.py", "out.txt"]))

    def test_default_flags_commit_and_touch_gitignore(self):
        self.steps({"write": {"out.txt": "hello\n"}})
        before = self.commits()
        p = self.run_cli(*self.QUIET, "-m", "write the file please")  # stdin at EOF: every question -> yes
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"Commit [0-9a-f]{7} feat: Update out.txt")
        self.assertEqual(len(self.commits()), len(before) + 1)
        body = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=self.work, capture_output=True,
                              text=True).stdout
        self.assertIn("Co-authored-by: aider (claude-sonnet-4-5) <aider@aider.chat>", body)
        with open(os.path.join(self.work, ".gitignore")) as fh:
            self.assertIn(".aider*", fh.read())
        self.assertIn("Added .aider* to .gitignore", p.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.work, ".aider.chat.history.md")))

    def test_env_var_turns_auto_commits_off(self):
        self.steps({"write": {"out.txt": "hello\n"}})
        before = self.commits()
        p = self.run_cli(*self.QUIET, "--yes-always", "-m", "write the file please",
                         env={"AIDER_AUTO_COMMITS": "false"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.commits(), before)

    def test_answering_no_on_stdin_skips_the_edit(self):
        self.steps({"write": {"out.txt": "hello\n"}})
        p = self.run_cli(*self.QUIET, "--no-gitignore", "-m", "write the file please", stdin="n\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Skipping edits to out.txt", p.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.work, "out.txt")))
        self.assertEqual(self.last_log()["denied"], ["out.txt"])

    def test_restore_chat_history(self):
        hist = os.path.join(self.tmp, "chat", "history.md")
        p = self.run_cli(*self.EDIT, "--chat-history-file", hist, "-m", "first question")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIsNone(self.last_log()["resumed"])
        p = self.run_cli(*self.EDIT, "--chat-history-file", hist, "--restore-chat-history", "-m", "second question")
        self.assertIn("Restored previous conversation history.", p.stdout)
        self.assertEqual(self.last_log()["resumed"], hist)
        with open(hist) as fh:
            text = fh.read()
        self.assertIn("#### first question", text)
        self.assertIn("#### second question", text)
        # an unknown history file is not an error: aider just starts afresh
        p = self.run_cli(*self.EDIT, "--chat-history-file", hist + ".none", "--restore-chat-history", "-m", "x y")
        self.assertEqual(p.returncode, 0)
        self.assertIsNone(self.last_log()["resumed"])

    def test_failures_still_exit_zero(self):
        p = self.run_cli(*self.EDIT, "-m", "hello there", env={"FAKE_AGENT_FAIL_AUTH": "1"})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("litellm.AuthenticationError", p.stdout)
        self.assertIn("- ANTHROPIC_API_KEY: Not set", p.stdout)
        self.steps({"error": "upstream is down"})
        p = self.run_cli(*self.EDIT, "-m", "hello there")
        self.assertEqual(p.returncode, 0)
        self.assertIn("litellm.APIError: APIError: upstream is down", p.stdout)

    def test_no_mcp_support(self):
        self.steps({"mcp": [{"server": "echo", "tool": "echo", "arguments": {}}]})
        p = self.run_cli(*self.EDIT, "-m", "call the tool now")
        self.assertEqual(p.returncode, 0)
        res = self.last_log()["mcp_results"][0]
        self.assertFalse(res["ok"])
        self.assertEqual(res["error"], "aider has no MCP support")


# =========================================================================== opencode


class OpencodeFakeTests(FakeCase):
    CLI = "opencode"

    def setUp(self):
        super().setUp()
        _clean_env(self.env, ("OPENCODE_", "XDG_"))
        self.env["XDG_CONFIG_HOME"] = os.path.join(self.tmp, "xdg-config")
        self.env["XDG_DATA_HOME"] = os.path.join(self.tmp, "xdg-data")

    def events(self, proc):
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def test_version(self):
        p = self.run_cli("--version")
        self.assertEqual((p.returncode, p.stdout), (0, "1.18.33\n"))
        p = self.run_cli("run", "--version", env={"FAKE_AGENT_VERSION": "1.0.0"})
        self.assertEqual(p.stdout, "1.0.0\n")

    def test_unknown_flag_prints_help_and_exits_1(self):
        p = self.run_cli("run", "--frobnicate", "hello there")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("opencode run [message..]\n\nrun opencode with a message"))
        self.assertNotIn("Unknown", p.stderr)
        p = self.run_cli("run", "--format", "xml", "hello there")
        self.assertEqual(p.returncode, 1)
        self.assertIn('[choices: "default", "json"]', p.stderr)

    def test_no_prompt(self):
        p = self.run_cli("run")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Error: \x1b[0mYou must provide a message or a command", p.stderr)

    def test_message_arguments_are_quoted_and_stdin_appended(self):
        p = self.run_cli("run", "two words", "x", stdin="context\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "Done.\n")
        self.assertEqual(self.last_log()["prompt"], '"two words" x\ncontext\n')
        p = self.run_cli("run", stdin="prompt only on stdin\n")
        self.assertEqual(self.last_log()["prompt"], "prompt only on stdin\n")

    def test_prompt_twice_is_refused(self):
        prompt = "Implement the parser for the plan format in src/plan.rs"
        p = self.run_cli("run", prompt, stdin=prompt)
        self.assertEqual(p.returncode, 1)
        self.assertIn("fake-opencode: the prompt arrived twice", p.stderr)

    def test_read_level_refuses_edits(self):
        self.steps({"write": {"out.txt": "hello\n"}})
        deny = json.dumps({"permission": {"edit": "deny", "bash": "deny"}})
        p = self.run_cli("run", "--agent", "plan", "--format", "json", "write the file please",
                         env={"OPENCODE_CONFIG_CONTENT": deny})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.work, "out.txt")))
        tool = [e for e in self.events(p) if e["type"] == "tool_use"][0]["part"]
        self.assertEqual(tool["tool"], "invalid")
        self.assertIn("unavailable tool 'write'", tool["state"]["output"])
        log = self.last_log()
        self.assertEqual((log["permission"], log["denied"], log["agent"]), ("read", ["out.txt"], "plan"))
        # plan alone: the write is refused by the plan agent's rule
        p = self.run_cli("run", "--agent", "plan", "--format", "json", "write the file please")
        tool = [e for e in self.events(p) if e["type"] == "tool_use"][0]["part"]
        self.assertEqual((tool["tool"], tool["state"]["status"]), ("write", "error"))
        self.assertIn("prevents you from using this specific tool call", tool["state"]["error"])

    def test_ask_is_auto_rejected_without_auto(self):
        self.steps({"write": {"out.txt": "hello\n"}})
        ask = json.dumps({"permission": {"edit": "ask"}})
        p = self.run_cli("run", "--format", "json", "write the file please", env={"OPENCODE_CONFIG_CONTENT": ask})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("permission requested: edit (out.txt); auto-rejecting", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.work, "out.txt")))
        self.assertNotIn("text", [e["type"] for e in self.events(p)])  # the run stops there
        p = self.run_cli("run", "--auto", "write the file please", env={"OPENCODE_CONFIG_CONTENT": ask})
        self.assertTrue(os.path.exists(os.path.join(self.work, "out.txt")))
        self.assertEqual(self.last_log()["permission"], "full")

    def test_edit_level_writes(self):
        self.steps({"write": {"src/out.txt": "hello\n"}})
        p = self.run_cli("run", "write the file please")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(self.work, "src/out.txt")) as fh:
            self.assertEqual(fh.read(), "hello\n")
        self.assertEqual(self.last_log()["permission"], "edit")
        self.assertIn("> build \u00b7 big-pickle", p.stderr)

    def test_project_config_permission(self):
        with open(os.path.join(self.work, "opencode.json"), "w") as fh:
            json.dump({"permission": {"edit": {"*": "allow", "secret/*": "deny"}}}, fh)
        self.steps({"write": {"ok.txt": "1", "secret/x.txt": "2"}})
        p = self.run_cli("run", "write the files please")
        self.assertEqual(p.returncode, 0, p.stderr)
        log = self.last_log()
        self.assertEqual((log["edits"], log["denied"]), (["ok.txt"], ["secret/x.txt"]))

    def test_json_events_usage_cost_session(self):
        self.steps({"write": {"a.txt": "x"}, "message": "Finished.",
                    "usage": {"input_tokens": 1001, "output_tokens": 51}, "cost_usd": 0.02})
        p = self.run_cli("run", "-m", "anthropic/claude-sonnet-4-5", "--format", "json", "make a.txt please")
        self.assertEqual(p.returncode, 0, p.stderr)
        ev = self.events(p)
        self.assertEqual([e["type"] for e in ev],
                         ["step_start", "tool_use", "step_finish", "step_start", "text", "step_finish"])
        sid = self.last_log()["session_id"]
        self.assertTrue(sid.startswith("ses_"))
        self.assertTrue(all(e["sessionID"] == sid for e in ev))
        fin = [e["part"] for e in ev if e["type"] == "step_finish"]
        self.assertEqual(sum(f["tokens"]["input"] for f in fin), 1001)
        self.assertEqual(sum(f["tokens"]["output"] for f in fin), 51)
        self.assertAlmostEqual(sum(f["cost"] for f in fin), 0.02)
        self.assertEqual(fin[-1]["reason"], "stop")
        self.assertEqual([e for e in ev if e["type"] == "text"][-1]["part"]["text"], "Finished.")
        self.assertEqual(self.last_log()["model"], "anthropic/claude-sonnet-4-5")

    def test_sessions(self):
        p = self.run_cli("run", "-s", "ses_doesnotexist", "hello there")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Session not found", p.stderr)
        p = self.run_cli("run", "--format", "json", "first prompt")
        sid = self.events(p)[0]["sessionID"]
        p = self.run_cli("run", "--format", "json", "-s", sid, "second prompt")
        self.assertEqual(self.events(p)[0]["sessionID"], sid)
        self.assertEqual(self.last_log()["resumed"], sid)
        p = self.run_cli("run", "--format", "json", "-c", "third prompt")
        self.assertEqual(self.events(p)[0]["sessionID"], sid)
        p = self.run_cli("run", "--fork", "fourth prompt")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--fork requires --continue or --session", p.stderr)

    def test_mcp_from_config_content(self):
        server = self.echo_server()
        cfg = {"mcp": {"echo": {"type": "local", "command": [sys.executable, server], "environment": {"A": "1"}}}}
        self.steps({"mcp": [{"server": "echo", "tool": "echo", "arguments": {"q": 1}},
                            {"server": "ghost", "tool": "x", "arguments": {}}]})
        p = self.run_cli("run", "--format", "json", "call the tools now",
                         env={"OPENCODE_CONFIG_CONTENT": json.dumps(cfg)})
        self.assertEqual(p.returncode, 0, p.stderr)
        tools = [e["part"] for e in self.events(p) if e["type"] == "tool_use"]
        self.assertEqual((tools[0]["tool"], tools[0]["state"]["status"]), ("echo_echo", "completed"))
        self.assertIn("echo:", tools[0]["state"]["output"])
        self.assertEqual(tools[1]["tool"], "invalid")
        log = self.last_log()
        self.assertEqual(log["mcp_servers"], ["echo"])
        self.assertEqual([r["ok"] for r in log["mcp_results"]], [True, False])

    def test_not_logged_in_and_failed_run(self):
        p = self.run_cli("run", "-m", "anthropic/claude-sonnet-4-5", "--format", "json", "hello there",
                         env={"FAKE_AGENT_FAIL_AUTH": "1"})
        self.assertEqual(p.returncode, 1)
        err = self.events(p)[-1]
        self.assertEqual((err["type"], err["error"]["name"]), ("error", "ProviderAuthError"))
        self.steps({"error": "Incorrect API key provided"})
        p = self.run_cli("run", "hello there")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Error: \x1b[0mIncorrect API key provided", p.stderr)
        p = self.run_cli("run", "--format", "json", "hello there")
        self.assertEqual(self.events(p)[-1]["error"]["data"]["message"], "Incorrect API key provided")



if __name__ == "__main__":
    unittest.main()
