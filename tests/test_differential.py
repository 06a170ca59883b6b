"""Differential harness against the consumer (fuzz/differential.py): what qemu opens, the workbench names.

Every case mutates the reference-carrying parts of a qemu-img seed, runs ``qemu-img info --backing-chain``
under strace in a throwaway folder and the image through the sandboxed engine, and requires: every path
qemu tried to open (other than the image and the system's own files) is named in ``references``, and the
verdict is reject. Seed 0 gives the same cases on every run; every case a run ever found is kept under
tests/data/differential/ and checked again here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fuzz import differential as diff
from tests.conftest import required_tool

CASES_PER_SEED = 50
SAMPLES = Path(__file__).parent / "data" / "differential"

# Differentials a run found whose fix is under way: case name -> the class it belongs to. xfail strict, so
# a fixed case fails here until it is taken off. Empty: the 141 cases found so far (seven classes, listed in
# docs/robustness.md) are all fixed. Never add an unexplained case.
KNOWN_DIFFERENTIALS: dict[str, str] = {}

EXPECTED_SEED_OPENS = {
    "qcow2-backing": ["SNTLbk.qcow2"],
    "qcow2-datafile": ["SNTLdata.raw"],
    "qed-backing": ["SNTLbk.qed"],
    "qcow-backing": ["SNTLbk.raw"],
    "vmdk-sparse-parent": ["SNTLparent.vmdk"],
    "vmdk-flat": ["SNTLb-flat.vmdk"],
    "vmdk-2gb-sparse": ["SNTLf-s001.vmdk", "SNTLf-s002.vmdk"],
    "qcow2-wide": ["SNTLbk2.qcow2"],
}


def _samples() -> list[str]:
    return sorted(p.name for p in SAMPLES.glob("*.gz"))


def _case_ids() -> list[str]:
    return [f"{seed}-{i:03d}" for seed in diff.SEED_NAMES for i in range(CASES_PER_SEED)]


def _params(ids: list[str]) -> list[object]:
    return [
        pytest.param(i, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENTIALS[k]))
        if (k := i.split(".", 1)[0]) in KNOWN_DIFFERENTIALS
        else i
        for i in ids
    ]


@pytest.fixture(scope="module")
def outcomes(qemu_img: str) -> dict[str, diff.Outcome]:
    """Every case of this module, run once in one batch: seeds, generated cases, regression samples."""
    required_tool("strace", "strace")  # fails, not skips, when CI requires the oracles
    seeds = diff.make_seeds(qemu_img)
    by_name = {seed.name: seed for seed in seeds}
    cases = [diff.Case(f"seed:{s.name}", s, s.data, []) for s in seeds]
    cases += [diff.make_case(s, i) for s in seeds for i in range(CASES_PER_SEED)]
    samples = [diff.sample_case(SAMPLES / name, by_name) for name in _samples()]
    for case in samples:
        case.id = f"sample:{case.id}"
    results = asyncio.run(diff.run_cases(qemu_img, cases + samples))
    return {out.case_id: out for out in results}


@pytest.mark.parametrize("seed", diff.SEED_NAMES)
def test_seeds_open_exactly_their_own_references(outcomes: dict[str, diff.Outcome], seed: str) -> None:
    """The harness sees what qemu opens, and nothing of the loader's: the unmutated seeds."""
    out = outcomes[f"seed:{seed}"]
    assert out.opened == EXPECTED_SEED_OPENS[seed]
    assert not out.differential, out.describe()


@pytest.mark.parametrize("case_id", _params(_case_ids()))
def test_generated_case(outcomes: dict[str, diff.Outcome], case_id: str) -> None:
    out = outcomes[case_id]
    assert not out.differential, out.describe()


@pytest.mark.parametrize("sample", _params(_samples()))
def test_regression_sample(outcomes: dict[str, diff.Outcome], sample: str) -> None:
    out = outcomes["sample:" + sample.split(".", 1)[0]]
    assert not out.differential, out.describe()


def test_the_harness_exercises_qemu(outcomes: dict[str, diff.Outcome]) -> None:
    """Not vacuous: most generated cases make qemu open another file."""
    generated = [outcomes[i] for i in _case_ids()]
    assert sum(1 for out in generated if out.opened) > len(generated) // 3
