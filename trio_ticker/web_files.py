"""Which request paths name a file of the web client (`TICKER_WEB_DIR`), and which do not.

A name is served only when it is a file's own path under the web directory: no empty, `.` or `..`
segment, no NUL, names the file system can hold, and, symlinks followed, a regular file that is still
inside the directory. Everything else is "no such file", decided without a traceback.
"""

from __future__ import annotations

from pathlib import Path

NAME_MAX = 255
PATH_MAX = 4096
"""Linux's limits, in bytes; a longer name cannot exist, so it is refused before any system call."""


class WebFiles:
    def __init__(self, directory: Path) -> None:
        self._root = directory.resolve()

    def find(self, name: str) -> Path | None:
        """The regular file `name` (a URL path below `/`, percent-decoded) names, or None."""
        try:
            encoded = name.encode()
        except UnicodeEncodeError:  # a lone surrogate: no file has that name
            return None
        segments = encoded.split(b"/")
        if len(encoded) > PATH_MAX or any(_unusable(segment) for segment in segments):
            return None
        try:
            path = self._root.joinpath(name).resolve(strict=True)
            if path.is_relative_to(self._root) and path.is_file():
                return path
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop
            pass
        return None


def _unusable(segment: bytes) -> bool:
    return segment in (b"", b".", b"..") or b"\0" in segment or len(segment) > NAME_MAX
