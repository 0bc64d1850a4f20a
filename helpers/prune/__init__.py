"""Notebook 02: prune the teacher into a depth and a width student with ModelOpt's Minitron method.

    torchrun --nproc_per_node 2 -m helpers.prune ...         NeMo 2's route (`cli`), with NeMo's gpt_prune.py flags
    torchrun --nproc_per_node 2 -m helpers.prune.bridge ...  Megatron-Bridge's route, with the flags of ModelOpt's
                                                             examples/megatron_bridge/prune_minitron.py
    checks.py         the rules every setting must pass before the model is loaded (both routes)
    steps.py          what the notebook runs on NeMo 2's route: the commands a profile implies, checked, then launched
    bridge_steps.py   the same on Megatron-Bridge's route
    importance.py     Minitron's importance scores, recorded during pruning and read back
    search.py         pruning to a parameter budget (ModelOpt's architecture search): its space, limits and record
    scores.py         the score the search maximizes; `python -m helpers.prune.scores` scores any pruned checkpoint
    resave.py         re-saving a pruned NeMo 2 checkpoint so that every later step loads it normally

The notebook calls the functions below with its workspace, whose route picks the steps module. Names are imported
when first used, not with the package: `python -m helpers.prune.resave` imports this package before running its
module, and a package that had already imported it (through `cli`) would have Python run a second copy of the
module and warn ("found in sys.modules after import of package", runpy.py:121-128).
"""

from __future__ import annotations

from importlib import import_module

__all__ = [
    "bad_settings", "check", "checkpoints", "command", "parser", "refusal", "run_pruning", "run_search", "show_layer_importance",
    "show_search", "show_width_importance", "steps_for", "students", "targets", "validation_losses",
]  # fmt: skip
_MODULES = {"check": "cli", "parser": "cli", "targets": "steps"}
_ROUTE_STEPS = {"nemo2": "steps", "bridge": "bridge_steps"}


def steps_for(ws):
    """The steps module of the workspace's route."""
    return import_module(f"{__name__}.{_ROUTE_STEPS[ws.route]}")


def run_pruning(profile, ws, kind: str, overwrite: bool = False):
    """Check the settings, then prune with torchrun; reuse a finished student unless `overwrite`. Returns its path."""
    from helpers.run.launch import run

    steps = steps_for(ws)
    path = steps.output(ws, kind)
    if not overwrite and steps.is_done(path, profile, ws, kind):
        print(f"Reusing the {kind}-pruned student at {path} (set OVERWRITE = True to prune again).")
        return path
    replace = overwrite or path.exists()  # a stale or differently-pruned student is replaced
    steps.check_flags(profile, ws, kind, replace)  # refuses before launching
    run(steps.command(profile, ws, kind, replace), ws.logs / f"02-prune-{kind}.log")
    return path


def run_search(profile, ws, overwrite: bool = False):
    """The third student, pruned to a parameter budget by ModelOpt's architecture search, on a route whose ModelOpt
    has it (`Route.searches_budget`); elsewhere, say so and return None: the series goes on with two students."""
    from helpers.routes import SEARCHED

    if SEARCHED not in ws.students:
        print(_no_search(ws))
        return None
    return run_pruning(profile, ws, SEARCHED, overwrite)


def _no_search(ws) -> str:
    from helpers.routes import ROUTES

    having = next(route.name for route in ROUTES.values() if route.searches_budget)
    return (f"The {ws.route!r} route's ModelOpt cannot prune to a parameter budget (that needs ModelOpt 0.42 or later): "
            f"run the series with ROUTE = {having!r} for the searched student. Here the series goes on with two.")  # fmt: skip


def checkpoints(ws) -> dict:
    """The teacher and each pruned student, as pruning reads and writes them: {label: path}."""
    return {"teacher": ws.teacher} | {f"{kind}-pruned": ws.pruned(kind) for kind in ws.students}


