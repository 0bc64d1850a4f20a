"""`python -m helpers.evaluate.speed`: measure the compared models' speed again, in a fresh process, and check it
against notebook 04's table (the measurement itself is `helpers.evaluate.speed`)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import pandas as pd

from helpers.errors import SettingError
from helpers.evaluate import comparison
from helpers.evaluate.speed import MAX_ROUNDS_FACTOR, TOLERANCE, agreement, rank_disagreements, unreliable_note
from helpers.profiles import DEFAULT_PROFILE, get_profile
from helpers.routes import DEFAULT_ROUTE, ROUTE_ENV, get_route
from helpers.workspace import DEFAULT_WORKDIR, WORKDIR_ENV, open_workspace


def main(argv: list[str] | None = None) -> int:
    """Measure the compared models' speed again, in this fresh process, and check it against notebook 04's table."""
    p = argparse.ArgumentParser(prog="python -m helpers.evaluate.speed", description=main.__doc__)
    p.add_argument("--profile", default=DEFAULT_PROFILE)
    p.add_argument("--workdir", default=os.environ.get(WORKDIR_ENV, DEFAULT_WORKDIR))
    p.add_argument("--route", default=os.environ.get(ROUTE_ENV, DEFAULT_ROUTE), help="the route whose results to measure again")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default: the profile's), up to twice as many while a ratio is uncertain")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help="largest relative difference of a ratio that counts as agreeing")
    args = p.parse_args(argv)
    profile = get_profile(args.profile)
    os.environ[WORKDIR_ENV] = args.workdir  # the flag wins over an inherited $TUTORIAL_WORKDIR
    ws = open_workspace(profile.name, profile.model.name, args.workdir, get_route(args.route).name)
    settings = comparison.speed_settings(profile, ws)
    try:
        if args.rounds:
            settings = dataclasses.replace(settings, rounds=args.rounds, max_rounds=MAX_ROUNDS_FACTOR * args.rounds)
    except SettingError as error:
        print(f"helpers.evaluate.speed refused to start:\n{error}", file=sys.stderr)
        return 2
    reported = pd.DataFrame(comparison.load(ws)["models"]).set_index("model")
    print(f"Reported: {comparison.load(ws)['speed']}\nMeasuring again: {settings}", flush=True)
    again = comparison.measure_speed(ws, settings)
    table = agreement(reported, again, args.tolerance)
    problems = rank_disagreements(reported, again, args.tolerance)
    print(table.to_string(), *(problems or ["every pair the report ranks more than the tolerance apart is ranked the same"]), sep="\n")
    busy = unreliable_note(again)
    for when, note in (("Reported", unreliable_note(reported)), ("Measured again", busy)):
        if note:
            print(f"{when}: {note}")
    return 0 if table["agrees"].all() and not problems and not busy else 1


sys.exit(main())
