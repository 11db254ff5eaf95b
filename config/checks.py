"""The checks ``./sr test`` runs before the tests (and ``./sr check`` alone): ``python -m config.checks``.

Each check is one command a person can run by hand; a failure prints that command, so whoever
broke it (possibly in code someone else landed) can reproduce it locally. The checks need no
running database or Redis: the settings only need URLs, and nothing connects.

    python -m config.checks              # every check
    python -m config.checks mypy eslint  # only those (names below)
"""

from __future__ import annotations

import ast
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# A module longer than this needs a line starting with LONG_MODULE_MARK near its top saying why
# (a module a person can read in one sitting is ~400 lines; see ARCHITECTURE.md).
MODULE_LINE_LIMIT = 400
LONG_MODULE_MARK = "# long module:"
SKIPPED_FOLDERS = {".venv", ".data", "node_modules", "migrations", "__pycache__", "build", ".git"}

# Settings need URLs to load; nothing connects (port 1 refuses at once, so the migration
# history check of makemigrations gives up immediately instead of waiting on a timeout).
OFFLINE_ENV = {
    "DATABASE_URL": "postgres://checks@127.0.0.1:1/checks",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}
# What SR_MODE=production refuses to start without: dummy but valid values.
PRODUCTION_ENV = {
    "SR_MODE": "production",
    "SECRET_KEY": "checks-only-4c7e1a9b2f6d8e3a5c0b7f9d1e2a4c6b8d0f3e5a7c9b1d",
    "MFA_ENCRYPTION_KEYS": "Y2hlY2tzLW9ubHktbm90LWEtcmVhbC1rZXktMDAwMDA=",
    "PLATFORM_DOMAIN": "secondread.example.com",
    "DEBUG": "false",
}


@dataclass(frozen=True)
class Check:
    name: str
    argv: list[str]  # as a person would type it, from the repository's root
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "."
    python: Callable[[], tuple[bool, str]] | None = None  # a check done here rather than by a command

    def command_line(self) -> str:
        """The command to run locally, environment included."""
        env = " ".join(f"{key}={shlex.quote(value)}" for key, value in self.env.items())
        command = " ".join(shlex.quote(arg) for arg in self.argv)
        if self.cwd != ".":
            command = f"(cd {self.cwd} && {command})"
        return f"{env} {command}".strip()


def _venv(tool: str) -> str:
    return str(Path(".venv/bin") / tool)


def checks() -> list[Check]:
    manage = [_venv("python"), "-W", "ignore::RuntimeWarning", "manage.py"]
    return [
        Check("ruff", [_venv("ruff"), "check", "."]),
        Check("format", [_venv("ruff"), "format", "--check", "."]),
        Check("mypy", [_venv("mypy"), "."], env=dict(OFFLINE_ENV)),
        Check("imports", [_venv("lint-imports")]),
        Check("migrations", [*manage, "makemigrations", "--check", "--dry-run"], env=dict(OFFLINE_ENV)),
        Check(
            "deploy",
            [*manage, "check", "--deploy", "--fail-level", "WARNING"],
            env={**OFFLINE_ENV, **PRODUCTION_ENV},
        ),
        Check("eslint", ["npx", "--no-install", "eslint", "--max-warnings", "0", "src"], cwd="frontend"),
        # Every word patients read is in the catalogue, and the Spanish catalogue is complete.
        Check("translations", [_venv("python"), "-m", "config.translations", "check"], env=dict(OFFLINE_ENV)),
        Check(
            "module-size",
            [_venv("python"), "-m", "config.checks", "module-size"],
            python=module_size_check,
        ),
    ]


def python_modules(root: Path = BASE_DIR) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        if not SKIPPED_FOLDERS.intersection(path.relative_to(root).parts):
            yield path


def _header(source: str) -> list[str]:
    """The module's lines before its first statement after the docstring (its comments on top)."""
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    lines = source.splitlines()
    return lines[: body[0].lineno - 1] if body else lines


def long_modules_without_reason(root: Path = BASE_DIR, limit: int = MODULE_LINE_LIMIT) -> list[str]:
    """Modules over ``limit`` lines with no ``# long module: <why>`` line at their top (before
    the first statement)."""
    found = []
    for path in python_modules(root):
        source = path.read_text(encoding="utf-8")
        length = len(source.splitlines())
        if length <= limit:
            continue
        header = (line.strip() for line in _header(source))
        if not any(line.startswith(LONG_MODULE_MARK) and line != LONG_MODULE_MARK for line in header):
            found.append(f"{path.relative_to(root)}: {length} lines")
    return found


def module_size_check() -> tuple[bool, str]:
    found = long_modules_without_reason()
    if not found:
        return True, ""
    return False, (
        f"Modules over {MODULE_LINE_LIMIT} lines: split them by what they do, or say why one file "
        f"reads better with a '{LONG_MODULE_MARK} <reason>' comment at its top (before the imports).\n"
        + "\n".join(f"  {line}" for line in found)
    )


def _run(check: Check) -> tuple[bool, str, float]:
    started = time.monotonic()
    if check.python is not None:
        ok, output = check.python()
        return ok, output, time.monotonic() - started
    try:
        result = subprocess.run(
            check.argv,
            cwd=BASE_DIR / check.cwd,
            env={**os.environ, **check.env},
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as error:
        return False, f"cannot run it: {error}", time.monotonic() - started
    output = (result.stdout + result.stderr).strip()
    return result.returncode == 0, output, time.monotonic() - started


def run(names: list[str]) -> int:
    every = checks()
    known = {check.name for check in every}
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"unknown check(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    chosen = [check for check in every if not names or check.name in names]
    started = time.monotonic()
    print(f"[checks] {', '.join(check.name for check in chosen)}", flush=True)
    failed: list[tuple[Check, str]] = []
    # Two at a time: the checks are mostly waiting on Python start-up; the machine may be shared.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for check, (ok, output, seconds) in zip(chosen, pool.map(_run, chosen), strict=True):
            print(f"[checks] {'ok    ' if ok else 'FAILED'} {check.name:<12} {seconds:5.1f}s", flush=True)
            if not ok:
                failed.append((check, output))
    for check, output in failed:
        print(f"\n===== {check.name} failed =====\n{output}\n")
        print(f"  run it locally:  {check.command_line()}")
    if failed:
        names_failed = " ".join(check.name for check, _ in failed)
        print(
            f"\n[checks] {len(failed)} of {len(chosen)} failed ({names_failed}); "
            f"rerun only those: ./sr check {names_failed}",
            flush=True,
        )
        return 1
    print(f"[checks] all {len(chosen)} passed in {time.monotonic() - started:.1f}s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["module-size"]:  # the command line printed for that check: run it directly
        ok, output = module_size_check()
        print(output or f"no module over {MODULE_LINE_LIMIT} lines without a reason")
        return 0 if ok else 1
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
