"""Names shared by every stage: the city, the columns of the files at the seams, species."""

from __future__ import annotations

#: Name of the city total in district tables (the row after the 11 districts).
CITY = "Guangzhou"

#: Columns of obs/selected.csv (written by stations.selection, read by the inversion and the
#: products; docs/formats.md).
SELECTED_COLUMNS = ("site", "time", "intake_height", "value", "value_std_dev", "background",
                    "background_sigma")


#: The gases the pipeline inverts (config ``species``). Per gas: molar mass (g/mol), the units of
#: the mole fractions at the seams (hourly files, selected.csv, modelled.csv) and of the molar
#: fluxes on the state grid, and the factor from one flux unit held for one second on one m² to
#: tonnes of the gas (µmol CO2 = 44.01e-12 t; nmol CH4 = 16.043e-15 t; nmol CO = 28.010e-15 t).
#: The CO2 footprints, ppm per (µmol m-2 s-1), are ppb per (nmol m-2 s-1) unchanged, so one
#: Jacobian serves every gas.
GASES = {
    "co2": {"label": "CO2", "name": "carbon dioxide", "molar_mass": 44.01, "obs_units": "ppm",
            "flux_units": "umol m-2 s-1", "flux_units_text": "µmol m⁻² s⁻¹", "mol_per_flux_unit": 1e-6},
    "ch4": {"label": "CH4", "name": "methane", "molar_mass": 16.043, "obs_units": "ppb",
            "flux_units": "nmol m-2 s-1", "flux_units_text": "nmol m⁻² s⁻¹", "mol_per_flux_unit": 1e-9},
    "co": {"label": "CO", "name": "carbon monoxide", "molar_mass": 28.010, "obs_units": "ppb",
           "flux_units": "nmol m-2 s-1", "flux_units_text": "nmol m⁻² s⁻¹", "mol_per_flux_unit": 1e-9},
}


def tonnes_per_flux_unit(gas: str) -> float:
    """Tonnes of ``gas`` emitted by one flux unit (µmol or nmol m-2 s-1) over one m² and one second."""
    g = GASES[gas]
    return g["mol_per_flux_unit"] * g["molar_mass"] * 1e-6
