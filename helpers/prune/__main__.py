import sys

from helpers.prune.cli import main

sys.exit(main())
