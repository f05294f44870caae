"""What a Ray job's driver (`jobs/*.py`) needs besides the library: its arguments taken
from the options dataclasses, progress as log lines, and one-line errors.

Every field of an options dataclass (`TrainOptions`, `IndexOptions`, `RcaOptions`, ...)
becomes a `--field-name` flag of its type whose default is the dataclass's own, so a
job has no defaults of its own to drift from the library's. Ray's job logs keep stdout:
progress is printed there, and a job ends with one JSON line summarising its result.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Callable
from typing import TypeVar

from ocsf_ray.io.sources import InputError

T = TypeVar("T")


def _parse_type(hint) -> tuple[type, bool]:
    """(element type, is a tuple) of a field annotation such as `int`, `float | None` or
    `tuple[str, ...]`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return _parse_type(args[0])
    if typing.get_origin(hint) is tuple:
        return args[0], True
    return hint, False


def add_options(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One flag per scalar or tuple field of the dataclass `cls` (nested options classes
    are added on their own), in a group named after the class. Unset flags stay None,
    so `options_from` keeps the dataclass's default."""
    group = parser.add_argument_group(cls.__name__, (cls.__doc__ or "").strip().splitlines()[0])
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        if field.name in skip or dataclasses.is_dataclass(default):
            continue
        kind, many = _parse_type(hints[field.name])
        flag = "--" + field.name.replace("_", "-")
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"default: {default}")
        else:
            group.add_argument(flag, type=kind, nargs="*" if many else None, default=None, help=f"default: {default}")


def options_from(cls: type, args: argparse.Namespace, base=None, **fixed):
    """An instance of `cls` (or a copy of `base`) with the flags that were given, and
    `fixed` values; raises ValueError when the options' own checks refuse a value."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    return dataclasses.replace(base if base is not None else cls(), **given, **fixed)


class LogProgress:
    """An `on_progress` callback (`ocsf_ray.pipeline`) writing log lines: one when a
    step or its detail changes, then one per tenth of its total and at its end."""

    def __init__(self) -> None:
        self.last: tuple | None = None

    def __call__(self, step: str, done: int, total: int | None, detail: str = "") -> None:
        mark = (step, detail, done * 10 // total if total else None)
        if mark != self.last:
            self.last = mark
            print(f"{step}{' ' + detail if detail else ''}: {done}/{total if total is not None else '?'}", flush=True)


def run_job(parse: Callable[[], T], work: Callable[[T], dict]) -> dict:
    """A job's driver: `parse` its arguments into what `work` needs, join the cluster
    (or start a local Ray), run `work` and print its summary as the log's last, JSON
    line; returns the summary. A ValueError from `parse` (a value out of range) or an
    InputError from `work` (the data or a path) is one line on stderr and exit status 2."""
    from ocsf_ray.runtime import start_ray

    try:
        job = parse()
    except ValueError as err:
        fail(str(err))
    start_ray()
    try:
        summary = work(job)
    except InputError as err:
        fail(str(err))
    print(json.dumps(summary, default=str), flush=True)
    return summary


def fail(message: str) -> typing.NoReturn:
    """Print `error: <message>` on stderr and exit with status 2."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)
