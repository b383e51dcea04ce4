"""The package builds a wheel that carries everything a user's project needs at run time.

The wheel is built from a copy of the source tree (setup.cfg, pyproject.toml, MANIFEST.in,
README.md, django_broadcasting/) so the build never writes into the working tree.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import django_broadcasting

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "django_broadcasting"
BUILD_FILES = ("setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".DS_Store")
#: What the wheel build printed (setuptools' warnings go to pip's output).
BUILD_OUTPUT: dict[str, str] = {}


def _can_build_offline() -> bool:
    # Without isolation the venv's setuptools builds the wheel: it needs bdist_wheel (setuptools >= 70.1
    # has it built in, older ones need the `wheel` package).
    if importlib.util.find_spec("setuptools") is None:
        return False
    import setuptools

    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_FILES:
        shutil.copy2(REPO_ROOT / name, src / name)
    shutil.copytree(PACKAGE_DIR, src / "django_broadcasting", ignore=IGNORED)
    out = tmp_path_factory.mktemp("wheelhouse")
    command = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(out)]
    if _can_build_offline():
        command.append("--no-build-isolation")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"wheel build failed:\n{result.stdout}\n{result.stderr}"
    BUILD_OUTPUT["text"] = result.stdout + result.stderr
    wheels = list(out.glob("django_broadcasting-*.whl"))
    assert len(wheels) == 1, f"expected one wheel, found {wheels}"
    archive = zipfile.ZipFile(wheels[0])
    yield archive
    archive.close()


def _names(wheel: zipfile.ZipFile) -> set[str]:
    return set(wheel.namelist())


def _tree_files(*parts: str, pattern: str = "*") -> list[str]:
    root = PACKAGE_DIR.joinpath(*parts)
    if not root.exists():
        return []
    return sorted(
        path.relative_to(REPO_ROOT).as_posix()
        for path in root.rglob(pattern)
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith((".pyc", ".pyo"))
    )


def test_wheel_contains_every_static_and_template_file(wheel):
    names = _names(wheel)
    expected = _tree_files("static") + _tree_files("templates")
    missing = [path for path in expected if path not in names]
    assert not missing, f"files missing from the wheel: {missing}"


def test_wheel_contains_the_javascript_client(wheel):
    path = "django_broadcasting/static/django_broadcasting/broadcasting.js"
    assert (REPO_ROOT / path).is_file(), f"{path} is missing from the source tree"
    assert path in _names(wheel), f"{path} is missing from the wheel"


def test_wheel_contains_every_python_module(wheel):
    # A sub-package without __init__.py would silently be left out of the wheel.
    names = _names(wheel)
    missing = [path for path in _tree_files(pattern="*.py") if path not in names]
    assert not missing, f"modules missing from the wheel (a directory without __init__.py?): {missing}"


def test_wheel_is_typed_and_ships_no_tests_or_example(wheel):
    names = _names(wheel)
    assert "django_broadcasting/py.typed" in names
    assert not any(name.startswith(("tests/", "example_project/", "bench/")) for name in names)


def test_wheel_metadata(wheel):
    metadata_name = next(n for n in _names(wheel) if n.endswith(".dist-info/METADATA"))
    metadata = Parser().parsestr(wheel.read(metadata_name).decode())
    assert metadata["Name"] == "django-broadcasting"
    assert metadata["Version"] == django_broadcasting.__version__
    assert metadata["Requires-Python"] == ">=3.11"
    requires = " ".join(metadata.get_all("Requires-Dist") or [])
    for requirement in ("Django>=5.2", "channels>=4.3", "daphne>=4.2", "PyJWT", "redis", "django-tasks"):
        assert requirement.lower() in requires.lower(), f"{requirement} not in Requires-Dist"
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"dev", "uvicorn"} <= extras
    # Redis support is part of the core requirements: an extra for it would install nothing.
    assert "redis" not in extras


def test_wheel_registers_no_pytest_plugin(wheel):
    """Installing the package must not change other projects' test suites: the plugin is opt-in."""
    entry_points_name = next((n for n in _names(wheel) if n.endswith(".dist-info/entry_points.txt")), None)
    entry_points = wheel.read(entry_points_name).decode() if entry_points_name else ""
    assert "pytest11" not in entry_points


def test_wheel_build_prints_no_setuptools_package_warning(wheel):
    assert "would be ignored" not in BUILD_OUTPUT["text"], BUILD_OUTPUT["text"]
    assert "is absent from the `packages` configuration" not in BUILD_OUTPUT["text"]
