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
- :func:`refuse_inputs_as_outputs` runs first in every command that reads files: no output may be,
  or resolve to (symbolic links, ``..``, hard links), one of the command's inputs (a file, a
  folder, a file of an input folder, a member of an input VRT), nor another output.
- :func:`replaced_folder` writes a whole new folder (a generated dataset) beside the old one and
  swaps it in at the end; a non-empty folder is only replaced when asked to.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
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


#: Paths given for one option: one path, several, or none (an option not given).
PathsArg = str | os.PathLike | Iterable[str | os.PathLike] | None
#: Files that travel with a shapefile: an output named like one of them replaces part of the input.
SHAPEFILE_SUFFIXES = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def _as_paths(paths: PathsArg) -> list[Path]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths if p is not None]


def _vrt_members(vrt: Path, seen: set[Path]) -> list[Path]:
    """The source files of a GDAL VRT (relative ones resolved against its folder), nested VRTs
    included; an unreadable VRT has none here (the command that reads it names the problem)."""
    try:
        tree = ET.parse(vrt)
    except (OSError, ET.ParseError):
        return []
    members = []
    for source in tree.iter("SourceFilename"):
        if not source.text:
            continue
        member = Path(source.text)
        if source.get("relativeToVRT") == "1" and not member.is_absolute():
            member = vrt.parent / member
        members.append(member)
        if member.suffix.lower() == ".vrt" and member.resolve() not in seen:
            seen.add(member.resolve())
            members += _vrt_members(member, seen)
    return members


def input_files(path: str | Path) -> list[Path]:
    """``path`` and what reading it reads: a folder's files (not its sub-folders: a job or
    report folder made inside a tile folder replaces nothing), a VRT's members, a shapefile's
    companion files (``.shx``, ``.dbf``, ``.prj``…)."""
    path = Path(path)
    found = [path]
    if path.is_dir():
        for entry in sorted(path.iterdir()):  # a folder of tiles may be read through its VRTs
            found += input_files(entry) if entry.is_file() else []
    elif path.suffix.lower() == ".vrt":
        found += _vrt_members(path, {path.resolve()})
    elif path.suffix.lower() == ".shp":
        found += [path.with_suffix(s) for s in SHAPEFILE_SUFFIXES[1:] if path.with_suffix(s).exists()]
    return found


def _identities(path: Path) -> list[object]:
    """What names the same file: the resolved path (symbolic links, ``..``) and, for an existing
    file, its device and inode (hard links)."""
    keys: list[object] = [str(path.resolve())]
    try:
        stat = path.stat()
    except OSError:
        return keys
    return keys + [(stat.st_dev, stat.st_ino)]


def refuse_inputs_as_outputs(outputs: Mapping[str, PathsArg], inputs: Mapping[str, PathsArg]) -> None:
    """Refuse, before the work, an output that would replace one of the command's inputs.

    Args:
        outputs: option name (as the user types it, e.g. ``"--out"``) -> the path(s) it writes:
            files, or folders together with the files and sub-folders written in them.
        inputs: option name -> the path(s) it reads. Each is expanded by :func:`input_files`:
            a folder's entries, a VRT's members, a shapefile's companions.

    Raises:
        OutputError: one line naming the output option, the input option and the path, when an
            output is, or resolves to, an input, or when two outputs name the same file.
    """
    read: dict[object, tuple[str, Path, Path]] = {}
    for option, paths in inputs.items():
        for given in _as_paths(paths):
            for member in input_files(given):
                for key in _identities(member):
                    read.setdefault(key, (option, given, member))
    written: dict[object, tuple[str, Path]] = {}
    for option, paths in outputs.items():
        for path in _as_paths(paths):
            keys = _identities(path)
            for key in keys:
                if key in read:
                    source, given, member = read[key]
                    via = "" if member == given else f" ({member}, read through it)"
                    raise OutputError(f"{option} {path} would overwrite the input {source} {given}{via}: "
                                      "an output cannot replace what the command reads; give another path")
                if key in written and written[key][0] != option:
                    raise OutputError(f"{written[key][0]} and {option} would both write {path}: "
                                      "give each output its own path")
            written.update((key, (option, path)) for key in keys)


@contextmanager
def replaced_folder(folder: str | Path, overwrite: bool = False, what: str = "output folder") -> Iterator[Path]:
    """Yield a new folder to fill beside ``folder``; it replaces ``folder`` when the block succeeds.

    A non-empty ``folder`` is refused (before any work) unless ``overwrite``; then the old folder
    stays whole until the new one is complete, and is removed only after the swap: an
    interrupted block leaves the old folder as it was and removes its own work (a killed process
    leaves it hidden beside, as ``.NAME.PID.tmp``). ``folder`` may be a symbolic link: the
    folder it points to is replaced.

    Raises:
        OutputError: ``folder`` is a file, not empty without ``overwrite``, the current folder
            (or above it), or its parent folder cannot take a new folder.
    """
    shown = Path(folder)
    folder = shown.resolve()
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot use {shown} as the {what}: it is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise OutputError(f"the {what} {shown} is not empty: give a new folder, or --overwrite to replace "
                              "it (its files are removed)")
        if Path.cwd().resolve().is_relative_to(folder):
            raise OutputError(f"cannot replace the {what} {shown}: the command runs inside it")
    check_writable_dir(folder.parent, f"folder of the {what}")
    work = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        yield work
        if folder.is_dir():
            os.replace(folder, old)
        os.replace(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if old.exists() and not folder.exists():
            os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
