"""Running the steps: every command launched, streamed and timed, every output written whole.

    launch.py       run a command (python -m ..., torchrun) streaming what matters, raising with the log's tail
    cell_output.py  which of a command's lines a notebook cell shows, by kind; the log keeps all
    timings.py      where a series' time goes: each command's start-up and work, read back as a table
    stack.py        importing a route's stack (NeMo 2 or Megatron-Bridge) once, timed
    outputs.py      idempotent outputs: reuse a valid one, replace on request, never leave one half-written
    entry_point.py  what every entry point does alike: shared flags, NeMo's data module, main's sequence
"""
