"""CSV exports: one streaming response, one guard against formula injection.

A spreadsheet program runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula,
and a leading tab or carriage return hides such a start from a naive check; a formula can leak
the sheet's contents or start a program. OWASP's rule is applied to every text cell: one that
starts with any of those characters gets a single quote in front, which the spreadsheet shows
as text. Numbers are written as numbers (a negative count is not a formula).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from decimal import Decimal

from django.http import StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_safe(value: object) -> object:
    """``value`` as it may go into a cell: numbers as they are, text quoted if it could run."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    if isinstance(value, int | float | Decimal):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose ``write`` returns the line, so csv.writer can feed a stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(*, header: list[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The CSV text line by line: the header, then every row with each cell made safe."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([csv_cell_safe(cell) for cell in row])


def csv_response(
    *, filename: str, header: list[str], rows: Iterable[Iterable[object]]
) -> StreamingHttpResponse:
    """A streamed CSV download (rows are read as they are sent, so an export of any size fits in
    memory), never cached by the browser or a proxy."""
    response = StreamingHttpResponse(
        csv_lines(header=header, rows=rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
