"""Markdown tables: read the ones a benchmark script prints, and render gpu_check's own."""

from __future__ import annotations

import math
import re


def parse_tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table in ``text``, each as a list of rows mapping the header's column names to the cells."""
    tables: list[list[dict[str, str]]] = []
    lines = [line.strip() for line in text.splitlines()]
    i = 0
    while i < len(lines) - 1:
        is_header = lines[i].startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1])
        if not is_header:
            i += 1
            continue
        header = _cells(lines[i])
        rows = []
        i += 2
        while i < len(lines) and lines[i].startswith("|"):
            cells = _cells(lines[i])
            rows.append(dict(zip(header, cells + [""] * (len(header) - len(cells)))))
            i += 1
        tables.append(rows)
    return tables


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def find_table(tables: list[list[dict[str, str]]], *columns: str) -> list[dict[str, str]]:
    """The first table that has all of ``columns`` (KeyError naming them when none has)."""
    for rows in tables:
        if rows and all(column in rows[0] for column in columns):
            return rows
    raise KeyError(f"no table with the columns {list(columns)} in the output")


def number(cell: str) -> float:
    """The number in a cell such as ``'1.87x'``, ``'3.0e-08'`` or ``'12.5'`` (NaN when the cell has none)."""
    match = re.search(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf", cell)
    return float(match.group()) if match else math.nan


def escape(text: str) -> str:
    """``text`` made safe for one markdown table cell (no pipes, no line breaks)."""
    return " ".join(str(text).replace("|", "\\|").split())


def render_table(rows: list[tuple[str, str, str, str]]) -> str:
    """The ``| check | result | numbers | pass/fail |`` table."""
    lines = ["| check | result | numbers | pass/fail |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
