"""Scripts run as ``python bench/x.py`` or ``python scripts/x.py`` put their own folder first
on ``sys.path``, so a file there named like a stdlib module replaces that module for every
script beside it (``bench/queue.py`` once broke psycopg's ``import queue`` in every bench)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("folder", ["bench", "scripts"])
def test_no_script_shadows_a_stdlib_module(folder: str) -> None:
    names = {path.stem for path in (ROOT / folder).glob("*.py")}
    assert names, f"no scripts found in {folder}/"
    assert sorted(names & set(sys.stdlib_module_names)) == []
