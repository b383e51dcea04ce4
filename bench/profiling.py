"""Sample a server process with py-spy while it fans out, and summarise where its CPU goes.

Used by ``python -m bench --profile``: the samples are taken during S1's broadcast loop at the
largest N, idle time excluded (``--idle`` off), and reduced to the functions with the most
samples on top of the stack ("self") and anywhere in it ("total"). S5 samples with ``gil=True``
(py-spy ``--gil``: only the thread holding the GIL), since its paths hop between threads and a
thread waiting for work would otherwise count as busy.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path


def py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


class Profile:
    """``with Profile(pid) as prof: ...`` then ``prof.summary()``."""

    def __init__(self, pid: int, rate: int = 200, gil: bool = False) -> None:
        self.pid = pid
        self.rate = rate
        self.gil = gil
        fd, self.path = tempfile.mkstemp(prefix="bench-profile-", suffix=".txt")
        os.close(fd)
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Profile:
        exe = py_spy()
        if exe is None:
            return self
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--nonblocking",
                *(["--gil"] if self.gil else []),
                "-o",
                self.path,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def summary(self, top: int = 12) -> str:
        try:
            lines = Path(self.path).read_text().splitlines()
        except OSError:
            return ""
        own: collections.Counter[str] = collections.Counter()
        total: collections.Counter[str] = collections.Counter()
        samples = 0
        for line in lines:
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_short(f) for f in stack.split(";")]
            samples += count
            own[frames[-1]] += count
            for name in set(frames):
                total[name] += count
        if not samples:
            return ""
        rows = ["| Function (self) | self % | total % |", "|---|---|---|"]
        for name, count in own.most_common(top):
            rows.append(f"| `{name}` | {100 * count / samples:.1f} | {100 * total[name] / samples:.1f} |")
        return "\n".join(rows) + f"\n\n({samples} samples)\n"


def _short(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    parts = Path(path).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif "django_broadcasting" in parts:
        parts = parts[parts.index("django_broadcasting") :]
    short = "/".join(parts[-3:]) if parts else where
    return f"{name} ({short})"
