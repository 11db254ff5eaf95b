"""``python -m config.liveness_probe worker|beat``: exit 0 if that process touched its liveness
file recently (config.celery_probes). Kept apart from config.celery_probes, which the package
imports at start-up, so ``-m`` runs a module that was not imported yet."""

from __future__ import annotations

import sys

from config.celery_probes import MAX_AGE, alive


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in MAX_AGE:
        print("usage: python -m config.liveness_probe worker|beat", file=sys.stderr)
        return 2
    if alive(argv[0]):
        return 0
    print(f"{argv[0]}: no sign of life for {MAX_AGE[argv[0]]:.0f} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
