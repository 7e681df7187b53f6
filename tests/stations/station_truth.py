"""Helper of the stations tests: a small, smooth truth_signal.csv-like table."""
import numpy as np
import pandas as pd


def make_truth(sites, days=1, seed=0, start="2025-01-01", noise_ppm=0.3):
    """truth_signal.csv-like table: smooth background + diurnal enhancement + small noise."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(start, periods=24 * days, freq="h")
    rows = []
    for s in sites:
        for i in s["inlets"]:
            h = float(i["height"])
            lt = (hours.hour + 8) % 24
            bg = 420 + 0.5 * np.sin(np.arange(len(hours)) / 10)
            enh = 4.0 * (1 + np.cos(2 * np.pi * (lt - 4) / 24)) * (50 / h) ** 0.3
            rows.append(pd.DataFrame({
                "site": s["id"], "intake_height": h, "time": hours.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "background": bg, "enhancement": enh, "noise": rng.normal(0, noise_ppm, len(hours)),
                "source": "proxy"}))
    return pd.concat(rows, ignore_index=True)
