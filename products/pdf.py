"""The report as PDF, beside the HTML, when a PDF engine is available.

Engines, in the order tried by ``engine="auto"``:

- ``weasyprint`` — the optional extra ``pip install gzcarbon[pdf]`` (needs the Pango libraries;
  Debian: ``apt-get install -y libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0``; installed
  without them it cannot be imported, and ``auto`` goes on to Chromium);
- ``chromium`` — headless Chromium's own command line (Debian: ``apt-get install -y chromium``):
  ``chromium --headless --no-sandbox --disable-gpu --print-to-pdf=<pdf> --no-pdf-header-footer
  file://<html>`` with a throw-away profile and Chromium's background networking switched off.

When neither is installed the PDF is skipped with a logged note and ``None`` is returned; the
HTML report is the product, the PDF a convenience.

    python -m products.pdf results/2025-01/report.html      # -> results/2025-01/report.pdf
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from gzcarbon.atomic import atomic_write

log = logging.getLogger(__name__)

ENGINES = ("weasyprint", "chromium")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
#: headless, no sandbox (root in containers), and none of Chromium's own network traffic (updates,
#: sync, time queries): the page is printed offline.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
)
CHROMIUM_TIMEOUT_S = 120.0


class PdfError(RuntimeError):
    """A PDF engine ran but did not produce the PDF; the message names the file and the cause."""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable ($GZ_CHROMIUM first, then PATH, then /usr/bin)."""
    env = os.environ.get("GZ_CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in CHROMIUM_NAMES:
        p = shutil.which(name)
        if p:
            return p
    for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"):
        if Path(p).is_file():
            return p
    return None


def chromium_command(exe: str, html_path: Path, pdf: Path, profile: str) -> list[str]:
    """The command line that prints ``html_path`` to ``pdf`` (A4 and margins from the page's CSS)."""
    return [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={pdf}",
            "--no-pdf-header-footer", html_path.resolve().as_uri()]


PANGO_HINT = ("its system libraries are missing (Debian/Ubuntu: apt-get install -y libpango-1.0-0 "
              "libpangoft2-1.0-0 libharfbuzz-subset0; conda: conda install -c conda-forge weasyprint)")


def weasyprint_problem() -> str | None:
    """None when WeasyPrint imports here; otherwise why it cannot be used: not installed, or
    installed without the Pango libraries it loads at import (``OSError: cannot load library``),
    as on a fresh machine after ``pip install gzcarbon[pdf]`` alone."""
    if importlib.util.find_spec("weasyprint") is None:
        return "not installed (pip install 'gzcarbon[pdf]')"
    # quiet before the import: WeasyPrint parses its own stylesheets when imported
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    try:
        import weasyprint  # noqa: F401
    except (OSError, ImportError) as err:
        return f"installed but cannot be imported: {PANGO_HINT} ({type(err).__name__}: {err})"
    return None


def available_engines() -> list[str]:
    """The PDF engines that work here, in order of preference (WeasyPrint only when it imports:
    without its libraries ``auto`` goes on to Chromium instead of failing)."""
    out = []
    problem = weasyprint_problem()
    if problem is None:
        out.append("weasyprint")
    elif "cannot be imported" in problem:
        log.info("PDF engine weasyprint %s", problem)
    if find_chromium():
        out.append("chromium")
    return out


def _offline_fetcher(urls):
    """A WeasyPrint URL fetcher that loads data: and file: URLs only (the PDF never goes online)."""
    if hasattr(urls, "URLFetcher"):  # WeasyPrint >= 66
        return urls.URLFetcher(allowed_protocols={"data", "file"})

    def fetch(url, *args, **kwargs):  # older WeasyPrint: a plain function
        if not url.startswith(("data:", "file:")):
            raise ValueError(f"URI uses disallowed protocol: {url}")
        return urls.default_url_fetcher(url, *args, **kwargs)

    return fetch


def _weasyprint(html_path: Path, tmp: Path) -> None:
    import weasyprint
    import weasyprint.urls

    weasyprint.HTML(filename=str(html_path), base_url=str(html_path.parent),
                    url_fetcher=_offline_fetcher(weasyprint.urls)).write_pdf(str(tmp))


def _chromium(html_path: Path, tmp: Path, timeout: float = CHROMIUM_TIMEOUT_S) -> None:
    exe = find_chromium()
    if not exe:
        raise PdfError("no Chromium found; install it (Debian: apt-get install -y chromium) "
                       "or set GZ_CHROMIUM to its path.")
    with tempfile.TemporaryDirectory(prefix="gz-chromium-") as profile:
        cmd = chromium_command(exe, html_path, tmp, profile)
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise PdfError(f"{html_path}: Chromium did not print within {timeout:.0f} s.") from err
    if proc.returncode != 0 or not tmp.is_file():
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise PdfError(f"{html_path}: Chromium exited with status {proc.returncode} without writing the "
                       f"PDF ({tail or 'no message'}).")


def write_pdf(html_path, pdf_path=None, engine: str = "auto") -> Path | None:
    """Print `html_path` to `pdf_path` (default: same name, .pdf) atomically.

    ``engine``: ``auto`` (first available of ENGINES), ``weasyprint``, ``chromium`` or ``none``.
    Returns the PDF path, or None when PDF output is off or no engine is installed (logged).
    A named engine that is not installed raises RuntimeError saying what to install.
    """
    html_path = Path(html_path)
    if engine == "none":
        log.info("PDF output is off (engine 'none'); only %s was written.", html_path)
        return None
    if engine not in ("auto", *ENGINES):
        raise ValueError(f"PDF engine {engine!r} unknown; use one of auto, none, {', '.join(ENGINES)}.")
    have = available_engines()
    if engine == "auto":
        if not have:
            log.info("PDF skipped: no PDF engine installed. Install the extra "
                     "(pip install 'gzcarbon[pdf]', i.e. weasyprint) or Chromium "
                     "(apt-get install -y chromium) to get %s beside the HTML.",
                     html_path.with_suffix(".pdf").name)
            return None
        engine = have[0]
    elif engine not in have:
        hint = ((weasyprint_problem() or "not installed (pip install 'gzcarbon[pdf]')")
                if engine == "weasyprint"
                else "not installed; apt-get install -y chromium (or set GZ_CHROMIUM)")
        raise RuntimeError(f"PDF engine {engine!r} is {hint}.")
    out = Path(pdf_path) if pdf_path else html_path.with_suffix(".pdf")

    def write(tmp: Path) -> None:
        {"weasyprint": _weasyprint, "chromium": _chromium}[engine](html_path, tmp)
        with open(tmp, "rb") as fh:
            if fh.read(5) != b"%PDF-":
                raise PdfError(f"{engine} wrote {tmp} but it is not a PDF.")

    atomic_write(out, write)
    log.info("wrote %s with %s (%.0f kB)", out, engine, out.stat().st_size / 1024)
    return out


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Print the monthly HTML report to PDF.")
    ap.add_argument("html")
    ap.add_argument("pdf", nargs="?")
    ap.add_argument("--engine", default="auto", choices=("auto", "none", *ENGINES))
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return 0 if write_pdf(a.html, a.pdf, a.engine) else 1


if __name__ == "__main__":
    sys.exit(main())
