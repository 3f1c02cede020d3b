"""Config: each field declared once, and the command line, the environment and the docs made
from that declaration agree with it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ruang.cli import build_parser, serve_config
from ruang.config import SETTINGS, Config
from ruang.settings import Setting, markdown_table, replace_table

ROOT = Path(__file__).parent.parent
CLI_ONLY_BY_ENV = {"ticket_key"}  # secrets never on the command line


def other_value(s: Setting) -> Any:
    """A valid value of the setting that is not its default."""
    if s.choices:
        return next(c for c in s.choices if c != s.default)
    if s.kind is bool:
        return not s.default
    if s.kind is int:
        return s.default + 1
    if s.kind is float:
        return s.default / 2
    if s.kind is Path:
        return Path("/srv/ruang-test")
    if s.repeatable:
        return ("127.0.0.2", "10.0.0.0/8")
    return f"x-{s.name}-" + "k" * 32  # long enough for a key


OTHER = {s.name: other_value(s) for s in SETTINGS}


def argv_for(values: dict[str, Any]) -> list[str]:
    """`ruang serve` options setting these values (lists as repeated options)."""
    argv = ["serve"]
    for s in SETTINGS:
        if s.name not in values:
            continue
        assert s.flag is not None
        value = values[s.name]
        if s.repeatable:
            for item in value:
                argv += [s.flag, item]
        else:
            argv += [s.flag, s.format(value)]
    return argv


def parse(argv: list[str], env: dict[str, str] | None = None) -> Config:
    return serve_config(build_parser().parse_args(argv), env or {})


def test_every_field_is_a_setting_with_an_option_and_a_variable() -> None:
    names = [f.name for f in dataclasses.fields(Config)]
    assert [s.name for s in SETTINGS] == names
    for s in SETTINGS:
        assert s.env == "RUANG_" + s.name.upper()
        assert s.help.strip(), s.name
        assert (s.flag is None) == (s.name in CLI_ONLY_BY_ENV), s.name
    flags = [s.flag for s in SETTINGS if s.flag]
    assert len(set(flags)) == len(flags)


def test_the_option_names_users_know_are_kept() -> None:
    flags = {s.name: s.flag for s in SETTINGS}
    assert flags["delivery_workers"] == "--workers"
    assert flags["ticket_ttl_s"] == "--ticket-ttl"
    assert flags["ice_addresses"] == "--ice-address"
    assert flags["trusted_proxies"] == "--trusted-proxy"
    assert flags["idle_end_s"] == "--idle-end-s"
    assert flags["create_key"] == "--create-key"


def test_serve_help_lists_every_option_and_variable() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ruang.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "200", "PATH": "", "PYTHONPATH": ":".join(sys.path)},
    ).stdout
    for s in SETTINGS:
        assert s.env in out, s.env
        if s.flag:
            assert s.flag in out, s.flag
    assert "--no-captions" in out and "--no-media-realtime" in out


def test_defaults_round_trip_through_the_environment() -> None:
    assert Config.from_env({}) == Config()
    assert Config.from_env(Config().to_env()) == Config()


def test_every_setting_round_trips_through_its_variable() -> None:
    config = Config(**OTHER)
    env = config.to_env()
    assert set(env) == {s.env for s in SETTINGS}
    assert Config.from_env(env) == config
    for s in SETTINGS:  # and one at a time, to the right type
        value = Config.from_env({s.env: s.format(OTHER[s.name])})
        assert getattr(value, s.name) == OTHER[s.name], s.name
        assert type(getattr(value, s.name)) is type(OTHER[s.name]), s.name


def test_every_option_gives_its_typed_value() -> None:
    values = {k: v for k, v in OTHER.items() if k not in CLI_ONLY_BY_ENV}
    config = parse(argv_for(values))
    assert config == Config(**values)
    assert isinstance(config.data_dir, Path) and isinstance(config.joins_per_s, float)


def test_options_win_over_the_environment_and_the_environment_over_defaults() -> None:
    env = {"RUANG_PORT": "9001", "RUANG_JOINS_PER_S": "12.5", "RUANG_TRUSTED_PROXIES": "10.0.0.1"}
    config = parse(["serve", "--port", "9002", "--trusted-proxy", "127.0.0.1"], env)
    assert config.port == 9002
    assert config.joins_per_s == 12.5
    assert config.trusted_proxies == ("127.0.0.1",)  # the option's list replaces the variable's
    assert config.max_listeners == Config().max_listeners


def test_secrets_come_from_the_environment() -> None:
    key = "k" * 40
    config = parse(["serve"], {"RUANG_TICKET_KEY": key, "RUANG_CREATE_KEY": "c"})
    assert (config.ticket_key, config.create_key) == (key, "c")
    assert parse(["serve", "--create-key", "d"], {"RUANG_CREATE_KEY": "c"}).create_key == "d"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--ticket-key", key])


def test_redis_url_reads_the_common_variable_after_its_own() -> None:
    assert Config.from_env({"REDIS_URL": "redis://a"}).redis_url == "redis://a"
    both = {"REDIS_URL": "redis://a", "RUANG_REDIS_URL": "redis://b"}
    assert Config.from_env(both).redis_url == "redis://b"


@pytest.mark.parametrize(
    ("argv", "captions"),
    [
        ([], True),
        (["--captions"], True),
        (["--captions", "off"], False),
        (["--captions", "on"], True),
        (["--no-captions"], False),
    ],
)
def test_on_off_options(argv: list[str], captions: bool) -> None:
    assert parse(["serve", *argv]).captions is captions


def test_on_off_variables() -> None:
    for word, value in [("off", False), ("0", False), ("no", False), ("on", True), ("1", True)]:
        assert Config.from_env({"RUANG_CAPTIONS": word}).captions is value
        assert Config.from_env({"RUANG_MEDIA_REALTIME": word}).media_realtime is value
    assert parse(["serve", "--no-media-realtime"]).media_realtime is False
    assert parse(["serve", "--media-realtime"], {"RUANG_MEDIA_REALTIME": "0"}).media_realtime
    # a variable set to nothing is unset: the default, not "off"
    assert Config.from_env({"RUANG_CAPTIONS": "", "RUANG_MEDIA_REALTIME": " "}).captions is True
    assert Config.from_env({"RUANG_MEDIA_REALTIME": ""}).media_realtime is True
    assert Config.from_env({"RUANG_PORT": ""}).port == Config().port


def test_lists_repeat_and_split_on_commas() -> None:
    argv = ["serve", "--ice-address", "127.0.0.1", "--ice-address", "10.0.0.2,10.0.0.3"]
    assert parse(argv).ice_addresses == ("127.0.0.1", "10.0.0.2", "10.0.0.3")
    env = {"RUANG_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,"}
    assert Config.from_env(env).trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert Config.from_env({"RUANG_ICE_ADDRESSES": ""}).ice_addresses == ()


@pytest.mark.parametrize(
    ("env", "quoted"),
    [
        ({"RUANG_PORT": "80a"}, "RUANG_PORT: '80a' is not a whole number"),
        ({"RUANG_MEDIA_BUDGET": "most"}, "RUANG_MEDIA_BUDGET: 'most' is not a number"),
        ({"RUANG_CAPTIONS": "maybe"}, "RUANG_CAPTIONS: 'maybe' is not on or off"),
        ({"RUANG_PORT": "70000"}, "port must be 1..65535, got 70000"),
        ({"RUANG_TRUSTED_PROXIES": "edge"}, "trusted proxy 'edge' is not an address"),
        ({"RUANG_CAPTIONS_ENGINE": "vosk"}, "must be one of pocketsphinx, whisper, got 'vosk'"),
    ],
)
def test_a_bad_variable_is_named_and_quoted(env: dict[str, str], quoted: str) -> None:
    with pytest.raises(ValueError, match=quoted):
        Config.from_env(env)


def test_a_bad_option_is_named_and_quoted() -> None:
    argv = [sys.executable, "-m", "ruang.cli", "serve", "--workers", "two"]
    run = subprocess.run(
        argv, capture_output=True, text=True, env={"PYTHONPATH": ":".join(sys.path)}
    )
    assert run.returncode == 2
    assert "argument --workers: 'two' is not a whole number" in run.stderr
    argv[-2:] = ["--media-budget", "3"]
    run = subprocess.run(
        argv, capture_output=True, text=True, env={"PYTHONPATH": ":".join(sys.path)}
    )
    assert run.returncode == 1
    assert "ruang serve: media_budget must be 0.05..1.0 cores, got 3.0" in run.stderr


def test_docs_list_every_setting_as_declared() -> None:
    doc = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    assert replace_table(doc, markdown_table(SETTINGS)) == doc, (
        "docs/CONFIGURATION.md differs from src/ruang/config.py: run scripts/config-docs"
    )
    assert "docs/CONFIGURATION.md" in (ROOT / "README.md").read_text()
