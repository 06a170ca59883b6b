"""http(s):// sources against local stdlib servers: exact ranges, pinning, and every fault as one error."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator

import pytest

from tests.remote_servers import HUGE, RangeServer
from workbench.host.sources import (
    AbsurdSize,
    AccessDenied,
    BudgetExceeded,
    HTTPSource,
    ImageChanged,
    Limits,
    NotFound,
    RangeIgnored,
    RedirectRefused,
    RemoteError,
    TimedOut,
    Unreachable,
    open_url,
)
from workbench.host.sources.http import Link

FAST = Limits(connect_timeout=2.0, read_timeout=2.0, deadline=5.0)
DATA = os.urandom(1 << 20)


@pytest.fixture
def server() -> Iterator[RangeServer]:
    srv = RangeServer()
    srv.state.objects["/disk.qcow2"] = DATA
    yield srv
    srv.stop()


def test_reads_exactly_the_ranges_asked(server: RangeServer) -> None:
    with open_url(server.url("/disk.qcow2"), FAST) as obj:
        assert obj.size == len(DATA)
        assert obj.identity.etag and obj.identity.last_modified
        assert obj.read(0, 512) == DATA[:512]
        assert obj.read(70_000, 4096) == DATA[70_000:74_096]
        assert obj.read(len(DATA) - 10, 100) == DATA[-10:]  # clipped at the end, like pread
        assert obj.read(len(DATA) + 5, 10) == b""  # past the end: no request at all
        assert obj.bytes_read == 512 + 4096 + 10
    ranges = [(entry.range, entry.status, entry.body_bytes) for entry in server.state.settled()]
    assert ranges == [
        ("bytes=0-0", 206, 1),  # the probe that pins size and identity
        ("bytes=0-511", 206, 512),
        ("bytes=70000-74095", 206, 4096),
        (f"bytes={len(DATA) - 10}-{len(DATA) - 1}", 206, 10),
    ]
    assert server.state.body_bytes() == 1 + 512 + 4096 + 10


def test_ranges_are_conditional_on_the_pinned_etag(server: RangeServer) -> None:
    obj = open_url(server.url("/disk.qcow2"), FAST)
    obj.read(0, 100)
    server.state.objects["/disk.qcow2"] = DATA[:-1] + bytes([DATA[-1] ^ 0xFF])  # replaced, same size
    with pytest.raises(ImageChanged) as caught:
        obj.read(100, 100)
    assert "changed" in str(caught.value)
    assert server.state.settled()[-1].status == 412
    assert server.state.body_bytes() == 1 + 100


def test_replacement_seen_even_when_the_server_ignores_if_match(server: RangeServer) -> None:
    server.state.honour_conditions = False
    obj = open_url(server.url("/disk.qcow2"), FAST)
    server.state.objects["/disk.qcow2"] = DATA + b"grown"
    with pytest.raises(ImageChanged):
        obj.read(0, 100)


def test_deleted_between_ranges_is_a_change(server: RangeServer) -> None:
    obj = open_url(server.url("/disk.qcow2"), FAST)
    del server.state.objects["/disk.qcow2"]
    with pytest.raises(ImageChanged):
        obj.read(0, 100)


def test_range_ignored_is_refused_without_downloading(server: RangeServer) -> None:
    server.state.mode = "ignore-range"
    with pytest.raises(RangeIgnored) as caught:
        open_url(server.url("/disk.qcow2"), FAST)
    assert "\n" not in str(caught.value)
    # The server streams a 1 GiB body; what left it before the hang-up is socket buffers, not the object.
    assert server.state.body_bytes() < HUGE // 16
    assert server.state.settled()[0].status == 200


def test_a_stalled_server_hits_the_read_timeout(server: RangeServer) -> None:
    server.state.mode = "stall"  # holds every request for 5 s
    with pytest.raises(TimedOut):
        open_url(server.url("/disk.qcow2"), Limits(connect_timeout=1.0, read_timeout=0.3, deadline=10.0))


def test_the_deadline_ends_a_request_whatever_the_read_timeout(server: RangeServer) -> None:
    server.state.mode = "stall"
    with pytest.raises(TimedOut) as caught:
        open_url(server.url("/disk.qcow2"), Limits(connect_timeout=1.0, read_timeout=30.0, deadline=0.3))
    assert "deadline" in str(caught.value)


def test_the_deadline_ends_a_trickling_body(server: RangeServer) -> None:
    obj = open_url(server.url("/disk.qcow2"), Limits(connect_timeout=1.0, read_timeout=2.0, deadline=0.5))
    server.state.mode = "trickle"
    with pytest.raises(TimedOut, match="deadline"):
        obj.read(0, 1000)
    server.state.stop.set()
    assert server.state.body_bytes() < 1 + 1000


def test_server_dying_mid_read(server: RangeServer) -> None:
    obj = open_url(server.url("/disk.qcow2"), FAST)
    server.state.mode = "cut"
    with pytest.raises(Unreachable):
        obj.read(0, 64 * 1024)
    assert server.state.settled()[-1].body_bytes == 32 * 1024


def test_server_gone_between_ranges(server: RangeServer) -> None:
    obj = open_url(server.url("/disk.qcow2"), FAST)
    server.stop()
    with pytest.raises(Unreachable):
        obj.read(0, 100)


def test_missing_and_denied(server: RangeServer) -> None:
    with pytest.raises(NotFound):
        open_url(server.url("/nothing.vmdk"), FAST)
    with pytest.raises(AccessDenied):
        open_url(server.url("/private/disk.vmdk"), FAST)


def test_absurd_size_is_refused(server: RangeServer) -> None:
    server.state.mode = "huge"  # Content-Range total 2^64
    with pytest.raises(AbsurdSize):
        open_url(server.url("/disk.qcow2"), FAST)


def test_redirect_to_another_host_is_refused_unless_allowed(server: RangeServer) -> None:
    other = RangeServer()
    other.state.objects["/disk.qcow2"] = DATA
    try:
        server.state.mode = "redirect-away"
        server.state.redirect_to = other.url("", host="localhost")  # another host name
        with pytest.raises(RedirectRefused) as caught:
            open_url(server.url("/moved/disk.qcow2?X-Amz-Signature=s3cr3t"), FAST)
        assert "another host" in str(caught.value) and "s3cr3t" not in str(caught.value)
        assert other.state.log == []
        allowed = Limits(connect_timeout=2.0, read_timeout=2.0, deadline=5.0, allowed_hosts=frozenset({"localhost"}))
        with open_url(server.url("/moved/disk.qcow2"), allowed) as obj:
            assert obj.read(10, 20) == DATA[10:30]
        assert len(server.state.settled()) == 2  # the second range went straight to the final location
        assert [entry.range for entry in other.state.settled()] == ["bytes=0-0", "bytes=10-29"]
    finally:
        other.stop()


def test_redirect_on_the_same_origin_is_followed(server: RangeServer) -> None:
    server.state.mode = "redirect-home"
    server.state.redirect_to = server.url("")
    with open_url(server.url("/moved/disk.qcow2"), FAST) as obj:
        assert obj.read(0, 4) == DATA[:4]


def test_https_never_redirects_down_to_http() -> None:
    link = Link("https://images.example/disk.qcow2", FAST, ssl.create_default_context())
    with pytest.raises(RedirectRefused, match="down to http"):
        link._check_redirect(link.url, "http://images.example/disk.qcow2")


def test_budget_and_per_read_cap_stop_before_any_request(server: RangeServer) -> None:
    limits = Limits(connect_timeout=2.0, read_timeout=2.0, deadline=5.0, budget=1000, max_read=800)
    obj = HTTPSource(limits).open(server.url("/disk.qcow2"))
    obj.read(0, 600)
    with pytest.raises(BudgetExceeded):
        obj.read(600, 500)
    with pytest.raises(BudgetExceeded):
        obj.read(0, 900)
    assert server.state.body_bytes() == 1 + 600


def test_empty_object(server: RangeServer) -> None:
    server.state.objects["/empty.raw"] = b""
    assert open_url(server.url("/empty.raw"), FAST).size == 0


def test_credentials_never_appear_in_errors_or_reprs(server: RangeServer) -> None:
    secret_url = server.url("/disk.qcow2").replace("http://", "http://alice:hunter2@") + "?sig=SIGNED&token=TOK"
    obj = open_url(secret_url, FAST)
    server.state.objects["/disk.qcow2"] = b"replaced"
    with pytest.raises(RemoteError) as caught:
        obj.read(0, 10)
    for shown in (str(caught.value), repr(caught.value), repr(obj), obj.url):
        assert not {"alice", "hunter2", "SIGNED", "TOK"} & set(shown.replace("=", " ").replace(":", " ").split())
        assert "hunter2" not in shown and "SIGNED" not in shown
