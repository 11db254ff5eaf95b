"""The checks ./sr test runs before the tests (config/checks.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from config import checks


def _module(path: Path, lines: int, header: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"x{n} = {n}" for n in range(lines))
    path.write_text(f'"""A module."""\n\n{header}import os\n\n{body}\n')


def test_it_names_a_long_module_without_a_reason(tmp_path: Path) -> None:
    _module(tmp_path / "app" / "big.py", 30)
    _module(tmp_path / "app" / "small.py", 5)

    assert checks.long_modules_without_reason(tmp_path, limit=20) == ["app/big.py: 34 lines"]


def test_it_accepts_a_long_module_whose_top_says_why(tmp_path: Path) -> None:
    _module(tmp_path / "big.py", 30, header="# long module: one protocol, read in one place.\n")

    assert checks.long_modules_without_reason(tmp_path, limit=20) == []


@pytest.mark.parametrize(
    "header",
    [
        "# long module:\n",  # a mark without a reason
        "",
    ],
)
def test_it_wants_the_reason_itself_at_the_top(tmp_path: Path, header: str) -> None:
    path = tmp_path / "big.py"
    _module(path, 30, header=header)
    # A reason further down, after the code starts, is not at the top.
    path.write_text(path.read_text() + "# long module: too late\n")

    assert [line.split(":")[0] for line in checks.long_modules_without_reason(tmp_path, limit=20)] == [
        "big.py"
    ]


def test_it_skips_what_is_not_ours(tmp_path: Path) -> None:
    for folder in (".venv/lib", "node_modules/x", "app/migrations"):
        _module(tmp_path / folder / "big.py", 30)

    assert checks.long_modules_without_reason(tmp_path, limit=20) == []


def test_a_failure_names_the_command_to_run_locally(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = checks.Check(
        "broken", [sys.executable, "-c", "import sys; sys.exit('it broke')"], env={"A": "b c"}
    )
    passing = checks.Check("fine", [sys.executable, "-c", "pass"])
    monkeypatch.setattr(checks, "checks", lambda: [failing, passing])

    assert checks.run([]) == 1

    out = capsys.readouterr().out
    assert "FAILED broken" in out
    assert "ok     fine" in out
    assert "it broke" in out
    assert f"run it locally:  A='b c' {sys.executable} -c 'import sys; sys.exit(" in out
    assert "rerun only those: ./sr check broken" in out


def test_it_refuses_a_check_it_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    assert checks.run(["nonsense"]) == 2
    assert "unknown check(s): nonsense" in capsys.readouterr().err


def test_the_repository_has_no_long_module_without_a_reason() -> None:
    assert checks.long_modules_without_reason() == []
