"""docs/tutorial.md, followed literally: its code blocks are the steps, so the docs and the tests cannot drift.

Every fenced block of the tutorial is preceded by a marker comment that says what a reader does with it::

    <!-- tutorial: run -->                  run the commands (before the server starts, in order)
    <!-- tutorial: write PATH -->           create or replace the file PATH with the block
    <!-- tutorial: append PATH -->          add the block at the end of PATH
    <!-- tutorial: server -->               the command that serves the site (a real process here)
    <!-- tutorial: run NAME -->             commands the test runs when it reaches that point of the story
    <!-- tutorial: background NAME -->      a long-running command, started and read by the test
    <!-- tutorial: output NAME -->          what the background command NAME printed, checked line by line

A ``sh`` block is one command per line. A ``console`` block has ``$ command`` lines, ``>>>`` lines typed into
the command before it (fed on its standard input, as a reader types them into ``manage.py shell``), and the
command's expected output (each line must appear, in order; ``...`` stands for lines left out).

What the test does differently from a reader, and nothing else:

- the folder is a temporary directory, and ``python3 -m venv`` / ``source .venv/bin/activate`` stand for the
  test's own environment (its interpreter's ``bin`` comes first on ``PATH``), where ``pip install`` must find
  every package the tutorial names installed, django-broadcasting from this checkout;
- the port is a free one instead of 8000 (``8000`` in commands and files becomes that port, and the server
  command gets ``127.0.0.1:<port>``);
- ``PYTHONUNBUFFERED=1``, so that a program's lines reach the test as they would reach a terminal, at once,
  and ``TMPDIR`` is a folder of the test's, where the server leaves the address local publishers look up.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import REPO_ROOT, free_port, port_open, wait_for

TUTORIAL = REPO_ROOT / "docs" / "tutorial.md"
TUTORIAL_PORT = "8000"
ACTIONS = {"run", "write", "append", "server", "background", "output"}
# Setup actions: everything before the server, in document order.
SETUP_ACTIONS = {"run", "write", "append"}

MARKER = re.compile(r"<!--\s*tutorial:\s*(\w+)(?:\s+(\S+))?\s*-->")
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
# The variables that configure Django or django-broadcasting: a fresh project starts without any.
_CONFIG_ENV_PREFIXES = ("BROADCAST_", "JWT_", "PUSHER_", "DJANGO_")
_CONFIG_ENV_NAMES = {"CORS_ALLOWED_ORIGINS", "DATABASE_PATH", "PYTHONPATH", "VIRTUAL_ENV"}


class TutorialError(AssertionError):
    """A step of the tutorial did not do what the tutorial says."""


@dataclass
class Block:
    """One fenced code block with its marker."""

    action: str
    arg: str | None
    lang: str
    text: str
    line: int  # where the fence starts in docs/tutorial.md (1-based)
    prose: str  # the text between the previous block and this one

    def where(self) -> str:
        return f"docs/tutorial.md:{self.line} ({self.action}{' ' + self.arg if self.arg else ''})"


def parse(markdown: str) -> list[Block]:
    """The tutorial's blocks in order; every fence must carry a marker, every marker a fence."""
    blocks: list[Block] = []
    position = 0
    for fence in FENCE.finditer(markdown):
        before = markdown[position : fence.start()]
        line = markdown.count("\n", 0, fence.start()) + 1
        markers = list(MARKER.finditer(before))
        if not markers or before[markers[-1].end() :].strip():
            raise TutorialError(
                f"docs/tutorial.md:{line}: a code block without a '<!-- tutorial: ... -->' marker"
            )
        if len(markers) > 1:
            raise TutorialError(f"docs/tutorial.md:{line}: two markers before one code block")
        action, arg = markers[-1].group(1), markers[-1].group(2)
        if action not in ACTIONS:
            raise TutorialError(f"docs/tutorial.md:{line}: unknown tutorial action {action!r}")
        if action in {"write", "append", "background", "output"} and not arg:
            raise TutorialError(f"docs/tutorial.md:{line}: '{action}' needs a name")
        prose = before[: markers[-1].start()]
        if action in {"write", "append"} and f"`{arg}`" not in prose:
            # What the reader sees must name the file the test writes.
            raise TutorialError(f"docs/tutorial.md:{line}: the text before the block does not name `{arg}`")
        blocks.append(Block(action, arg, fence.group(1), fence.group(2), line, prose))
        position = fence.end()
    if MARKER.search(markdown[position:]):
        raise TutorialError("docs/tutorial.md: a marker after the last code block")
    return blocks


