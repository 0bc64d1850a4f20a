import sys

from helpers.conversion.cli import main

sys.exit(main())
