"""One conversion command carries several conversions, so NeMo starts once for all of them."""

import sys
from pathlib import Path

import pytest

from helpers import conversion
from helpers.conversion import cli
from helpers.errors import SettingError


def test_one_conversion_command_carries_several_jobs_in_order():
    todo = [conversion.Job(Path(f"/nemo/{k}"), Path(f"/hf/{k}"), Path(f"/r/{k}.json")) for k in ("depth", "width")]
    command = conversion.command("export", *todo, overwrite=True)
    assert command[:3] == [sys.executable, "-m", "helpers.conversion"]
    args = cli.parser().parse_args(command[3:])
    assert args.direction == "export" and args.overwrite and cli.jobs(args) == todo


def test_a_source_without_its_output_or_report_is_refused():
    args = cli.parser().parse_args(["export", "--source", "/a", "--output", "/b", "--report", "/r", "--source", "/c"])
    with pytest.raises(SettingError, match="--source/--output/--report"):
        cli.jobs(args)
