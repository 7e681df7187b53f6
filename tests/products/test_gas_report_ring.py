"""The report's CH4/CO section names the outer ring of a nested run (outer.csv beside districts.csv)."""

import pandas as pd

from products.gas_report import ring_sentence


def test_ring_sentence_gives_the_ring_row_of_outer_csv(tmp_path):
    p = tmp_path / "outer.csv"
    pd.DataFrame({"name": ["outer ring", "Foshan"], "kind": ["ring", "city"], "prior_t": [18219.94, 222.3],
                  "posterior_t": [18170.81, 222.2], "prior_sigma_t": [808.09, 15.4],
                  "posterior_sigma_t": [805.84, 15.4], "truth_t": [17838.44, 213.7]}).to_csv(p, index=False)
    s = ring_sentence(p, "ch4")
    assert "prior 18,219.9 ± 808.1 t" in s["en"] or "prior 18219.9 ± 808.1 t" in s["en"]
    assert "17,838.4" in s["en"] or "17838.4" in s["en"]
    assert "18170.8" in s["zh"].replace(",", "") and "Foshan" not in s["en"]
    assert ring_sentence(tmp_path / "missing.csv", "co") is None
