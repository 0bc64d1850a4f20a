import sys

from helpers.series import main

sys.exit(main())
