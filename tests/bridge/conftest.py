"""Tests of the Megatron-Bridge route, run in its environment: `PYTHONPATH=. .venv-bridge/bin/python -m pytest tests/bridge`.

The commands they launch run in folders of their own, so the repository goes on their path as an absolute one; the
small models of tests/unit are shared.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit"))
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
