"""`make demo` on a fresh clone: the first install says what it does and shows pip's
progress, instead of a silent minute of `pip install --quiet`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_first_install_announces_itself_and_shows_progress(tmp_path):
    """`make -n demo` with a venv that does not exist yet: what would run, in order."""
    planned = subprocess.run(
        ["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    announce = next(i for i, line in enumerate(planned) if "first run: creating" in line)
    install = next(i for i, line in enumerate(planned) if "pip install" in line and "-e" in line)
    assert announce < install
    assert "--quiet" not in planned[install] and "--progress-bar on" in planned[install]
    assert any("bin/orchestrator" in line for line in planned[install:])  # says what to run