@dataclass
class Command:
    """One command of a block: what to run, what to type into it, what it must print."""

    line: str
    stdin: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)


def commands(block: Block) -> list[Command]:
    """The commands of an ``sh`` or ``console`` block."""
    if block.lang == "sh":
        return [
            Command(line)
            for line in (raw.strip() for raw in block.text.splitlines())
            if line and not line.startswith("#")
        ]
    if block.lang != "console":
        raise TutorialError(
            f"{block.where()}: commands must be in an sh or console block, not {block.lang!r}"
        )
    result: list[Command] = []
    for raw in block.text.splitlines():
        if raw.startswith("$ "):
            result.append(Command(raw[2:].strip()))
        elif not result:
            raise TutorialError(f"{block.where()}: output before the first '$ ' command")
        elif raw.startswith((">>> ", "... ")) or raw in (">>>", "..."):
            result[-1].stdin.append(raw[4:])
        elif raw.strip():
            result[-1].expected.append(raw)
    return result


def _normalise(line: str) -> str:
    return " ".join(line.split())


def assert_lines_in_order(expected: list[str], actual: str, what: str) -> None:
    """Each expected line (whitespace-normalised) appears in ``actual``, in order; ``...`` skips lines."""
    lines = [_normalise(line) for line in actual.splitlines()]
    index = 0
    for want in expected:
        want = _normalise(want)
        if want in ("...", "…"):
            continue
        try:
            index = lines.index(want, index) + 1
        except ValueError:
            raise TutorialError(f"{what}: expected the line {want!r}, in this order, in:\n{actual}") from None


