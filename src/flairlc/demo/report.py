"""The HTML report of ``flairlc demo``: one self-contained file, and the terminal results table.

:func:`write_report` writes ``report.html``: every image is embedded as a base64
``data:image/png`` URI, the CSS is inline, and nothing is fetched from elsewhere, so the file can
be mailed or opened offline. All text from the context is HTML-escaped.

Number formats, the same everywhere: mIoU with 4 decimals (``0.6123``), per-class IoU with 3
decimals (``0.612``), '—' where a score is undefined.
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flairlc.evaluation.report import atomic_write_bytes

#: Name of the report file written by :func:`write_report`.
REPORT_NAME = "report.html"
#: Shown for undefined scores and empty cells.
UNDEFINED = "—"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class ModelResult:
    """The test scores of one trained model.

    Attributes:
        name: display name, e.g. ``"U-Net"``.
        inputs: the modalities it uses, e.g. ``"aerial"`` or ``"aerial + Sentinel-2"``.
        miou: mean IoU in [0, 1] (as in ``evaluation.json``).
        per_class_iou: class name → IoU in [0, 1], None (or NaN) where undefined.
        confusion_png: the row-normalized confusion matrix figure, or None.
        iou_png: the per-class IoU bar chart, or None.
        evaluation_json: the full evaluation file, or None (its path is shown, not embedded).
    """

    name: str
    inputs: str
    miou: float
    per_class_iou: dict[str, float | None] = field(default_factory=dict)
    confusion_png: Path | None = None
    iou_png: Path | None = None
    evaluation_json: Path | None = None


@dataclass
class ReportContext:
    """Everything the demo report shows.

    Attributes:
        title: page title.
        synthetic: True when the numbers come from synthetic data (stated prominently).
        budget_note: the compute budget, e.g. ``"CPU, 2 cores, 3 epochs"``.
        results: one entry per model, in display order.
        figures: caption → PNG, in display order (sample patches, seasonal profiles, map, ...).
        tables: caption → rows (dicts; columns are the union of keys, in first-seen order), shown
            after the figures in display order.
        paper_results: the paper's reported rows ``(model, inputs, mIoU)``, mIoU as a fraction in
            [0, 1] (values above 1 are read as percentages).
        how_to_real: plain text or minimal markdown (paragraphs, ``#`` headings, ``- `` lists,
            fenced code blocks, inline backquotes) on running the pipeline on the real data.
        timings: stage → seconds, in display order.
    """

    title: str = "flairlc demo"
    synthetic: bool = True
    budget_note: str = ""
    results: list[ModelResult] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    paper_results: list[tuple[str, str, float]] = field(default_factory=list)
    how_to_real: str = ""
    timings: dict[str, float] = field(default_factory=dict)


# -- formatting ----------------------------------------------------------------------------------


def _undefined(x: Any) -> bool:
    return x is None or (isinstance(x, numbers.Real) and math.isnan(float(x)))


def format_miou(x: float | None) -> str:
    """mIoU with exactly 4 decimals (``0.6123``), '—' when undefined."""
    return UNDEFINED if _undefined(x) else f"{float(x):.4f}"  # type: ignore[arg-type]


def format_iou(x: float | None) -> str:
    """Per-class IoU with 3 decimals (``0.612``), '—' when undefined."""
    return UNDEFINED if _undefined(x) else f"{float(x):.3f}"  # type: ignore[arg-type]


def format_cell(x: Any) -> str:
    """A generic table value: floats with 2 decimals and thousands separators (3 significant
    digits when that would show 0.00), integers with separators, anything else as text."""
    if _undefined(x):
        return UNDEFINED
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, numbers.Integral):
        return f"{int(x):,}"
    if isinstance(x, numbers.Real):
        x = float(x)
        if x != 0 and abs(x) < 0.005:
            return f"{x:.3g}"
        return f"{x:,.2f}"
    return str(x)


def format_seconds(seconds: float) -> str:
    """``12.3 s`` below a minute, ``4 min 05 s`` above."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _paper_miou(x: float) -> float:
    return x / 100.0 if x > 1.0 else x


