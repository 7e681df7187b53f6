"""The demo world: a synthetic Guangzhou that writes the same formats a real network produces.

Meteorology (ARL), raw analyser files, the inventory and the truth, power dispatch and the true
signal the synthetic analysers measure. This package sits *above* the stages: it may import them
(their writers), they never import it (tests/test_architecture.py), so no stage knows whether its
input came from the demo. Its rules are all in workflow/rules/demo.smk.
"""
