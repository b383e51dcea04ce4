"""The driver registry and the log, null and memory drivers; custom drivers."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_broadcasting.drivers import BaseDriver, drivers, get_driver, memory
from django_broadcasting.drivers import log as log_driver
from django_broadcasting.drivers.log import LogDriver, format_message
from django_broadcasting.drivers.memory import MemoryDriver
from django_broadcasting.drivers.null import NullDriver
from django_broadcasting.exceptions import InvalidDriver
from django_broadcasting.messages import Message

LOG = "django_broadcasting.drivers.log.LogDriver"


class RecordingDriver(BaseDriver):
    """A custom driver as a user would write it (referenced by dotted path below)."""

    name = "recording"
    sent: list = []

    async def abroadcast(self, messages):
        RecordingDriver.sent.extend(messages)


class NotADriver:
    pass


@pytest.fixture(autouse=True)
def _clean_registry():
    drivers.reset()
    yield
    drivers.reset()
    log_driver.detach_handlers()


def test_builtin_aliases_resolve_to_their_classes(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}
    assert isinstance(get_driver(), MemoryDriver)
    assert isinstance(get_driver("null"), NullDriver)
    assert isinstance(get_driver("log"), LogDriver)
    assert [get_driver(a).driver_name() for a in ("memory", "null", "log")] == ["memory", "null", "log"]


def test_instances_are_cached_per_alias_and_reset_on_settings_change(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}
    first = get_driver("memory")
    assert get_driver("memory") is first
    settings.BROADCASTING = {"DEFAULT_DRIVER": "null"}
    assert get_driver("memory") is not first


def test_unknown_alias_is_invalid_driver(settings):
    settings.BROADCASTING = {}
    with pytest.raises(InvalidDriver, match="nope") as info:
        get_driver("nope")
    assert isinstance(info.value, ImproperlyConfigured)


def test_unknown_default_driver_is_invalid_driver(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "missing"}
    with pytest.raises(InvalidDriver, match="missing"):
        get_driver()


def test_unimportable_backend_is_invalid_driver(settings):
    settings.BROADCASTING = {"DRIVERS": {"bad": {"BACKEND": "no.such.module.Driver"}}}
    with pytest.raises(InvalidDriver, match="no.such.module"):
        get_driver("bad")


def test_backend_that_is_not_a_driver_is_invalid(settings):
    settings.BROADCASTING = {"DRIVERS": {"bad": {"BACKEND": f"{__name__}.NotADriver"}}}
    with pytest.raises(InvalidDriver, match="not a BaseDriver"):
        get_driver("bad")


def test_custom_driver_by_dotted_path_with_options(settings):
    settings.BROADCASTING = {
        "DEFAULT_DRIVER": "rec",
        "DRIVERS": {"rec": {"BACKEND": f"{__name__}.RecordingDriver", "OPTIONS": {"x": 1}}},
    }
    driver = get_driver()
    assert isinstance(driver, RecordingDriver) and driver.alias == "rec" and driver.options == {"x": 1}
    RecordingDriver.sent.clear()
    message = Message("general", "e", {})
    driver.broadcast([message])  # the sync shim
    driver.broadcast_private([message])
    assert RecordingDriver.sent == [message, message]


def test_set_returns_the_previous_driver_and_none_removes(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}
    original = get_driver("memory")
    replacement = NullDriver("memory")
    assert drivers.set("memory", replacement) is original
    assert get_driver("memory") is replacement
    assert drivers.set("memory", None) is replacement
    assert get_driver("memory") is not replacement


def test_base_driver_requires_abroadcast():
    with pytest.raises(NotImplementedError):
        BaseDriver("x").broadcast([Message("general", "e")])


def test_memory_driver_appends_to_the_outbox():
    driver = MemoryDriver("memory")
    messages = Message.for_channels(["a", "b"], "e", {"n": 1})
    driver.broadcast(messages)
    assert memory.outbox == messages
    assert driver.messages == messages
    outbox = memory.outbox
    memory.reset_outbox()
    assert outbox == [] and memory.outbox is outbox  # emptied in place


def test_null_driver_discards():
    NullDriver("null").broadcast([Message("general", "e")])  # no error, nothing recorded
    assert memory.outbox == []


def test_log_driver_writes_one_readable_line_per_message(caplog):
    driver = LogDriver("log", {"stream": False})
    with caplog.at_level(logging.INFO, logger="django_broadcasting.log"):
        driver.broadcast(Message.for_channels(["a", "b"], "announcement", {"text": "hi"}))
    lines = [r.getMessage() for r in caplog.records if r.name == "django_broadcasting.log"]
    assert lines == [
        'Broadcasting [announcement] on channel [a] with payload: {"text":"hi"}',
        'Broadcasting [announcement] on channel [b] with payload: {"text":"hi"}',
    ]


def test_log_line_mentions_an_excluded_socket():
    line = format_message(Message("a", "e", {}, socket_id="1.2"))
    assert line.endswith("(except socket 1.2)")


def test_log_driver_file_option(tmp_path):
    path = tmp_path / "broadcast.log"
    driver = LogDriver("log", {"stream": False, "file": str(path)})
    driver.broadcast([Message("general", "announcement", {"n": 1})])
    LogDriver("log", {"stream": False, "file": str(path)})  # a second instance must not double lines
    driver.broadcast([Message("general", "second", {})])
    log_driver.detach_handlers()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert 'Broadcasting [announcement] on channel [general] with payload: {"n":1}' in lines[0]


def test_log_driver_stream_prints_to_stderr_when_no_handler_is_configured(capsys, monkeypatch):
    logger = logging.getLogger("django_broadcasting.log")
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(logger, "handlers", [])
    driver = LogDriver("log")
    driver.broadcast([Message("general", "e", {})])
    assert "Broadcasting [e] on channel [general]" in capsys.readouterr().err


def test_log_driver_rejects_an_unknown_level():
    with pytest.raises(ImproperlyConfigured, match="LEVEL"):
        LogDriver("log", {"LEVEL": "LOUD"})
