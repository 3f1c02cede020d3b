"""One declaration per configuration field, read by the environment, the CLI and the docs.

A field of `ruang.config.Config` is declared with `setting(default, help, unit=...)`; its type
annotation picks the parser (int, float, str, Path, bool, or a tuple of str given as a
comma-separated list). From the field's name follow its option (`--max-on-stage`, unless
`flag=` says otherwise) and its environment variable (`RUANG_MAX_ON_STAGE`). Parsing checks
the type only; the ranges are checked once, in `Config.__post_init__`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ENV_PREFIX = "RUANG_"
_KEY = "ruang.setting"
_TRUE = ("on", "1", "true", "yes")
_FALSE = ("off", "0", "false", "no")


@dataclass(frozen=True)
class _Declared:
    help: str
    unit: str
    flag: str
    cli: bool
    env_aliases: tuple[str, ...]
    choices: tuple[str, ...]


def setting(
    default: T,
    help: str,
    *,
    unit: str = "",
    flag: str = "",
    cli: bool = True,
    env_aliases: tuple[str, ...] = (),
    choices: tuple[str, ...] = (),
) -> T:
    """A dataclass field with its declaration: `help` (one sentence for an operator), `unit`
    (seconds, bytes, …), `flag` (the option, if not `--` + the name with dashes), `cli=False`
    for a secret read from the environment only, `env_aliases` (read when the RUANG_ variable
    is absent) and `choices` (the only values allowed)."""
    declared = _Declared(help, unit, flag, cli, env_aliases, choices)
    return dataclasses.field(default=default, metadata={_KEY: declared})


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{text!r} is not on or off (on/off, 1/0, true/false, yes/no)")


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


_PARSERS: dict[object, Callable[[str], Any]] = {
    int: _parse_int,
    float: _parse_float,
    str: str,
    Path: Path,
    bool: _parse_bool,
    tuple[str, ...]: _parse_list,
}


@dataclass(frozen=True)
class Setting:
    """One configuration field as the outside sees it: its option, environment variable,
    parser, unit, default and help."""

    name: str
    kind: object  # the field's type: int, float, str, Path, bool or tuple[str, ...]
    default: Any
    help: str
    unit: str
    flag: str | None  # None: environment only (a secret)
    env: str
    env_aliases: tuple[str, ...]
    choices: tuple[str, ...]

    @property
    def repeatable(self) -> bool:
        """A list: the option may be given several times; the variable is comma-separated."""
        return self.kind == tuple[str, ...]

    @property
    def envs(self) -> tuple[str, ...]:
        """The variables read, first found wins."""
        return (self.env, *self.env_aliases)

    def parse(self, text: str) -> Any:
        """The typed value of `text`; ValueError quoting it if it is not of the type."""
        return _PARSERS[self.kind](text)

    def format(self, value: Any) -> str:
        """`value` as text that `parse` reads back to the same value."""
        if self.kind is bool:
            return "on" if value else "off"
        if self.repeatable:
            return ",".join(value)
        return str(value)

    def show_default(self) -> str:
        """The default as the help and the docs print it."""
        text = self.format(self.default)
        return text if text else "none"


def settings_of(cls: type) -> tuple[Setting, ...]:
    """The settings of a dataclass whose fields are declared with `setting()`."""
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        declared = f.metadata.get(_KEY)
        if not isinstance(declared, _Declared):
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting()")
        kind = hints[f.name]
        if kind not in _PARSERS:
            raise TypeError(f"{cls.__name__}.{f.name}: no parser for {kind!r}")
        flag = (declared.flag or "--" + f.name.replace("_", "-")) if declared.cli else None
        found.append(
            Setting(
                name=f.name,
                kind=kind,
                default=f.default,
                help=declared.help,
                unit=declared.unit,
                flag=flag,
                env=ENV_PREFIX + f.name.upper(),
                env_aliases=declared.env_aliases,
                choices=declared.choices,
            )
        )
    return tuple(found)


def read_env(settings: tuple[Setting, ...], env: typing.Mapping[str, str]) -> dict[str, Any]:
    """The typed values of the settings whose variable is set in `env`, by field name;
    ValueError naming the variable and quoting its value if one does not parse. A variable set
    to nothing (`RUANG_CAPTIONS=`, as compose files and unit files often pass one) counts as
    unset: the default holds."""
    values: dict[str, Any] = {}
    for s in settings:
        for name in s.envs:
            if env.get(name, "").strip():
                try:
                    values[s.name] = s.parse(env[name])
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
                break
    return values


def markdown_table(settings: tuple[Setting, ...]) -> str:
    """The settings as a Markdown table (docs/CONFIGURATION.md is made of it)."""
    rows = [
        "| option | environment | default | unit | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in settings:
        flag = f"`{s.flag}`" if s.flag else "(environment only)"
        env = " or ".join(f"`{name}`" for name in s.envs)
        meaning = s.help
        if s.choices:
            meaning += " One of: " + ", ".join(f"`{c}`" for c in s.choices) + "."
        if s.repeatable:
            meaning += " Repeat the option; the variable is comma-separated."
        unit = s.unit or ("on/off" if s.kind is bool else "")
        rows.append(f"| {flag} | {env} | `{s.show_default()}` | {unit} | {meaning} |")
    return "\n".join(rows) + "\n"


TABLE_BEGIN = "<!-- settings table: made by scripts/config-docs from src/ruang/config.py -->"
TABLE_END = "<!-- end of settings table -->"


def replace_table(doc: str, table: str) -> str:
    """`doc` with the text between TABLE_BEGIN and TABLE_END replaced by `table`."""
    head, begin, rest = doc.partition(TABLE_BEGIN)
    _, end, tail = rest.partition(TABLE_END)
    if not (begin and end):
        raise ValueError(f"the document has no {TABLE_BEGIN!r} … {TABLE_END!r}")
    return f"{head}{begin}\n{table}{end}{tail}"
