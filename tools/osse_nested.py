"""Does the nested state help? The OSSE of issue 19 on a finished nested demo run.

    python tools/osse_nested.py RUN_DIR [--draws 20] [--seed 1] [--month 2025-01] [--set key=value ...]

The code lives in :mod:`gzcarbon.cli.osse_nested` (documented there and in docs/demo.md, "The
nested OSSE"); this file keeps the documented command.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout without `pip install -e .`

from gzcarbon.cli import osse_nested as _osse_nested  # noqa: E402

if __name__ == "__main__":
    sys.exit(_osse_nested.main())