def show_search(profile, ws, overwrite: bool = False):
    """The search's space, its scored candidates with every pruned student placed among them (table and figure),
    and what it chose; None on a route without the search."""
    from IPython.display import display

    from helpers import plots
    from helpers.models.checkpoints import architecture, parameter_counts
    from helpers.prune import search
    from helpers.routes import SEARCHED

    if SEARCHED not in ws.students:
        print(_no_search(ws))
        return None
    record, table = steps_for(ws).search_report(profile, ws, overwrite)
    params = parameter_counts(ws.pruned(SEARCHED))["total"]
    print(f"Budget {record['budget']:,.0f} parameters, score {record['score_func']}; searched in steps of {record['divisors']}, "
          f"cutting at most {record['limits']['max_width_pruning']:.0%} of a width and {record['limits']['max_depth_pruning']:.0%} of the layers:")
    for name, values in record["search_space"].items():
        print(f"    {name:20} {values}")
    print(f"{record['combinations']} combinations; the {len(record['scored'])} largest under the budget were scored.")
    display(table)
    display(plots.search_candidates(table, record["budget"], record["score_func"], ws.figure("02_search")))
    chosen = table[table["chosen"]].iloc[0]
    print(f"Chosen: {record['chosen']}, {params:,} parameters ({1 - params / record['budget']:.2%} under the budget).")
    print(f"It cuts {search.cuts(record, architecture(ws.teacher))}.")
    print(f"The exported student scores {table.loc[f'{SEARCHED}-pruned', 'score']:.5f}; the search scored its choice {chosen['score']:.5f}.")
    return table


def command(profile, ws, kind: str, overwrite: bool = False) -> list[str]:
    """The torchrun command that makes the `kind` student ("depth", "width", or "drop": named layers)."""
    return steps_for(ws).command(profile, ws, kind, overwrite)


def refusal(profile, ws, kind: str) -> str | None:
    """What the entry point would say, before loading anything, to the `kind` student's flags under `profile`."""
    from helpers.errors import refusal

    if kind not in (*ws.students, "drop"):
        return _no_search(ws)
    return refusal(lambda: steps_for(ws).check_flags(profile, ws, kind))


def students(ws, overwrite: bool = False) -> dict:
    """Each pruned student as a Hugging Face checkpoint, proven by logits: {label: LogitsCheck}."""
    return steps_for(ws).students(ws, overwrite)


def show_layer_importance(ws) -> None:
    """The layer scores depth pruning used: the dropped layers, their figure, and where the first and last layers rank."""
    from IPython.display import display

    from helpers import plots
    from helpers.prune import importance

    scores = importance.load(ws.pruned("depth"))
    print(f"dropped layers: {scores['dropped_layers']}")
    display(plots.layer_importance(scores["layers"], scores["dropped_layers"], ws.figure("02_layer_importance")))
    print(importance.layer_findings(scores["layers"], scores["dropped_layers"]))


def show_width_importance(profile, ws):
    """The channel and neuron scores width pruning used, sorted, with the widths the profile keeps (a figure)."""
    from helpers import plots
    from helpers.prune import importance

    scores, settings = importance.load(ws.pruned("width")), profile.prune
    return plots.width_importance(scores["hidden_size"], scores["ffn_hidden_size"], kept_hidden=settings.width_hidden_size,
                                  kept_ffn=settings.width_ffn_hidden_size, path=ws.figure("02_width_importance"))  # fmt: skip


def validation_losses(profile, ws, windows: int = 8) -> dict[str, float]:
    """The next-token loss of the teacher and each exported pruned student on the same validation windows
    (`python -m helpers.evaluate.losses`); prints what each cut cost, judged against the noise. {label: loss}"""
    from helpers.evaluate import losses

    students = {f"{kind}-pruned": ws.hf_model(f"{kind}-pruned") for kind in ws.students}
    report = ws.results / "02-losses.json"
    measured = losses.measure({"teacher": ws.hf_teacher} | students, data_prefix=ws.data_prefix("validation"),
                              seq_length=profile.data.seq_length, windows=windows, report=report, log=ws.logs / "02-losses.log")  # fmt: skip
    print(losses.costs(report))
    return measured


def bad_settings(profile, kind: str):
    """`profile` with settings the `kind` student's checks refuse. "width": a hidden size off ModelOpt's grid (32 above
    the target) and calibration samples the micro batch does not divide; "nas": a budget of a million parameters,
    below any candidate, and no candidate to score."""
    from dataclasses import replace

    settings = profile.prune
    changes = {
        "width": {"width_hidden_size": settings.width_hidden_size + 32, "num_train_samples": settings.mbs * 8 + 1},
        "nas": {"search": replace(settings.search, params=1e6, top_k=0)},
    }
    return replace(profile, prune=replace(settings, **changes[kind]))


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
