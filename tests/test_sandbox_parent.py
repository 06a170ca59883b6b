"""The parent's side of the sandbox: it trusts only the layer line a child sends before parsing, checks it
against the policy itself, keeps the fork server's last words, and says which requirements a machine can meet."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from workbench import inspector
from workbench.host import runner as client
from workbench.host import sandbox_check as check
from workbench.policy import policy as policy_mod
from workbench.policy import settings as settings_mod
from workbench.ui.qtmodels.property_model import overview_nodes


@pytest.fixture
def real_reply(raw_image: Path) -> dict[str, Any]:
    """What a real, fully hardened child answers for the image."""
    return {"ok": True, "report": asyncio.run(client.inspect_path(str(raw_image), "raw", client.EngineOptions()))}


def _lying_child(monkeypatch: pytest.MonkeyPatch, first_line: dict[str, str], reply: dict[str, Any]) -> None:
    """A child whose pre-parse line says ``first_line`` and whose report, written after parsing, says all on."""
    out = json.dumps({"sandbox": first_line}).encode() + b"\n" + json.dumps(reply).encode()

    async def run_child(*args: Any) -> client.ChildOutcome:
        return client.ChildOutcome(0, out, b"")

    monkeypatch.setattr(client.FreshProcessRunner, "run", run_child)


def test_the_report_shows_the_line_sent_before_parsing(
    monkeypatch: pytest.MonkeyPatch, raw_image: Path, real_reply: dict[str, Any]
) -> None:
    claimed = real_reply["report"]["sandbox"]
    assert claimed["seccomp"].startswith("on")
    _lying_child(monkeypatch, {**claimed, "seccomp": "off: not requested"}, real_reply)
    report = asyncio.run(inspector.inspect(inspector.Request(str(raw_image))))
    assert report["sandbox"]["seccomp"] == "off: not requested"
    (finding,) = [f for f in report["findings"] if f["id"] == "sandbox-degraded"]
    assert finding["detail"] == "parsed by a weaker engine child: seccomp off: not requested"
    assert report["verdict"] == "review"
    overview = {node.cells[0]: node.cells[1] for node in overview_nodes(report)}  # the window's first page
    assert overview["Sandbox"] == finding["detail"]


def test_the_parent_refuses_a_child_that_lacks_a_required_layer(
    monkeypatch: pytest.MonkeyPatch, raw_image: Path, real_reply: dict[str, Any]
) -> None:
    """The child went ahead (its reply says ok), but its first line lacks the network barrier: refused."""
    first = {**real_reply["report"]["sandbox"], "namespaces": "unavailable: x", "seccomp": "failed: y"}
    _lying_child(monkeypatch, first, real_reply)
    report = asyncio.run(inspector.inspect(inspector.Request(str(raw_image))))
    assert report["verdict"] == "failed"
    assert report["error"] == "sandbox layers required but not on: namespaces|seccomp"
    assert report["sandbox"]["seccomp"] == "failed: y"


FAKE_ZYGOTE = """
import json, os, sys
sys.stdin.buffer.read()
sys.stdout.write(json.dumps({"sandbox": {"rlimits": "failed: no limits here"}}) + "\\n" + json.dumps({"ok": True}))
sys.stdout.flush()
os.close(1)
sys.stderr.write("line one\\nline two\\nzygote fell over: out of luck\\n")
sys.exit(3)
"""


@pytest.fixture
def fake_zygote(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork server that greets, writes its last words to stderr and dies."""
    monkeypatch.setattr(client, "engine_command", lambda zygote=False: [sys.executable, "-I", "-c", FAKE_ZYGOTE])


@pytest.mark.usefixtures("fake_zygote")
def test_a_dead_zygote_leaves_its_last_stderr_lines_in_the_error(raw_image: Path) -> None:
    async def run() -> str:
        async with client.ForkServerRunner() as zygote:
            with pytest.raises(client.InspectError) as caught:
                await client.inspect_path(str(raw_image), "raw", client.EngineOptions(), runner=zygote)
            return str(caught.value)

    message = asyncio.run(run())
    assert message.startswith("the engine zygote ")
    assert message.endswith(": line one | line two | zygote fell over: out of luck")


@pytest.mark.usefixtures("fake_zygote")
def test_a_zygote_without_a_required_layer_is_refused_by_the_parent() -> None:
    with pytest.raises(client.InspectError) as caught:
        asyncio.run(client.ForkServerRunner(["rlimits"]).start())
    assert str(caught.value).startswith("the engine zygote did not start: sandbox layers required but not on: rlimits")
    assert caught.value.sandbox == {"rlimits": "failed: no limits here"}


def test_settings_refuse_a_requirement_this_machine_can_never_meet() -> None:
    result = asyncio.run(check.check([]))
    assert policy_mod.available_layers(result) >= {"namespaces", "seccomp", "landlock", "rlimits", "user"}
    policy_mod.check_required_layers(policy_mod.default_required_layers(), result)  # this machine has them all
    no_userns = {**result, "layers": {**result["layers"], "namespaces": "unavailable: unshare: EPERM"}}
    policy_mod.check_required_layers(["namespaces|seccomp"], no_userns)
    with pytest.raises(ValueError, match=r"can never meet: namespaces, teleportation \(it has: "):
        policy_mod.check_required_layers(["namespaces", "landlock|seccomp", "teleportation"], no_userns)
    forked_weaker = {**result, "zygote": {**result["zygote"], "layers": {"seccomp": "failed: z"}}}
    assert policy_mod.available_layers(forked_weaker) == set()  # a layer counts only if both kinds of child have it


def test_settings_with_a_non_name_among_the_required_layers_fall_back_to_the_default(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"required_layers": ["rlimits", 7, "|"]}))
    assert settings_mod.load(path).required_layers == policy_mod.default_required_layers()
    path.write_text(json.dumps({"required_layers": ["rlimits", "landlock|seccomp"]}))
    assert settings_mod.load(path).required_layers == ["rlimits", "landlock|seccomp"]


def test_an_interrupt_while_the_fork_server_closes_is_not_swallowed() -> None:
    """Closing cancels the server's listener and waits for it; a cancellation of the closing task itself (a
    Ctrl-C in triage) must still end that task, or an interrupted run would exit 0."""
    from workbench.host.runner import ForkServerRunner

    async def run() -> bool:
        stuck = asyncio.Event()

        async def listener() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                stuck.set()
                await asyncio.sleep(3600)  # a listener slow to finish keeps close() waiting

        server = ForkServerRunner()
        server._listener = asyncio.ensure_future(listener())
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(server.close())
        await stuck.wait()
        closing.cancel()
        try:
            await closing
        except asyncio.CancelledError:
            return True
        finally:
            server._listener.cancel()
        return False

    assert asyncio.run(run())
