"""``django_broadcasting.asgi`` needs ``DJANGO_SETTINGS_MODULE``: it never guesses another project's settings."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.servers import REPO_ROOT


def _import_asgi(env_settings: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if env_settings:
        env["DJANGO_SETTINGS_MODULE"] = env_settings
    return subprocess.run(
        [sys.executable, "-c", "import django_broadcasting.asgi as a; print(type(a.application).__name__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )


def test_without_settings_module_the_error_names_the_variable():
    result = _import_asgi(None)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: DJANGO_SETTINGS_MODULE is not set")
    assert "example_project" not in result.stderr


def test_with_settings_module_the_application_loads():
    result = _import_asgi("example_project.settings")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "LifespanApp"


def test_the_example_project_has_its_own_asgi_module():
    result = subprocess.run(
        [sys.executable, "-c", "import example_project.asgi as a; print(callable(a.application))"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        | {"PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.stdout.strip() == "True", result.stderr
