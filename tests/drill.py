"""Drill bookkeeping: how big each drill runs (EARLYWARN_DRILL=full for `make drill`) and the rows of its table."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

FULL = os.environ.get("EARLYWARN_DRILL") == "full"


def size(quick: int, full: int) -> int:
    return full if FULL else quick


def record(drill: str, tried: str, result: str, lost: int | str = 0) -> None:
    """One row of the drill table, appended where `make drill` collects them (nothing happens in plain `make test`)."""
    path = os.environ.get("EARLYWARN_DRILL_RESULTS")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"drill": drill, "tried": tried, "result": result, "lost": lost}) + "\n")


def table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = ["| drill | what was tried | result | records lost |", "|---|---|---|---|"]
    lines += [f"| {r['drill']} | {r['tried']} | {r['result']} | {r['lost']} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1])))
