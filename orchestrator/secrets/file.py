"""Secrets from a JSON or YAML file that only its owner may read.

The seed wrote the file and then changed its mode (a window in which anyone could read
it) and never checked the mode when reading. Here the file is refused while its group or
others have any permission on it, or when another user owns it; it is re-read when its
modification time or size changes; and :func:`write_secret` creates a new file with mode
0600 and renames it into place, so there is no readable moment and no torn file.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import platformdirs
import yaml

from orchestrator.secrets.base import SecretsError, normalise_name

NAMES = ("secrets.json", "secrets.yaml", "secrets.yml")


def default_secrets_file() -> Path:
    """The first existing ``secrets.{json,yaml,yml}`` in the user config dir, else the
    ``.json`` one (where ``orchestrator secrets set`` creates it)."""
    base = Path(platformdirs.user_config_dir("orchestrator-hub"))
    for name in NAMES:
        if (base / name).exists():
            return base / name
    return base / NAMES[0]


def _check_private(path: Path, info: os.stat_result) -> None:
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise SecretsError(
            f"refusing secrets file {path}: mode {mode:04o} lets other users read it; "
            f"run chmod 600 {path}"
        )
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise SecretsError(
            f"refusing secrets file {path}: it belongs to uid {info.st_uid}, not to this "
            f"user (uid {os.getuid()}); chown it or point ORCHESTRATOR_SECRETS_FILE elsewhere"
        )


def _parse(path: Path, text: str) -> dict[str, str]:
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        where = getattr(error, "lineno", None) or getattr(
            getattr(error, "problem_mark", None), "line", None
        )
        at = f" (line {where})" if where else ""
        raise SecretsError(f"secrets file {path} is not valid {kind}{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SecretsError(
            f"secrets file {path} must hold a mapping of NAME: value, not a {type(data).__name__}"
        )
    secrets: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise SecretsError(
                f"secrets file {path}: the value of {str(key)[:80]!r} must be a string or number"
            )
        secrets[normalise_name(str(key))] = str(value)
    return secrets


class FileSecrets:
    """The secrets of one file; a missing file holds none."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._secrets: dict[str, str] = {}

    def load(self) -> dict[str, str]:
        """The file's secrets (re-read when it changed), or SecretsError saying why not."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            self._seen, self._secrets = None, {}
            return {}
        except OSError as error:
            raise SecretsError(f"cannot read secrets file {self.path}: {error.strerror}") from None
        _check_private(self.path, info)
        seen = (info.st_mtime_ns, info.st_size)
        if seen != self._seen:
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                reason = getattr(error, "strerror", None) or "not UTF-8 text"
                raise SecretsError(f"cannot read secrets file {self.path}: {reason}") from None
            self._secrets, self._seen = _parse(self.path, text), seen
        return self._secrets

    def get(self, key: str) -> str | None:
        """The value of ``key`` in the file, or None."""
        return self.load().get(key)

    def describe(self) -> str:
        """What this provider reads, for ``orchestrator secrets check``."""
        return f"file {self.path}" + ("" if self.path.exists() else " (not created yet)")


def write_secret(path: Path, name: str, value: str) -> None:
    """Stores ``name`` = ``value`` in ``path`` (created 0600, its directory 0700): the
    whole file is written to a new 0600 file in the same directory and renamed over the
    old one. An existing file that others may read is refused, as when reading."""
    key = normalise_name(name)
    current = dict(FileSecrets(path).load())
    current[key] = value
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.suffix in (".yaml", ".yml"):
        text = yaml.safe_dump(current, sort_keys=True, allow_unicode=True)
    else:
        text = json.dumps(current, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    # mkstemp creates the file with mode 0600 (O_EXCL): never readable by others.
    fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
