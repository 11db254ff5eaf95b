"""The one CSV helper every export uses: cells that a spreadsheet would run are made text."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from exports.csv import csv_cell_safe, csv_lines, csv_response


@pytest.mark.parametrize(
    "cell",
    ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"],
)
def test_it_quotes_text_a_spreadsheet_would_run(cell: str) -> None:
    assert csv_cell_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["MRN 12", "a=b", "case-12", " =1", "", "100.00"])
def test_it_leaves_ordinary_text_alone(cell: str) -> None:
    assert csv_cell_safe(cell) == cell


def test_it_writes_numbers_as_numbers_and_nothing_as_empty() -> None:
    assert csv_cell_safe(-3) == -3
    assert csv_cell_safe(Decimal("-1.50")) == Decimal("-1.50")
    assert csv_cell_safe(None) == ""
    assert csv_cell_safe(True) == "True"


def test_it_guards_every_row_but_not_the_header() -> None:
    text = "".join(csv_lines(header=["a", "b"], rows=[["=cmd|' /C calc'!A0", 7], [{"k": "-v"}, "ok"]]))
    assert list(csv.reader(io.StringIO(text))) == [
        ["a", "b"],
        ["'=cmd|' /C calc'!A0", "7"],
        ["{'k': '-v'}", "ok"],
    ]


def test_it_streams_a_download_nobody_caches() -> None:
    response = csv_response(filename="x.csv", header=["h"], rows=iter([["-1"]]))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'
    assert response["Cache-Control"] == "private, no-store"
    assert response.getvalue().decode() == "h\r\n'-1\r\n"