def tutorial_env(python: str = sys.executable) -> dict[str, str]:
    """A shell of someone who activated the virtual environment: its ``bin`` first, no project settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_CONFIG_ENV_PREFIXES) and key not in _CONFIG_ENV_NAMES
    }
    bindir = str(Path(python).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(Path(bindir).parent)
    # A terminal shows a program's lines as it prints them; through a pipe Python would buffer them.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _requirement_name(spec: str) -> str:
    return re.split(r"[\[<>=!~;\s]", spec, maxsplit=1)[0]


class Background:
    """A long-running command of the tutorial, its output collected as it comes."""

    def __init__(self, argv: str, cwd: Path, env: dict[str, str], log_path: Path) -> None:
        self.command = argv
        self.log_path = log_path
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {argv}"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with open(self.log_path, "a") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                with self._lock:
                    self._lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def wait_for_line(self, line: str, timeout: float = 20) -> None:
        """Wait until the command printed ``line`` (or fail, with what it printed)."""
        try:
            wait_for(
                lambda: (
                    _normalise(line) in {_normalise(x) for x in self.output.splitlines()}
                    or self.process.poll() is not None
                ),
                timeout,
                message=f"{self.command!r} to print {line!r}",
            )
        except TimeoutError as exc:
            raise TutorialError(f"{exc}; it printed:\n{self.output}") from None
        if _normalise(line) not in {_normalise(x) for x in self.output.splitlines()}:
            raise TutorialError(
                f"{self.command!r} exited {self.process.returncode}; it printed:\n{self.output}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGINT)  # Ctrl-C, as the tutorial says
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        _signal_group(self.process.pid, signal.SIGKILL)
        self._reader.join(5)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Tutorial:
    """A reader following docs/tutorial.md in ``workdir``, with the test's Python environment.

    ``setup()`` runs every step before the server; ``start_server()`` serves the site on a free port;
    ``write(path)``, ``run(name)``, ``start(name)`` and ``expected_output(name)`` follow the steps after it.
    """

    def __init__(self, workdir: Path, *, python: str = sys.executable, markdown: str | None = None) -> None:
        self.workdir = workdir
        self.cwd = workdir
        self.python = python
        self.env = tutorial_env(python)
        # The server records its address for local publishers in the temporary directory: this run's own.
        tmpdir = workdir / "tmp"
        tmpdir.mkdir(exist_ok=True)
        self.env["TMPDIR"] = str(tmpdir)
        self.port = free_port()
        self.blocks = parse(markdown if markdown is not None else TUTORIAL.read_text())
        self.used: set[int] = set()
        self.notes: list[str] = []  # what the test did in place of a reader's step
        self.server: Background | None = None
        self.background: dict[str, Background] = {}
        server_at = [i for i, block in enumerate(self.blocks) if block.action == "server"]
        if len(server_at) != 1:
            raise TutorialError(
                f"docs/tutorial.md: expected exactly one server block, found {len(server_at)}"
            )
        self.server_index = server_at[0]
        for block in self.blocks[: self.server_index]:
            if block.action not in SETUP_ACTIONS or (block.action == "run" and block.arg):
                raise TutorialError(f"{block.where()}: before the server, only unnamed steps")
        for block in self.blocks[self.server_index + 1 :]:
            if block.action in {"run", "background", "output"} and not block.arg:
                raise TutorialError(f"{block.where()}: a step after the server needs a name")

    # -- addresses ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def substitute(self, text: str) -> str:
        """The tutorial's port 8000 becomes the test's free port."""
        return re.sub(rf"\b{TUTORIAL_PORT}\b", str(self.port), text)

    # -- blocks -------------------------------------------------------------------------
    def _block(self, action: str, name: str) -> tuple[int, Block]:
        for index, block in enumerate(self.blocks):
            if block.action == action and block.arg == name:
                return index, block
        raise TutorialError(f"docs/tutorial.md has no '<!-- tutorial: {action} {name} -->' block")

    def unused(self) -> list[str]:
        return [block.where() for i, block in enumerate(self.blocks) if i not in self.used]

    def assert_all_followed(self) -> None:
        missing = self.unused()
        if missing:
            raise TutorialError(f"steps of the tutorial the test never followed: {missing}")

    # -- steps --------------------------------------------------------------------------
    def setup(self) -> None:
        """Every step before the server, in order: commands run, files written."""
        for index, block in enumerate(self.blocks[: self.server_index]):
            self._follow(block)
            self.used.add(index)

    def _follow(self, block: Block) -> None:
        if block.action == "write":
            path = self._path(block)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.substitute(block.text))
        elif block.action == "append":
            path = self._path(block)
            if not path.exists():
                raise TutorialError(f"{block.where()}: {block.arg} does not exist yet, nothing to append to")
            with path.open("a") as handle:
                handle.write("\n" + self.substitute(block.text))
        elif block.action == "run":
            for command in commands(block):
                self._run(block, command)
        else:  # pragma: no cover - parse() and the constructor rule this out
            raise TutorialError(f"{block.where()}: cannot follow {block.action!r} here")

    def _path(self, block: Block) -> Path:
        assert block.arg is not None
        path = (self.cwd / block.arg).resolve()
        if self.workdir.resolve() not in path.parents:
            raise TutorialError(f"{block.where()}: {block.arg} is outside the project")
        return path

    def _run(self, block: Block, command: Command) -> str:
        words = shlex.split(command.line)
        if words[:1] == ["cd"] and len(words) == 2:
            self.cwd = (self.cwd / words[1]).resolve()
            if not self.cwd.is_dir():
                raise TutorialError(f"{block.where()}: cd {words[1]}: no such folder")
            return ""
        if words[:3] == ["python3", "-m", "venv"] or words[:2] in (["source", ".venv/bin/activate"],):
            self.notes.append(
                f"{command.line!r}: the test's environment ({self.env['VIRTUAL_ENV']}) stands in"
            )
            return ""
        if words[:2] == ["pip", "install"]:
            self._check_installed(block, words[2:])
            return ""
        stdin_path = None
        if command.stdin:
            fd, stdin_path = tempfile.mkstemp(prefix="tutorial-stdin-", suffix=".py", dir=self.workdir)
            with os.fdopen(fd, "w") as handle:
                handle.write(self.substitute("\n".join(command.stdin)) + "\n")
        try:
            with open(stdin_path or os.devnull) as stdin:
                result = subprocess.run(
                    ["bash", "-c", self.substitute(command.line)],
                    cwd=self.cwd,
                    env=self.env,
                    stdin=stdin,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
        finally:
            if stdin_path:
                os.unlink(stdin_path)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise TutorialError(f"{block.where()}: {command.line!r} exited {result.returncode}:\n{output}")
        assert_lines_in_order(command.expected, output, f"{block.where()}: {command.line!r}")
        return output

    def _check_installed(self, block: Block, requirements: list[str]) -> None:
        """``pip install`` in the tutorial: the test's environment must already hold each package."""
        for spec in requirements:
            if spec.startswith("-"):
                raise TutorialError(f"{block.where()}: pip option {spec!r} is not understood by the test")
            name = _requirement_name(spec)
            code = (
                "import importlib.metadata as m, sys\n"
                f"d = m.distribution({name!r})\n"
                "print(d.metadata['Name'])\n"
            )
            if name == "django-broadcasting":
                code += "import django_broadcasting; print(django_broadcasting.__file__)\n"
            result = subprocess.run(
                [self.python, "-c", code],
                env=self.env,
                cwd=self.cwd,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if result.returncode != 0:
                raise TutorialError(
                    f"{block.where()}: 'pip install {spec}': the package is not installed in the test's "
                    f"environment ({self.python}):\n{result.stderr}"
                )
            if name == "django-broadcasting":
                location = Path(result.stdout.splitlines()[-1]).resolve()
                if REPO_ROOT.resolve() not in location.parents:
                    raise TutorialError(
                        f"django_broadcasting is imported from {location}, not from this checkout ({REPO_ROOT})"
                    )
        self.notes.append(f"pip install {' '.join(requirements)}: installed in the test's environment")

    def write(self, path: str) -> Path:
        """Write the file of the ``write PATH`` step that comes after the server."""
        index, block = self._block("write", path)
        if index < self.server_index:
            raise TutorialError(f"{block.where()}: written by setup() already")
        self.used.add(index)
        self._follow(block)
        return self._path(block)

    def run(self, name: str) -> str:
        """Run the named ``run`` step; return what its commands printed."""
        index, block = self._block("run", name)
        self.used.add(index)
        return "\n".join(self._run(block, command) for command in commands(block))

    def start_server(self, startup_timeout: float = 60) -> Background:
        """The tutorial's server command, on the test's port; returns once the port accepts connections.

        Only the port: no request is made, so a step run right after this one sees the server as a reader
        does who has not opened a page yet.
        """
        block = self.blocks[self.server_index]
        self.used.add(self.server_index)
        (command,) = commands(block)
        line = self.substitute(command.line)
        if line.split()[-1] == "runserver":
            line += f" 127.0.0.1:{self.port}"
        self.server = Background(line, self.cwd, self.env, self.workdir / "server.log")
        deadline = time.monotonic() + startup_timeout
        while not port_open("127.0.0.1", self.port):
            if self.server.process.poll() is not None:
                raise TutorialError(
                    f"the server exited {self.server.process.returncode}:\n{self.server.output}"
                )
            if time.monotonic() > deadline:
                raise TutorialError(
                    f"the server did not listen within {startup_timeout}s:\n{self.server.output}"
                )
            time.sleep(0.1)
        return self.server

    def start(self, name: str) -> Background:
        """Start the named ``background`` step (stopped by ``stop()``)."""
        index, block = self._block("background", name)
        self.used.add(index)
        (command,) = commands(block)
        process = Background(self.substitute(command.line), self.cwd, self.env, self.workdir / f"{name}.log")
        self.background[name] = process
        return process

    def expected_output(self, name: str) -> list[str]:
        """The lines the tutorial says the background step ``name`` printed."""
        index, block = self._block("output", name)
        self.used.add(index)
        return [line for line in block.text.splitlines() if line.strip()]

    def logs(self) -> Iterator[str]:
        if self.server is not None:
            yield f"--- server ({self.server.command}) ---\n{self.server.output}"
        for name, process in self.background.items():
            yield f"--- {name} ({process.command}) ---\n{process.output}"

    def stop(self) -> None:
        """Stop every process the tutorial started (Ctrl-C, then SIGKILL)."""
        for process in self.background.values():
            process.stop()
        if self.server is not None:
            self.server.stop()


@contextmanager
def served_tutorial(workdir: Path) -> Iterator[Tutorial]:
    """The tutorial's project in ``workdir``, set up as the tutorial says, with its server running.

    Everything it started stops afterwards; the server's and background commands' output is printed,
    which pytest shows when a test using it fails.
    """
    tutorial = Tutorial(workdir)
    try:
        tutorial.setup()
        tutorial.start_server()
        yield tutorial
    finally:
        tutorial.stop()
        print(*tutorial.logs(), sep="\n")
