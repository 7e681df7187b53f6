"""``python -m gzcarbon.cli`` = the ``gzcarbon`` command."""

import sys

from . import main

sys.exit(main())
