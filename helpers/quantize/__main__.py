import sys

from helpers.quantize.cli import main

sys.exit(main())
