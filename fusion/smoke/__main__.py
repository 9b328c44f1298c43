"""`python -m fusion.smoke`: the same as `fusion smoke`."""

import sys

from fusion.smoke.cli import main

sys.exit(main())
