"""Where the CPU goes in one process, from py-spy's raw (collapsed) stacks.

``python -m bench.profile_summary DIR/referrals.txt`` prints three tables: the
share of samples by library of the innermost frame (sqlalchemy, psycopg2, kombu…),
the functions with the most samples anywhere on the stack (inclusive), and the
innermost functions (self). ``bench referrals --profile DIR`` writes the stacks.

Example output::

    samples: 4210
    by library (innermost frame):
      sqlalchemy        31.2%
      psycopg2          12.9%
    ...
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# Innermost frames that are a process waiting, not computing: py-spy counts a process
# that is runnable but not running as busy, and on a loaded machine a process that wakes
# another on a loopback send() is often descheduled right there.
WAITS = frozenset({"_send_loop", "_recv_loop", "socket_connect", "do_poll", "wait", "sleep"})

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def _parts(frame: str) -> tuple[str, str]:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    return match["function"], match["file"]


def library(file: str) -> str:
    """The package a frame's file belongs to: "sqlalchemy", "services/referrals", "<stdlib>/json"…"""
    file = file.replace("\\\\", "/")
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for ours in ("services/", "weintervene/", "gateway/", "bench/", "tests/"):
        if file.startswith(ours) or f"/{ours}" in file:
            rest = file[file.index(ours):].split("/")
            return "/".join(rest[:2]) if ours == "services/" else rest[0]
    return "<stdlib>/" + file.rsplit("/", 1)[-1].removesuffix(".py") if file else "<native>"


def summarise(path: Path, top: int = 25) -> str:
    by_library: Counter = Counter()
    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = waiting = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_parts(f) for f in stack.split(";") if f and not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        function, file = frames[-1]
        if function.rsplit(".", 1)[-1] in WAITS:
            waiting += n
            continue
        total += n
        by_library[library(file)] += n
        own[f"{function} ({file})"] += n
        for key in {f"{fn} ({fl})" for fn, fl in frames}:
            inclusive[key] += n
    if not total:
        return "no samples"
    lines = [f"samples: {total} computing ({waiting} more in socket send/recv/poll, left out)",
             "by library (innermost frame):"]
    lines += [f"  {name:<28} {n / total * 100:5.1f}%" for name, n in by_library.most_common(top)]
    lines.append("inclusive (anywhere on the stack):")
    lines += [f"  {n / total * 100:5.1f}%  {name}" for name, n in inclusive.most_common(top * 2)]
    lines.append("self (innermost frame):")
    lines += [f"  {n / total * 100:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1])))
