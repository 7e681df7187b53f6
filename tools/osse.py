"""How much can this network tell about district totals? An OSSE on a finished demo run.

    python tools/osse.py RUN_DIR [--truth noise|prior|errors] [--draws 20] [--set key=value ...]
                         [--month 2025-01] [--transport truth|inversion]

The same as ``gzcarbon osse RUN_DIR ...``: the code lives in :mod:`gzcarbon.cli.osse` (importable,
documented there and in docs/inversion.md, "Honest validation"); this file keeps the documented
command and exposes the module's functions (``sample_prior``, ``coverage``, ...) to the scripts and
tests that load it by path.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout without `pip install -e .`

from gzcarbon.cli import osse as _osse  # noqa: E402

globals().update({k: v for k, v in vars(_osse).items() if not k.startswith("__")})

if __name__ == "__main__":
    sys.exit(_osse.main())
