import sys

from helpers.distill.cli import main

sys.exit(main())
