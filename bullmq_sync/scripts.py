"""Our Lua scripts: loading them from ``lua/``, expanding includes, and their SHA1s.

A script file is ``lua/<name>.lua``; a line ``-- @include "<fragment>"`` is replaced by
``lua/includes/<fragment>.lua`` (each fragment once per script, fragments may include
others). Running them is ``connection.py``'s job.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

_INCLUDE = re.compile(r'^\s*--\s*@include\s+"([\w./-]+)"\s*$', re.MULTILINE)


@dataclass(frozen=True)
class Script:
    """One expanded Lua script and its SHA1."""

    name: str
    source: str
    sha: str


def _lua_root() -> Traversable:
    """``lua/`` as installed (``bullmq_sync.lua``), else beside the package in a checkout."""
    try:
        root = resources.files("bullmq_sync.lua")
        if root.joinpath(_PROBE).is_file():
            return root
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "lua"


_PROBE = "retryFinishedJob.lua"


class ScriptLibrary:
    """Every script of the package, loaded lazily and cached for the process."""

    def __init__(self, root: Traversable | None = None) -> None:
        self._root = root
        self._scripts: dict[str, Script] = {}
        self._lock = threading.Lock()

    @property
    def root(self) -> Traversable:
        if self._root is None:
            self._root = _lua_root()
        return self._root

    def get(self, name: str) -> Script:
        """The script ``lua/<name>.lua``, includes expanded."""
        script = self._scripts.get(name)
        if script is None:
            with self._lock:
                script = self._scripts.get(name)
                if script is None:
                    source = self._expand(self.root.joinpath(f"{name}.lua").read_text("utf-8"))
                    sha = hashlib.sha1(source.encode("utf-8")).hexdigest()
                    script = Script(name=name, source=source, sha=sha)
                    self._scripts[name] = script
        return script

    def all(self) -> list[Script]:
        """Every script in ``lua/`` (what a new connection pool preloads)."""
        names = sorted(
            entry.name[: -len(".lua")]
            for entry in self.root.iterdir()
            if entry.name.endswith(".lua") and entry.is_file()
        )
        return [self.get(name) for name in names]

    def _expand(self, source: str, seen: set[str] | None = None) -> str:
        seen = set() if seen is None else seen

        def replace(match: re.Match[str]) -> str:
            fragment = match.group(1)
            if fragment in seen:
                return ""
            seen.add(fragment)
            text = self.root.joinpath("includes").joinpath(f"{fragment}.lua").read_text("utf-8")
            return self._expand(text, seen)

        return _INCLUDE.sub(replace, source)


LIBRARY = ScriptLibrary()
"""The package's scripts (shared by every connection in the process)."""
