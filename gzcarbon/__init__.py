"""gzcarbon core: what every stage shares (logging of rule scripts, run locks).

The stage packages (stations, transport, inversion, power, products) import from here; this
package imports none of them and never Snakemake.
"""