# -- HTML pieces ---------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1200px;padding:1rem 2rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
.banner{background:#fff4d6;border:1px solid #e0b84c;border-radius:6px;padding:.7rem 1rem;
margin:1rem 0}
.banner.real{background:#e8f4ea;border-color:#7bb187}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;white-space:nowrap}
thead th{white-space:normal;vertical-align:bottom;max-width:7rem}
th{background:#f3f3f3}td.text,th.text{text-align:left}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9rem;color:#555}
.models{display:flex;flex-wrap:wrap;gap:1rem}.models figure{flex:1 1 420px}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto}code{background:#f6f8fa;padding:0 .2rem}
.missing{color:#a33;font-style:italic}.note{color:#555;font-size:.9rem}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def png_data_uri(path: Path) -> str | None:
    """The PNG at ``path`` as a ``data:image/png;base64,…`` URI, or None if absent or not a PNG."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if not data.startswith(_PNG_SIGNATURE):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(path: Path | None, caption: str) -> str:
    uri = png_data_uri(path) if path is not None else None
    if uri is None:
        where = f" ({_e(path)})" if path is not None else ""
        return f'<p class="missing">{_e(caption)}: figure not available{where}.</p>'
    return (
        f'<figure><img src="{uri}" alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], text_cols: int = 1) -> str:
    """An HTML table from already-escaped cell HTML; the first ``text_cols`` columns left-aligned."""

    def attr(i: int) -> str:
        return ' class="text"' if i < text_cols else ""

    head = "".join(f"<th{attr(i)}>{h}</th>" for i, h in enumerate(header))
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if cell.startswith("<td"):
                cells.append(cell)
            else:
                cells.append(f"<td{attr(i)}>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _bold_best(texts: list[str], values: list[float | None]) -> list[str]:
    """Bold every cell whose displayed value equals the best displayed value of the column."""
    shown = [float(t) for t, v in zip(texts, values) if not _undefined(v)]
    if not shown:
        return texts
    best = max(shown)
    return [
        f"<strong>{t}</strong>" if not _undefined(v) and float(t) == best else t
        for t, v in zip(texts, values)
    ]


def results_table_html(results: Sequence[ModelResult]) -> str:
    """The side-by-side results table: model, inputs, mIoU, one IoU column per class.

    The best value of each score column is bold; each mIoU cell is
    ``<td data-model="{name}" class="miou">0.6123</td>``.
    """
    class_names = _class_columns(results)
    mious = [r.miou for r in results]
    miou_text = _bold_best([format_miou(v) for v in mious], mious)
    columns = []
    for name in class_names:
        values = [r.per_class_iou.get(name) for r in results]
        columns.append(_bold_best([format_iou(v) for v in values], values))
    rows = []
    for i, r in enumerate(results):
        row = [
            _e(r.name),
            _e(r.inputs),
            f'<td data-model="{_e(r.name)}" class="miou">{miou_text[i]}</td>',
        ]
        rows.append(row + [col[i] for col in columns])
    header = ["model", "inputs", "mIoU"] + [_e(n) for n in class_names]
    return _table(header, rows, text_cols=2)


def _class_columns(results: Sequence[ModelResult]) -> list[str]:
    names: dict[str, None] = {}
    for r in results:
        names.update(dict.fromkeys(r.per_class_iou))
    return list(names)


def _rows_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return f'<p class="note">{UNDEFINED} (no rows)</p>'
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    body = [[_e(format_cell(row.get(c))) for c in columns] for row in rows]
    return _table([_e(c) for c in columns], body, text_cols=1)


def markdown_to_html(text: str) -> str:
    """Minimal, safe markdown: ``#``/``##`` headings, paragraphs, ``- `` lists, fenced code
    blocks and inline backquoted code. Everything is escaped first; no raw HTML passes through."""
    out: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    code: list[str] | None = None

    def inline(s: str) -> str:
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(s))

    def flush() -> None:
        if paragraph:
            out.append("<p>" + " ".join(inline(p) for p in paragraph) + "</p>")
            paragraph.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if code is not None:
            if stripped.startswith("```"):
                out.append("<pre><code>" + _e("\n".join(code)) + "</code></pre>")
                code = None
            else:
                code.append(line)
        elif stripped.startswith("```"):
            flush()
            code = []
        elif not stripped:
            flush()
        elif stripped.startswith("#"):
            flush()
            level = min(len(stripped) - len(stripped.lstrip("#")), 2)
            out.append(f"<h{level + 2}>{inline(stripped.lstrip('#').strip())}</h{level + 2}>")
        elif stripped.startswith(("- ", "* ")):
            if paragraph:
                flush()
            items.append(stripped[2:])
        else:
            if items:
                flush()
            paragraph.append(stripped)
    if code is not None:
        out.append("<pre><code>" + _e("\n".join(code)) + "</code></pre>")
    flush()
    return "\n".join(out)


# -- the report ----------------------------------------------------------------------------------


def render_report(context: ReportContext) -> str:
    """The report as one HTML string (see :func:`write_report`)."""
    c = context
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(c.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(c.title)}</h1>",
    ]
    if c.synthetic:
        parts.append(
            '<div class="banner"><strong>These numbers come from SYNTHETIC data</strong> and a '
            f"small compute budget ({_e(c.budget_note or 'CPU')}). They show that the pipeline "
            "runs end to end; they say nothing about accuracy on the real FLAIR data. Compare "
            "with the paper's numbers below only as a reference point.</div>"
        )
    else:
        parts.append(
            '<div class="banner real">Numbers from the FLAIR data'
            f"{' (' + _e(c.budget_note) + ')' if c.budget_note else ''}.</div>"
        )

    parts.append("<h2>Results</h2>")
    if c.results:
        parts.append(results_table_html(c.results))
        parts.append(
            f"<p class=\"note\">mIoU over the classes other than 'other'; IoU per class; best "
            f"value of each column in bold; {UNDEFINED}: undefined (class absent from truth and "
            "prediction).</p>"
        )
        jsons = [(r.name, r.evaluation_json) for r in c.results if r.evaluation_json is not None]
        if jsons:
            parts.append(
                '<p class="note">Full scores: '
                + "; ".join(f"{_e(name)}: <code>{_e(path)}</code>" for name, path in jsons)
                + "</p>"
            )
    else:
        parts.append('<p class="missing">No model results.</p>')

    if c.paper_results:
        parts.append("<h2>Reported in the FLAIR #2 paper (real data, for reference)</h2>")
        rows = [[_e(m), _e(i), format_miou(_paper_miou(v))] for m, i, v in c.paper_results]
        parts.append(_table(["model", "inputs", "mIoU"], rows, text_cols=2))

    if any(r.confusion_png or r.iou_png for r in c.results):
        parts.append("<h2>Per model: confusion matrix and IoU per class</h2>")
        for r in c.results:
            parts.append(f'<h3>{_e(r.name)} <span class="note">({_e(r.inputs)})</span></h3>')
            parts.append('<div class="models">')
            parts.append(_figure(r.confusion_png, f"{r.name}: confusion matrix (row-normalized)"))
            parts.append(_figure(r.iou_png, f"{r.name}: IoU per class"))
            parts.append("</div>")

    for caption, path in c.figures.items():
        parts.append(f"<h2>{_e(caption)}</h2>")
        parts.append(_figure(path, caption))

    for caption, rows in c.tables.items():
        parts.append(f"<h2>{_e(caption)}</h2>")
        parts.append(_rows_table(rows))

    if c.timings:
        parts.append("<h2>Timings</h2>")
        rows = [[_e(stage), _e(format_seconds(s))] for stage, s in c.timings.items()]
        rows.append(
            [
                "<strong>total</strong>",
                f"<strong>{_e(format_seconds(sum(c.timings.values())))}</strong>",
            ]
        )
        parts.append(_table(["stage", "time"], rows, text_cols=1))

    if c.how_to_real:
        parts.append("<h2>Run it on the real FLAIR data</h2>")
        parts.append(markdown_to_html(c.how_to_real))

    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(out_dir: Path, context: ReportContext) -> Path:
    """Write ``out_dir/report.html`` atomically: one self-contained HTML file.

    Sections: a header stating the data (synthetic or real) and the compute budget; the
    side-by-side results table (model, inputs, mIoU, IoU per class, best in bold); the paper's
    numbers; each model's confusion matrix and IoU bars; the figures, then the tables, in the
    context's order; timings; how to run on the real data. Missing or non-PNG figure files are
    reported in place, not raised.

    Returns:
        The path of ``report.html``.
    """
    return atomic_write_bytes(Path(out_dir) / REPORT_NAME, render_report(context).encode("utf-8"))


def terminal_table(results: Sequence[ModelResult], width: int = 100) -> str:
    """The results as plain text for the terminal (rich, no colour codes).

    One column per model, so it fits a terminal whatever the number of classes: rows are the
    inputs, the mIoU (4 decimals), then each class's IoU (3 decimals, '—' where undefined).
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("", no_wrap=True)
    for r in results:
        table.add_column(r.name, justify="right")
    table.add_row("inputs", *(r.inputs for r in results))
    table.add_row("mIoU", *(format_miou(r.miou) for r in results), end_section=True)
    for name in _class_columns(results):
        table.add_row(name, *(format_iou(r.per_class_iou.get(name)) for r in results))
    console = Console(
        file=io.StringIO(), width=width, color_system=None, force_terminal=False, highlight=False
    )
    console.print(table)
    return console.file.getvalue().rstrip() + "\n"  # type: ignore[attr-defined]
