"""The one error type for settings that cannot work, raised before any work starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class Problem(NamedTuple):
    """One refused setting: which one, what is wrong with it, and how to fix it."""

    setting: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.problem}\n  fix: {self.fix}"


class SettingError(ValueError):
    """One or more refused settings; the message names each setting, its problem and the fix."""

    def __init__(self, *problems: Problem):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def refuse(setting: str, problem: str, fix: str) -> SettingError:
    """The error for a single refused setting (`raise refuse(...)`)."""
    return SettingError(Problem(setting, problem, fix))


def raise_if_any(problems: list[Problem]) -> None:
    """Report every problem at once, so a user fixes them in one go instead of one per launch."""
    if problems:
        raise SettingError(*problems)


def refusal(check: Callable[[], object]) -> str | None:
    """What `check` refuses, as the user would read it, or None if it passes."""
    try:
        check()
    except SettingError as error:
        return str(error)
    return None


def flag(name: str) -> str:
    """The command-line flag of an argparse destination: `--name`."""
    return f"--{name}"
