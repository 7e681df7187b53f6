"""What the subcommands share: the repository, the run's configuration, the month."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

#: the repository holding the Snakefile (the package is installed from it with `pip install -e .`)
REPO = Path(__file__).resolve().parents[2]
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class CliError(RuntimeError):
    """A bad argument or missing file: printed as one line, exit status 2."""


def snakefile() -> Path:
    path = REPO / "Snakefile"
    if not path.is_file():
        raise CliError(f"no Snakefile at {path}: `gzcarbon run` needs the repository checkout it was "
                       "installed from (pip install -e .)")
    return path


def check_month(text: str) -> str:
    if not MONTH.match(text or ""):
        raise CliError(f"month {text!r}: give YYYY-MM, e.g. 2025-01")
    return text


def _merge(base: dict, new: dict) -> dict:
    """Snakemake's merge of config files: nested mappings updated key by key."""
    out = dict(base)
    for k, v in (new or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_config(configfiles=(), month: str | None = None) -> dict:
    """The resolved configuration Snakemake would have: config/config.yaml, then each file of
    ``configfiles`` merged over it, ``month`` as with ``--config month=…`` (it replaces `months`),
    every default filled in and paths checked (gzcarbon.config.validate_config)."""
    from gzcarbon.config import ConfigError, validate_config

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text()) or {}
    for f in configfiles or ():
        if not os.path.isfile(f):
            raise CliError(f"config file {f} does not exist")
        cfg = _merge(cfg, yaml.safe_load(Path(f).read_text()) or {})
    if month:
        cfg["month"], cfg["months"] = check_month(month), []
    try:
        return validate_config(cfg, REPO)
    except ConfigError as err:
        raise CliError(f"configuration error: {err} (config/README.md)") from None


def months_of(cfg: dict) -> list[str]:
    return [str(m) for m in (cfg.get("months") or [cfg["month"]])]
