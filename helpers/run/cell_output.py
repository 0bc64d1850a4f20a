"""What a launching cell shows of its command's output, decided line by line by the kind of line; the log keeps all.

A command that `launch.run` starts prints hundreds of lines: NeMo's, Megatron-Core's, Lightning's, ModelOpt's,
torchrun's, and ours. Each is classified here, once, by the first rule of `RULES` whose pattern it matches
(its colours and torch's `[rankN]:` prefix aside), and shown according to its kind:

    error            an error, ours or any library's                           shown
    warning          a warning of ours, or one the reader must act on          shown
    result           importance found, what was cut, the loss of a logged      shown
                     step, a validation, a check, where a result went
    progress         a bar or a counter                                        shown in place, each update over the last
    phase            loading, pruning, saving... begins, or ends in N s        one line, at the time since the start
    library warning  any other warning                                         counted, in the log only
    log              anything else, and any line no rule knows                 in the log only

So a new upstream line lands in the log, not on the reader's screen. Our own lines are named one by one
(`_OURS`: what the commands' modules print; a test checks every print of those modules against them).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent  # helpers/
# Printed by every process once its stack is imported (helpers/run/stack.py): a phase here, and where `timings` ends a
# command's start-up.
STACK_IMPORTED = "[helpers] {stack} stack imported in {seconds:.1f} s"
STACK_IMPORTED_LINE = r"^\[helpers\] (?P<stack>[\w-]+) stack imported in (?P<seconds>[\d.]+) s"


class Kind(Enum):
    ERROR = "error"
    WARNING = "warning"
    RESULT = "result"
    PROGRESS = "progress"
    PHASE = "phase"
    LIBRARY_WARNING = "library warning"
    LOG = "log"


SHOWN = (Kind.ERROR, Kind.WARNING, Kind.RESULT, Kind.PROGRESS, Kind.PHASE)


@dataclass(frozen=True)
class Rule:
    """Lines matching `pattern` are of `kind`; a phase shows `label`, filled with the match's named groups."""

    kind: Kind
    pattern: re.Pattern
    label: str = ""
    once: bool = False  # shown only the first time in a command (every process prints it)


def _rule(kind: Kind, *patterns: str, label: str = "", once: bool = False) -> Rule:
    return Rule(kind, re.compile("|".join(patterns)), label, once)


# A tqdm bar ("Validation DataLoader 0:  12%|█▎   | 1/8 [00:00<00:01, 3.55it/s]"); with no newline after it,
# another process's line can follow on the same line, and is classified on its own.
_BAR = re.compile(r"^[^|\n]*\|[^|]*\| *[\d.]+[kMG]?/(?:[\d.]+[kMG]?|\?) \[[^\]]*\]")

# What the commands' modules print (helpers/conversion/cli.py, outputs.py, prune/cli.py, prune/resave.py,
# distill/cli.py, distill/callbacks.py, evaluate/losses.py, data/indexed.py).
_OURS = (
    r"^Logits check, ", r"^Wrote the .+ to ", r"^Reusing the ", r"^The .+ is incomplete; rebuilding it",
    r"^Pruned checkpoint: ", r"^Run \S+: ", r"^Nothing to do \(", r"^Best checkpoint \(",
    r"^Removed \S+: it was interrupted", r"^val_loss after step \d+: ", r"^\S+: next-token loss ",
    r"^\S+ holds [\d,]+ tokens: ", r"^helpers\.[\w.]+(?: refused|: )",
)  # fmt: skip

RULES = (
    # An error, ours or any library's: NeMo's logger ([NeMo E]), torch's C++ log (E1206 21:40:17.12 1300 file:line]),
    # Python's logging, an exception's last line (a traceback's body is in the tail `run` raises with).
    _rule(
        Kind.ERROR,
        r"^\[NeMo [EC] ", r"^[EF]\d{4} \d\d:\d\d:[\d.]+ ", r"^(?:ERROR|CRITICAL)\b", r"^(?:\w+\.)*\w*(?:Error|Exception)\b:",
        r"^KeyboardInterrupt", r"\bout of memory\b", r"No space left on device",
    ),
    _rule(Kind.RESULT, *_OURS),
    # A Python warning raised in our package, or naming one of its modules (as `runpy` does when launching one).
    _rule(Kind.WARNING, rf"{re.escape(str(PACKAGE))}/\S+\.py:\d+: \w*Warning: ", r"\w+Warning: .*'helpers\.\w"),
    # Megatron's checkpoint keys that did not match, logged instead of raised under the lenient loading that
    # --legacy_ckpt selects (megatron/core/dist_checkpointing/validation.py:351-372): weights left unloaded.
    _rule(Kind.WARNING, r"keys found in the checkpoint are missing", r"^Unexpected keys \(", r"^Missing keys \("),
    # A tqdm bar, and NeMo's validation and test counters (nemo/lightning/pytorch/callbacks/progress_printer.py:192, :221).
    _rule(Kind.PROGRESS, _BAR.pattern, r"^[\w ]+: iteration \d+/\d+\s*$"),
    # Phases: the stack imported (STACK_IMPORTED), a checkpoint restored
    # (megatron_strategy.py:1170), the teacher loaded (modelopt/distill/utils.py:141), pruning and saving its result
    # (modelopt/prune/pruner.py:111, :130); NeMo times every checkpoint load and save (nemo/lightning/io/pl.py:211-225,
    # :305-311), a save with asynchronous writing (GPUs) only until the writing goes on in the background.
    _rule(Kind.PHASE, STACK_IMPORTED_LINE, label="{stack} imported in {seconds:.1f} s", once=True),
    _rule(Kind.PHASE, r"Doing selective restore from RestoreConfig\(path='(?:[^']*/)?(?P<name>[^'/]+)'", label="restoring {name}"),
    _rule(Kind.PHASE, r"\] Distillation: Loading teacher weights", label="loading the teacher"),
    _rule(Kind.PHASE, r"\] Pruning model\.\.\.", label="pruning"),
    _rule(Kind.PHASE, r"\] Saving pruned model to ", label="saving the pruned model"),
    _rule(Kind.PHASE, r"Time spent in load_checkpoint: (?P<seconds>[\d.]+)s", label="checkpoint loaded in {seconds:.1f} s"),
    _rule(Kind.PHASE, r"Global Checkpoint Save .*Save duration: (?P<seconds>[\d.]+)s", label="checkpoint saved in {seconds:.1f} s"),
    # Results of the libraries: depth pruning's layer scores and the layers it drops (ModelOpt's
    # nas/plugins/megatron.py:1305, :1361), a logged training step (NeMo's progress_printer.py:149-151),
    # Lightning's table of validation metrics.
    _rule(Kind.RESULT, r"^Layerwise scores for depth pruning: ", r"^Dropping layers \["),
    _rule(Kind.RESULT, r"\biteration +\d+ */ *\d+ \|.*loss: "),
    _rule(Kind.RESULT, r"^[┏┃┡│└].*[┓┃┩│┘]\s*$"),
    _rule(Kind.LIBRARY_WARNING, r"^\[NeMo W ", r"^W\d{4} \d\d:", r"^\S+:\d+: \w*Warning: ", r"^WARNING\b", r"^DEPRECATED\b"),
)  # fmt: skip

