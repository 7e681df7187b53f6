"""Cost of the demo truth's own transport: HYSPLIT-STILT trajectory time of one receptor with the
inversion's settings and with the truth's (more particles, wind and mixed-layer-height errors).

    python benchmarks/truth_transport.py [--hours 24] [--repeat 1]

Writes the demo met of two days (default domain, gzcarbon.demo.met) to a temporary directory and
times ``stilt.run_trajectories`` (wall, and the CPU time of the HYSPLIT child process, which
does not depend on the machine's load) for one YXU receptor: numpar 100 (the inversion), 100 + wind
errors, 100 + mixed-layer errors, 150 and 200 without errors, and the truth's default
(gzcarbon.demo.truth_errors.TruthTransport). Prints seconds and the ratio to the inversion's run.
Run it on an idle machine: wall times scale with the load (docs/demo.md, Cost).
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=int, default=24, help="hours back (default 24)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)

    import stilt

    from gzcarbon.config import MetConfig
    from gzcarbon.demo.met import write_met_day
    from gzcarbon.demo.truth_errors import TruthTransport

    tt = TruthTransport()
    wind = {k: getattr(tt, k) for k in ("siguverr", "tluverr", "zcoruverr", "horcoruverr")}
    zi = {k: getattr(tt, k) for k in ("sigzierr", "tlzierr", "horcorzierr")}
    runs = [("inversion: numpar 100", {"numpar": 100, "seed": 7}),
            ("100 + wind errors", {"numpar": 100, "seed": 7, **wind}),
            ("100 + mixed-layer errors", {"numpar": 100, "seed": 7, **zi}),
            ("150, no errors", {"numpar": 150, "seed": 1007}),
            ("200, no errors", {"numpar": 200, "seed": 1007}),
            (f"truth default: {tt.numpar} + both errors", {"numpar": tt.numpar, "seed": tt.seed,
                                                           **tt.hysplit_params()})]
    with tempfile.TemporaryDirectory() as d:
        bounds = MetConfig().model_dump()
        for day in ("2024-12-31", "2025-01-01"):
            write_met_day(Path(d) / f"{day.replace('-', '')}_gz.arl", day, bounds, seed=1)
        met = {"directory": d, "file_format": "%Y%m%d_gz.arl", "file_tres": "1D"}
        rec = stilt.PointReceptor(time="2025-01-01 06:00", longitude=113.28, latitude=23.13, altitude=50)
        print(f"load average at start: {os.getloadavg()[0]:.1f}")
        base = None
        for name, kw in runs:
            best, cpu = float("inf"), float("inf")
            for _ in range(args.repeat):
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                stilt.run_trajectories(rec, met, n_hours=-args.hours, krand=2, **kw)
                best = min(best, time.perf_counter() - t)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = min(cpu, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
            base = base or cpu
            print(f"{name:<40} wall {best:7.1f} s   HYSPLIT CPU {cpu:7.1f} s   x{cpu / base:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
