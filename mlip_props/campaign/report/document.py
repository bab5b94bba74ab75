"""The report document: headings, paragraphs, tables and images, written as Markdown and as HTML.

Blocks are collected in order with :meth:`Document.heading`, :meth:`~Document.paragraph`,
:meth:`~Document.table` and :meth:`~Document.image`; :meth:`~Document.markdown` and
:meth:`~Document.html` render the same blocks (images by relative path, ``figures/*.png``).
Numbers in tables are formatted by :func:`format_value` (6 significant digits, ``n/a`` for NaN
and infinities) and :func:`format_with_std` (``mean ± std`` for committee values).
"""
from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from .quantities import is_number

__all__ = ["Document", "format_value", "format_with_std"]


def format_value(x: Any) -> str:
    """Table text of a value: ``""`` for None, integers as is, floats with 6 significant digits."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return "n/a" if not math.isfinite(x) else f"{x:.6g}"
    return str(x)


def format_with_std(x: Any, std: Any = None) -> str:
    """``value ± std`` when a committee std is given, else the plain value."""
    return f"{format_value(x)} ± {format_value(std)}" if is_number(std) else format_value(x)


class Document:
    """An ordered list of blocks rendered to Markdown or HTML."""

    def __init__(self) -> None:
        self.blocks: list[tuple] = []

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(("table", headers, rows))

    def image(self, path: str, alt: str) -> None:
        self.blocks.append(("img", path, alt))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})")
            else:
                hdr, rows = b[1], b[2]
                out.append("| " + " | ".join(hdr) + " |")
                out.append("|" + "---|" * len(hdr))
                for r in rows:
                    out.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ") for x in r) + " |")
            out.append("")
        return "\n".join(out)

    def html(self, title: str) -> str:
        out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
               "td,th{border:1px solid #bbb;padding:2px 6px;font-size:90%}img{max-width:560px}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{html.escape(b[1])}</p>")
            elif b[0] == "img":
                out.append(f"<img src='{html.escape(b[1])}' alt='{html.escape(b[2])}'>")
            else:
                out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b[1]) + "</tr>")
                for r in b[2]:
                    out.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>")
                out.append("</table>")
        out.append("</body></html>")
        return "\n".join(out)