_COLOURS = re.compile(r"\x1b\[[\d;]*m")
# Every line of an uncaught exception once torch.distributed is set up (torch/distributed/distributed_c10d.py:1922-1935).
_RANK = re.compile(r"^\[rank\d+\]: ?")


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    text: str  # what a cell shows: the line itself, or a phase's label
    rule: Rule | None = None


def classify(line: str) -> Verdict:
    """The kind of one line of output (without its newline), and what a cell shows of it."""
    plain = _plain(line)
    for rule in RULES:
        if match := rule.pattern.search(plain):
            fields = {name: float(value) if name == "seconds" else value for name, value in match.groupdict().items()}
            return Verdict(rule.kind, rule.label.format(**fields) if rule.label else line, rule)
    return Verdict(Kind.LOG, line)


def _plain(line: str) -> str:
    return _RANK.sub("", _COLOURS.sub("", line))


def pieces(line: str) -> list[str]:
    """A line split after a leading progress bar, so that a line glued to the bar is classified on its own."""
    bar = _BAR.match(line)
    if bar and line[bar.end() :].strip():
        return [line[: bar.end()], line[bar.end() :]]
    return [line]


class Screen:
    """Writes what a cell shows of a command's output, fed one line at a time, and counts the rest.

    A progress line stays open (no newline) and the next one replaces it (a carriage return), as notebooks
    and terminals draw bars; a phase shows the minutes and seconds since the command began.
    """

    def __init__(self, write: Callable[[str], object] | None = None, clock: Callable[[], float] = time.monotonic):
        self._write, self._clock = write or _stdout, clock
        self._started = clock()
        self._bar_open = False
        self._shown: set[object] = set()
        self.lines = self.library_warnings = 0

    def __call__(self, line: str) -> None:
        self.lines += 1
        for piece in pieces(line.rstrip("\r\n")):
            self._show(classify(piece))

    def _show(self, verdict: Verdict) -> None:
        if verdict.kind == Kind.LIBRARY_WARNING:
            self.library_warnings += 1
        if verdict.kind not in SHOWN or not self._first(verdict):
            return
        if verdict.kind == Kind.PROGRESS:
            self._write(("\r" if self._bar_open else "") + verdict.text)
            self._bar_open = True
            return
        self.end_bar()
        self._write((f"[{self.elapsed()}] {verdict.text}" if verdict.kind == Kind.PHASE else verdict.text) + "\n")

    def _first(self, verdict: Verdict) -> bool:
        """Whether to show it: what a rule shows once, and an error or warning every rank prints, show the first time."""
        if verdict.rule and verdict.rule.once:
            key = verdict.rule
        elif verdict.kind in (Kind.ERROR, Kind.WARNING):
            key = _plain(verdict.text)
        else:
            return True
        if key in self._shown:
            return False
        self._shown.add(key)
        return True

    def elapsed(self) -> str:
        minutes, seconds = divmod(int(self._clock() - self._started), 60)
        return f"{minutes}:{seconds:02d}"

    def end_bar(self) -> None:
        """End an open progress line, so that what follows starts on a line of its own."""
        if self._bar_open:
            self._write("\n")
            self._bar_open = False

    def finish(self, log: Path) -> None:
        """The closing line: the command is done, and where its full output is."""
        self.end_bar()
        warnings = f", {self.library_warnings} of them warnings of the libraries" if self.library_warnings else ""
        self._write(f"[{self.elapsed()}] done; full output ({self.lines} lines{warnings}): {log}\n")


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
