import sys

from helpers.run.stack import pause_garbage_collection

pause_garbage_collection()  # through every import, until NeMo's stack is in (helpers/run/stack.py)
from helpers.conversion.cli import main  # noqa: E402

sys.exit(main())
