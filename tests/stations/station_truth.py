"""Helper of the stations tests: a small, smooth truth_signal.csv-like table."""
from gzcarbon.demo.stations import proxy_truth


def make_truth(sites, days=1, seed=0, start="2025-01-01", noise_ppm=0.3):
    """truth_signal.csv-like table: smooth background + diurnal enhancement + small noise."""
    return proxy_truth(sites, days, start, seed, noise_ppm=noise_ppm)
