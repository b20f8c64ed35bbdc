"""The result of ``flairlc check``, for FLAIR #2 and FLAIR-HUB alike: issues and the report.

:func:`flairlc.data.check.check_dataset` (FLAIR #2) and :func:`flairlc.data.hub.check.check_hub`
(FLAIR-HUB) each collect one :class:`Issue` per problem, naming the offending file, in
:class:`Issues`, and return a :class:`CheckReport`: patch counts per split and domain and every
issue, written as text, JSON or a rich table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"

#: How many files :meth:`CheckReport.to_text` lists per kind of issue.
MAX_LISTED_PER_KIND = 20


@dataclass(frozen=True)
class Issue:
    """One problem found in a FLAIR root.

    Attributes:
        severity: ``"error"`` (the file cannot be used as is) or ``"warning"`` (usable, but odd).
        kind: short stable code, e.g. ``"missing-mask"``, ``"bad-size"``, ``"unreadable"``.
        path: the offending file or folder.
        message: what is wrong, in words a user can act on.
    """

    severity: Severity
    kind: str
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: [{self.kind}] {self.path}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        """A JSON-serializable dict (the path as a string)."""
        return {
            "severity": self.severity,
            "kind": self.kind,
            "path": str(self.path),
            "message": self.message,
        }


@dataclass
class CheckReport:
    """The result of :func:`check_dataset`.

    Attributes:
        root: the dataset root checked.
        counts: number of aerial patches per split, then per domain: ``{"train": {"D004_2021": n}}``.
        issues: every problem found, errors first, then by kind and path.
        patch_size: the expected aerial patch size ``(H, W)`` in pixels (the most common one), or
            None when no raster header could be read (no patches).
        sat_patch_size: the Sentinel-2 window size used for the centroid checks, in pixels.
        quick: True when only headers were read (see :func:`check_dataset`).
    """

    root: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    patch_size: tuple[int, int] | None = None
    sat_patch_size: int = 40
    quick: bool = False

    @property
    def ok(self) -> bool:
        """True when no issue is an error (warnings allowed)."""
        return not self.errors

    @property
    def errors(self) -> list[Issue]:
        """The issues of severity ``"error"``."""
        return [issue for issue in self.issues if issue.severity == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        """The issues of severity ``"warning"``."""
        return [issue for issue in self.issues if issue.severity == WARNING]

    @property
    def num_patches(self) -> int:
        """Total number of aerial patches found."""
        return sum(sum(domains.values()) for domains in self.counts.values())

    @property
    def mode(self) -> str:
        """What was read, in words: every byte, or headers only."""
        if self.quick:
            return "quick: headers of images and arrays, masks in full"
        return "full: every pixel and array read"

    def kinds(self, severity: Severity | None = None) -> set[str]:
        """The kinds of issue found, optionally of one severity only."""
        return {i.kind for i in self.issues if severity is None or i.severity == severity}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable summary: root, verdict, counts and every issue."""
        return {
            "root": str(self.root),
            "ok": self.ok,
            "quick": self.quick,
            "num_patches": self.num_patches,
            "num_errors": len(self.errors),
            "num_warnings": len(self.warnings),
            "patch_size": list(self.patch_size) if self.patch_size else None,
            "sat_patch_size": self.sat_patch_size,
            "counts": {split: dict(domains) for split, domains in self.counts.items()},
            "issues": [issue.to_dict() for issue in self.issues],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def size_line(self) -> str | None:
        """The patch and window sizes in words, or None when there are no patches."""
        if self.patch_size is None or not self.num_patches:
            return None
        height, width = self.patch_size
        return f"aerial patch size {height}x{width} px, Sentinel-2 window {self.sat_patch_size} px"

    def to_text(self, max_per_kind: int = MAX_LISTED_PER_KIND) -> str:
        """A readable report: header, patch counts per split and domain, issues grouped by kind.

        Args:
            max_per_kind: files listed per kind of issue before ``... and N more``.
        """
        lines = [f"FLAIR dataset check ({self.mode}): {self.root}"]
        size_line = self.size_line()
        if size_line:
            lines.append(f"  {size_line}")
        lines += ["", "Patches per split and domain"]
        lines += _counts_lines(self.counts)
        for severity, title in ((ERROR, "Errors"), (WARNING, "Warnings")):
            selected = [i for i in self.issues if i.severity == severity]
            if not selected:
                continue
            lines += ["", f"{title} ({len(selected)})"]
            for kind, group in _group_by_kind(selected).items():
                lines.append(f"  {kind} ({len(group)})")
                for issue in group[:max_per_kind]:
                    lines.append(f"    {self.display_path(issue.path)}: {issue.message}")
                if len(group) > max_per_kind:
                    lines.append(f"    ... and {len(group) - max_per_kind} more")
        verdict = "OK" if self.ok else "FAILED"
        lines += [
            "",
            f"Result: {verdict}: {self.num_patches} patches, {len(self.errors)} errors, "
            f"{len(self.warnings)} warnings",
        ]
        return "\n".join(lines) + "\n"

    def display_path(self, path: Path) -> str:
        """A path relative to the root when it lies under it (for reports), else as is."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return str(path)
        return str(path) if relative == Path() else str(relative)


def print_report(report: CheckReport, console: Any = None) -> None:
    """Print a :class:`CheckReport` to a terminal with rich (tables and colours).

    Args:
        report: the report to print.
        console: a ``rich.console.Console``; a new one on stdout by default.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    console.print(
        f"[bold]FLAIR dataset check[/bold] ({escape(report.mode)}): {escape(str(report.root))}"
    )
    size_line = report.size_line()
    if size_line:
        console.print(size_line)
    table = Table(title="Patches per split and domain")
    table.add_column("split")
    table.add_column("domain")
    table.add_column("patches", justify="right")
    for split, domains in report.counts.items():
        for domain, count in sorted(domains.items()):
            table.add_row(split, domain, str(count))
        table.add_row(split, "[bold]total[/bold]", f"[bold]{sum(domains.values())}[/bold]")
    console.print(table)
    for severity, style in ((ERROR, "red"), (WARNING, "yellow")):
        selected = [i for i in report.issues if i.severity == severity]
        if not selected:
            continue
        console.print(f"[bold {style}]{severity.capitalize()}s ({len(selected)})[/bold {style}]")
        for kind, group in _group_by_kind(selected).items():
            console.print(f"  [{style}]{kind}[/{style}] ({len(group)})")
            for issue in group[:MAX_LISTED_PER_KIND]:
                path = escape(report.display_path(issue.path))
                console.print(f"    {path}: {escape(issue.message)}")
            if len(group) > MAX_LISTED_PER_KIND:
                console.print(f"    ... and {len(group) - MAX_LISTED_PER_KIND} more")
    verdict = "[bold green]OK[/bold green]" if report.ok else "[bold red]FAILED[/bold red]"
    console.print(
        f"Result: {verdict}: {report.num_patches} patches, {len(report.errors)} errors, "
        f"{len(report.warnings)} warnings"
    )


class Issues(list):
    """A list of issues, with one method per severity."""

    def error(self, kind: str, path: Path, message: str) -> None:
        self.append(Issue(ERROR, kind, Path(path), message))

    def warn(self, kind: str, path: Path, message: str) -> None:
        self.append(Issue(WARNING, kind, Path(path), message))

    def in_report_order(self) -> list[Issue]:
        """The issues, errors first, then by kind and path: the order of a report's issues."""
        order = {ERROR: 0, WARNING: 1}
        return sorted(self, key=lambda i: (order[i.severity], i.kind, str(i.path)))


def _counts_lines(counts: dict[str, dict[str, int]]) -> list[str]:
    rows = [("split", "domain", "patches")]
    for split, domains in counts.items():
        rows += [(split, domain, str(count)) for domain, count in sorted(domains.items())]
        rows.append((split, "total", str(sum(domains.values()))))
    if len(rows) == 1:
        return ["  (no patches found)"]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]


def _group_by_kind(issues: list[Issue]) -> dict[str, list[Issue]]:
    groups: dict[str, list[Issue]] = defaultdict(list)
    for issue in issues:
        groups[issue.kind].append(issue)
    return dict(groups)
