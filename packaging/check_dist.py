"""Check the built sdist and wheel: the right name and version, the icons and py.typed in, no tests.

Usage: python packaging/check_dist.py DIST_DIR  (after ``python -m build --outdir DIST_DIR``)
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from workbench import __version__  # noqa: E402

NAME = "disk_image_workbench"


def problems_in_wheel(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta_name = f"{NAME}-{__version__}.dist-info/METADATA"
        meta = Parser().parsestr(archive.read(meta_name).decode()) if meta_name in names else None
        entry = archive.read(f"{NAME}-{__version__}.dist-info/entry_points.txt").decode()
    found = []
    if meta is None:
        return [f"{wheel.name}: no {meta_name}"]
    if meta["Name"] != "disk-image-workbench" or meta["Version"] != __version__:
        found.append(f"metadata names {meta['Name']} {meta['Version']}")
    if meta["License-Expression"] != "GPL-3.0-or-later":
        found.append(f"license expression {meta['License-Expression']!r}")
    if not any(name.endswith("licenses/LICENSE") for name in names):
        found.append("no LICENSE in the wheel")
    if "workbench = workbench.__main__:main" not in entry:
        found.append("no `workbench` console script")
    if "workbench/py.typed" not in names:
        found.append("no workbench/py.typed")
    icons = [name for name in names if name.startswith("workbench/ui/icons/") and name.endswith(".svg")]
    if len(icons) < 5:
        found.append(f"only {len(icons)} icons")
    strays = [name for name in names if name.split("/")[0] in ("tests", "benchmarks", "fuzz", "packaging", "docs")]
    if strays:
        found.append(f"files that do not belong in the wheel: {strays[:5]}")
    return [f"{wheel.name}: {problem}" for problem in found]


def problems_in_sdist(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[-1] for name in archive.getnames()}
    wanted = ["LICENSE", "README.md", "pyproject.toml", "workbench/__init__.py", "workbench/py.typed"]
    return [f"{sdist.name}: no {name}" for name in wanted if name not in names]


def main(argv: list[str]) -> int:
    dist = Path(argv[1] if len(argv) > 1 else "dist-py")
    wheels = sorted(dist.glob(f"{NAME}-{__version__}-*.whl"))
    sdists = sorted(dist.glob(f"{NAME}-{__version__}.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"expected one wheel and one sdist of {__version__} in {dist}: {sorted(p.name for p in dist.iterdir())}")
        return 1
    problems = problems_in_wheel(wheels[0]) + problems_in_sdist(sdists[0])
    for problem in problems:
        print(problem)
    if not problems:
        print(f"dist: {wheels[0].name} and {sdists[0].name} look right")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
