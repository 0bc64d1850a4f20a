from helpers.run.entry_point import run_module

run_module("helpers.distill.cli", nemo=True)
