"""Where the time goes: a command's start-up (until NeMo is imported) is told from its work."""

import sys

from helpers.run import timings
from helpers.run.cell_output import STACK_IMPORTED
from helpers.run.launch import run

# A command that starts up for 0.4 s, then works for 1 s, meanwhile starting a process that imports NeMo too
# (prune's standby re-save): that import overlaps the work and is not start-up.
COMMAND = f"""
import time
time.sleep(0.4)
print({STACK_IMPORTED.format(stack="NeMo", seconds=0.4)!r}, flush=True)
time.sleep(0.6)
print({STACK_IMPORTED.format(stack="NeMo", seconds=0.6)!r}, flush=True)
time.sleep(0.4)
"""


def test_start_up_lasts_until_the_command_has_imported_nemo(tmp_path):
    run([sys.executable, "-c", COMMAND], tmp_path / "02-prune-depth.log")
    run([sys.executable, "-c", "pass"], tmp_path / "04-mmlu-teacher.log")  # no NeMo: all of it is work
    table = timings.commands(tmp_path)
    prune, mmlu = table.loc["02-prune-depth"], table.loc["04-mmlu-teacher"]
    # Lower bounds only (a loaded machine only adds time): the second import taken as start-up would leave
    # work at ~0.4 s.
    assert prune["notebook"] == "02" and prune["startup_s"] >= 0.4 and prune["work_s"] >= 0.95
    assert mmlu["startup_s"] == 0 and mmlu["work_s"] == mmlu["total_s"]


def test_breakdown_puts_each_command_under_its_notebook_and_the_rest_in_the_kernel(tmp_path):
    (tmp_path / timings.RECORDS).write_text(
        '{"log": "02-prune-depth", "startup_s": 30, "total_s": 100, "cpu_s": 150}\n'
        '{"log": "02-export", "startup_s": 25, "total_s": 60, "cpu_s": 60}\n'
        '{"log": "02-export", "startup_s": 20, "total_s": 50, "cpu_s": 50}\n'  # run again: the latest counts
    )
    table = timings.breakdown(tmp_path, {"01_model.ipynb": 40.0, "02_pruning.ipynb": 200.0}, {"01_model.ipynb": 20.0, "02_pruning.ipynb": 300.0})
    assert table.loc["02_pruning.ipynb"].tolist() == [50, 100, 50, 200, 300, 1.5]
    assert table.loc["01_model.ipynb"].tolist() == [0, 0, 40, 40, 20, 0.5]
    assert table.loc["series"].tolist() == [50, 100, 90, 240, 320, 1.33]


# Half a second of computing, then a second of sleeping: wall time and CPU time tell them apart.
BUSY_THEN_IDLE = """
import time
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
time.sleep(1.0)
"""


def test_a_command_records_the_cpu_time_it_used_not_its_wall_time(tmp_path):
    run([sys.executable, "-c", BUSY_THEN_IDLE], tmp_path / "03-busy.log")
    row = timings.commands(tmp_path).loc["03-busy"]
    assert row["total_s"] >= 1.5 and 0.5 <= row["cpu_s"] < 1.2


def test_the_marker_is_what_the_stack_prints():
    assert timings._IMPORTED.match(STACK_IMPORTED.format(stack="NeMo", seconds=12.34)).group("seconds") == "12.3"
