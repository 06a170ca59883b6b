"""The single-image path without an event loop (``workbench inspect FILE``, :mod:`workbench.host.direct`) gives
what the asyncio path gives: the same report, the same sandbox map, the same required-layer refusal. Its
handling of misbehaving children is tested beside the async runner's in tests/test_client.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.builders import qcow2
from tests.helpers import comparable, finding_ids, write
from workbench import inspector
from workbench.engine.child import sandbox
from workbench.host import direct
from workbench.policy.policy import Policy


def both(request: inspector.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report of ``request`` by the direct path and by the asyncio path (a fresh child each)."""
    assert inspector.direct_path(request)
    return inspector.inspect_direct(request), asyncio.run(inspector.inspect(request))


@pytest.mark.qemu
@pytest.mark.parametrize("guest", [False, True])
def test_direct_and_async_paths_give_the_same_report_and_sandbox(qemu_create: Any, tmp_path: Path, guest: bool) -> None:
    base = qemu_create("base.qcow2", "qcow2", "64M")
    overlay = qemu_create("overlay.qcow2", "qcow2", "64M", "-b", str(base), "-F", "qcow2")
    request = inspector.Request(str(overlay), guest=guest)
    fast, slow = both(request)
    assert fast["verdict"] == "reject"  # a backing file outside any chain
    assert "backing-file" in finding_ids(fast)
    assert set(fast["sandbox"]) == set(sandbox.layer_order())  # every layer reported, as by the async path
    assert comparable(fast) == comparable(slow)


def test_direct_and_async_paths_judge_a_hostile_image_alike(tmp_path: Path) -> None:
    path = write(tmp_path, qcow2.qcow2(1 << 30, backing="/etc/passwd", backing_format="raw"), "upload.img")
    fast, slow = both(inspector.Request(str(path)))
    assert fast["verdict"] == "reject"
    assert {"backing-file", "format-undeclared"} <= finding_ids(fast)
    assert comparable(fast) == comparable(slow)


def test_direct_path_refuses_a_missing_required_layer_as_the_async_path_does(raw_image: Path) -> None:
    request = inspector.Request(str(raw_image), policy=Policy(required_layers=["no-such-layer"]))
    fast, slow = both(request)
    assert fast["verdict"] == "failed"
    assert "no-such-layer" in fast["error"]
    assert (fast["error"], fast["sandbox"].keys()) == (slow["error"], slow["sandbox"].keys())


def test_direct_path_takes_only_local_images_without_progress(raw_image: Path) -> None:
    assert inspector.direct_path(inspector.Request(str(raw_image)))
    assert not inspector.direct_path(inspector.Request(str(raw_image), deep=True))  # progress lines
    assert not inspector.direct_path(inspector.Request("s3://bucket/disk.qcow2"))  # the child's reads
    assert not direct.available(deep=True)
