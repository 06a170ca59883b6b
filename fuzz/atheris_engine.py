"""Coverage-guided fuzzing of the engine with atheris (libFuzzer for Python).

An input is one selector byte, which picks the declared format (:data:`fuzz.corpus.DECLARED`), followed by
the image. The image is written into a memfd and inspected by ``report.build`` exactly as the sandboxed
child does it; every report must hold the invariants of :mod:`fuzz.checks`. A broken invariant or an
exception is a crash (atheris saves the input as ``crash-*`` and stops); an input that runs past
libFuzzer's ``-timeout`` is a hang (``timeout-*``); one that grows past ``-rss_limit_mb`` is ``oom-*``.

With ``WORKBENCH_FUZZ_LOG=FILE`` a crash does not stop the run: the input is saved beside FILE as
``failure-<sha1>`` and one JSON line (its class and message) is appended to FILE, so that one long run
counts every class of failure instead of ending at the first. Hangs and memory blow-ups still stop it.

Run: ``fuzz/run_long.sh`` (builds the seed corpus, runs for a set time, prints the figures), or directly
``python fuzz/atheris_engine.py CORPUS_DIR -max_total_time=600``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import traceback
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["workbench.engine"]):
    from workbench.engine import report

from fuzz import checks  # noqa: E402
from fuzz.corpus import declared_for  # noqa: E402

IMAGE = checks.Image()
LOG = os.environ.get("WORKBENCH_FUZZ_LOG")


def inspect_input(data: bytes) -> None:
    declared = declared_for(data[0])
    image = data[1:]
    rep = report.build(IMAGE.load(image), "fuzz-input", declared)
    checks.check(rep, len(image))


def record(data: bytes, exc: Exception, log: Path) -> None:
    """Keep the input and one line saying what broke, where."""
    digest = hashlib.sha1(data).hexdigest()
    (log.parent / f"failure-{digest}").write_bytes(data)
    where = traceback.extract_tb(exc.__traceback__)[-1]
    line = {
        "input": digest,
        "class": f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno}",
        "message": str(exc)[:300],
        "declared": declared_for(data[0]),
    }
    with log.open("a") as out:
        out.write(json.dumps(line) + "\n")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    if LOG is None:
        inspect_input(data)
        return
    try:
        inspect_input(data)
    except Exception as exc:  # logged and counted; the run goes on
        record(data, exc, Path(LOG))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
