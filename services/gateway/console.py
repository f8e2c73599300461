"""The built web console (console/dist, made by `npm run build -w console`) served by the
gateway at ``/``: the console then calls the API on its own origin, so it needs no CORS
allowance and no port of its own.

The files are read once at start (a few hundred kilobytes) and answered from memory; only
the paths that exist are served, so nothing outside the folder can be named.
"""

from __future__ import annotations

import mimetypes
import pathlib

Headers = list[tuple[bytes, bytes]]

# The console loads only its own scripts and styles and talks only to its own origin.
_SECURITY = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
]
_TYPES = {".js": b"text/javascript; charset=utf-8", ".css": b"text/css; charset=utf-8",
          ".html": b"text/html; charset=utf-8", ".svg": b"image/svg+xml",
          ".json": b"application/json"}


class ConsoleFiles:
    """The built console in memory: url path -> (headers, body)."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.files: dict[str, tuple[Headers, bytes]] = {}
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            url = "/" + path.relative_to(root).as_posix()
            ctype = _TYPES.get(path.suffix) or (
                mimetypes.guess_type(path.name)[0] or "application/octet-stream").encode()
            # Vite names assets by content hash: they never change under a name; index.html
            # is checked again on every load, so a rebuild is picked up at once.
            cache = (b"public, max-age=31536000, immutable" if url.startswith("/assets/")
                     else b"no-cache")
            self.files[url] = ([(b"content-type", ctype), (b"cache-control", cache),
                                *_SECURITY], path.read_bytes())
        if "/index.html" in self.files:
            self.files["/"] = self.files["/index.html"]

    @classmethod
    def at(cls, root: pathlib.Path) -> ConsoleFiles | None:
        """The console built in ``root``, or None when it has not been built."""
        return cls(root) if (root / "index.html").is_file() else None

    def answer(self, path: str) -> tuple[int, Headers, bytes] | None:
        """The file at ``path`` (200), or None when the console has no such file."""
        found = self.files.get(path)
        if found is None:
            return None
        headers, body = found
        return 200, headers, body
