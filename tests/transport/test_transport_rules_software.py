"""Every rule that runs HYSPLIT-STILT re-runs when pystilt or HYSPLIT changes (issue 23, item 1).

The footprint rules carry the pystilt/HYSPLIT identity (``TRANSPORT_SOFTWARE``: pystilt's version,
HYSPLIT's version file and a hash of ``hycs_std``) as a param, so Snakemake's params trigger
recomputes their outputs after an upgrade. ``column_rows``, ``mobile_rows`` and the demo's
``demo_columns``/``demo_mobile`` also run HYSPLIT (column and point receptors through
``transport.columns``) but lacked the param: a pystilt upgrade alone left their rows stale.

The rules are read from the workflow as Snakemake parses it (its API, with the column, mobile and
network-design rules switched on), not from the rule files' text.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: the functions that start HYSPLIT runs; a workflow script importing one (or a builder over them)
#: runs transport
RUNNERS = {"run_site_day", "run_receptor", "receptor_footprint", "column_jacobian_row",
           "point_jacobian_row", "column_rows", "mobile_rows", "write_demo_columns",
           "write_demo_track"}

_LOADER = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, OutputSettings, ResourceSettings,
                                      StorageSettings)
cfg = json.loads(sys.argv[1])
with SnakemakeApi(OutputSettings()) as api:
    wapi = api.workflow(resource_settings=ResourceSettings(cores=1),
                        config_settings=ConfigSettings(config=cfg),
                        storage_settings=StorageSettings(),
                        snakefile=Path(sys.argv[2]) / "Snakefile", workdir=Path(sys.argv[3]))
    out = {}
    for r in wapi._workflow.rules:
        params = dict(r.params.items()) if r.params else {}
        out[r.name] = {"script": r.script, "params": sorted(params),
                       "software": params.get("software")}
    ident = wapi._workflow.globals["TRANSPORT_SOFTWARE"]
print("RULES=" + json.dumps({"rules": out, "identity": ident}, default=str))
"""


@pytest.fixture(scope="module")
def parsed_rules(tmp_path_factory):
    work = tmp_path_factory.mktemp("software_rules")
    cfg = {"observations": {"column": {"enabled": True}, "mobile": {"enabled": True}}}
    proc = subprocess.run([sys.executable, "-c", _LOADER, json.dumps(cfg), str(ROOT), str(work)],
                          capture_output=True, text=True, cwd=work, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RULES=")][-1]
    return json.loads(line.removeprefix("RULES="))


def _script_runs_transport(script: Path) -> bool:
    tree = ast.parse(script.read_text())
    return any(isinstance(n, ast.ImportFrom) and {a.name for a in n.names} & RUNNERS
               for n in ast.walk(tree))


def test_every_rule_running_hysplit_carries_the_software_identity(parsed_rules):
    rules, ident = parsed_rules["rules"], parsed_rules["identity"]
    assert "pystilt" in ident and ident["pystilt"]
    running = {}
    for name, r in rules.items():
        if not r["script"]:
            continue
        script = (ROOT / "workflow" / "rules" / r["script"]).resolve()
        if _script_runs_transport(script) or "work_dir" in r["params"]:
            running[name] = r
    # the rules known to run HYSPLIT are found by the criterion (a guard on the criterion itself)
    assert {"footprints", "demo_truth_footprints", "network_footprints", "network_truth_footprints",
            "column_rows", "mobile_rows", "demo_columns", "demo_mobile"} <= set(running)
    # no rule that only reads footprints is taken for one that runs transport
    assert not {"jacobian", "network_jacobian", "inversion", "network_design_month"} & set(running)
    missing = sorted(n for n, r in running.items() if r["software"] is None)
    assert missing == [], f"rules running HYSPLIT without the software param: {missing}"
    for name, r in running.items():
        assert r["software"] == ident, name
