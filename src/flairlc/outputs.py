"""Writing outputs: into folders checked before the work starts, atomically, one-line errors.

Every stage writes its files through this module, so that every command behaves the same way:

- :func:`check_writable` (a file to be written) and :func:`check_writable_dir` (a folder to
  write in) run before any long work: the folder is created when missing, then a probe file is
  created and removed in it. A place that cannot take the output stops the command at once with
  an :class:`OutputError` naming the path, instead of after hours of inference.
- :func:`atomic_path` yields a temporary name in the destination's folder and renames it over the
  destination (``os.replace``) only when the block ends without an error; the temporary file is
  removed otherwise. A reader never sees a half-written file under the final name.
- :func:`write_bytes`, :func:`write_text`, :func:`write_json` and :func:`save_figure` are the
  usual cases of it; rasters (``rasterio.open(tmp, "w")``), GeoPackages and checkpoints use
  :func:`atomic_path` directly.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Resolution of matplotlib figures written by :func:`save_figure`, dots per inch.
FIGURE_DPI = 120


class OutputError(OSError):
    """An output cannot be written where it was asked (the message names the path and why)."""


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


def ensure_dir(folder: str | Path, what: str = "output folder", target: str | Path | None = None) -> Path:
    """Create ``folder`` (and its parents) when missing; one-line :class:`OutputError` if impossible.

    ``what`` names the folder in messages, or, with ``target``, the file to be written in it.
    """
    folder = Path(folder)
    if folder.is_dir():
        return folder
    cannot = f"cannot write the {what} {target}" if target is not None else None
    if folder.exists():
        raise OutputError(f"{cannot}: {folder} is a file, not a folder" if cannot
                          else f"cannot use {folder} as the {what}: it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = next((p for p in folder.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker is not None else _reason(error)
        raise OutputError(f"{cannot}: cannot create its folder {folder} ({why})" if cannot
                          else f"cannot create the {what} {folder}: {why}") from None
    return folder


def _probe(folder: Path, what: str, target: Path) -> None:
    """Create and remove a file in ``folder``: the only test that holds for root and read-only mounts."""
    probe = folder / f".flairlc-write-test.{os.getpid()}"
    try:
        with open(probe, "wb"):
            pass
    except OSError as error:
        where = "" if target == folder else f": its folder {folder} does not accept new files"
        raise OutputError(f"cannot write the {what} {target}{where} ({_reason(error)})") from None
    probe.unlink(missing_ok=True)


def check_writable(path: str | Path, what: str = "output") -> Path:
    """Make sure a file can be written at ``path``, before the work that produces it.

    The folder is created when missing. Raises :class:`OutputError` when ``path`` is a folder,
    when its folder cannot be created, or when no file can be created in it.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"the {what} {path} is a folder: give a file name")
    _probe(ensure_dir(path.parent, what, target=path), what, path)
    return path


def check_writable_dir(folder: str | Path, what: str = "output folder") -> Path:
    """Make sure files can be written in ``folder`` (created when missing), before the work."""
    folder = ensure_dir(folder, what)
    _probe(folder, what, folder)
    return folder


def temporary_path(path: str | Path, keep_suffix: bool = False) -> Path:
    """The temporary name :func:`atomic_path` writes ``path`` under: hidden, same folder, per process.

    ``keep_suffix`` ends it with ``path``'s extension too, for writers that choose the format
    from the name (GeoPackage): ``.map.gpkg.1234.tmp.gpkg`` instead of ``.map.gpkg.1234.tmp``.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp" + (path.suffix if keep_suffix else ""))


@contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; rename it to ``path`` on success.

    The folder is created when missing. On an error in the block the temporary file is removed
    and the error propagates; ``path`` is left as it was.
    """
    path = Path(path)
    ensure_dir(path.parent, "output", target=path)
    temporary = temporary_path(path, keep_suffix)
    try:
        yield temporary
        try:
            os.replace(temporary, path)
        except OSError as error:
            raise OutputError(f"cannot write {path}: {_reason(error)}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as temporary:
        try:
            with open(temporary, "wb") as file:
                file.write(data)
        except OSError as error:
            raise OutputError(f"cannot write {path}: {_reason(error)}") from None
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, newline: bool = False, **dumps_kwargs: Any) -> Path:
    """Write ``json.dumps(obj, **dumps_kwargs)`` (plus a final newline with ``newline``) atomically."""
    return write_text(path, json.dumps(obj, **dumps_kwargs) + ("\n" if newline else ""))


def save_figure(fig: Any, path: str | Path, dpi: int = FIGURE_DPI, **savefig_kwargs: Any) -> Path:
    """Render a matplotlib figure as PNG and write it atomically; returns ``path``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, **savefig_kwargs)
    return write_bytes(path, buffer.getvalue())


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (existing or not)."""
    return Path(a).resolve() == Path(b).resolve()
