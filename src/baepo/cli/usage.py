"""How a `baepo` command presents itself in `--help`: in words, as click and most CLIs do.

Typer (0.2x) shows each parameter's Python type and a required argument in braces:

    Usage: baepo services ops [OPTIONS] {name} [operation]
      --wait  <bool>   --port  <int>   --env  <list[str]>

Here a flag shows nothing, an option its kind of value in capitals, an argument its name:

    Usage: baepo services ops [OPTIONS] NAME [OPERATION]
      --wait           --port  INTEGER   --env  TEXT

Every command and group of the app is made by `Typer` below, with these classes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_origin

import typer
from typer import _click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

_WORDS: dict[Any, str] = {str: "TEXT", int: "INTEGER", float: "FLOAT", Path: "PATH"}


class _Argument(TyperArgument):
    """An argument shown by its name (`NAME`, `[OPERATION]`), its type left to its help."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or (self.name or "").upper()
        if not self.required:
            name = f"[{name}]"
        return [name + ("..." if self.nargs != 1 else "")]


def _in_words(param: Any) -> None:
    """Give a parameter its name in --help: `NAME`, `INTEGER`, nothing for a flag. Typer has
    no say in which class it makes an argument of, so an argument becomes an `_Argument`."""
    if isinstance(param, TyperArgument):
        param.__class__ = _Argument
        param.metavar = param.metavar or (param.name or "").upper()
    elif isinstance(param, TyperOption) and param.metavar is None:
        param.metavar = "" if param.is_flag else _word(param.type_descriptor.annotation)


def _word(annotation: Any) -> str:
    """TEXT for `str`, INTEGER for `int` or `list[int]` (a repeatable option's one value)."""
    if get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    return _WORDS.get(annotation, getattr(annotation, "__name__", "VALUE").upper())


class _InWords(_click.Command):
    """What `Command` and `Group` share: their parameters in words, --help and the ones
    Typer adds after making a group (shell completion's) too."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            _in_words(param)
        return params


class Command(_InWords, TyperCommand):
    pass


class Group(_InWords, TyperGroup):
    pass


class Typer(typer.Typer):
    """`typer.Typer` whose groups and commands show their parameters in words."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(
        self, *args: Any, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(*args, cls=Command, **kwargs)
