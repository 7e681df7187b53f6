#!/usr/bin/env bash
# Run the Guangzhou CO2 flux pipeline for the previous calendar month (or the month given).
#
#   deploy/run-monthly.sh                 # previous month, local cores (GZ_CORES, default 4)
#   deploy/run-monthly.sh 2025-01         # a given month
#   GZ_PROFILE=workflow/profiles/slurm deploy/run-monthly.sh   # submit the jobs to SLURM
#
# Environment (all optional):
#   GZ_REPO      checkout of the pipeline (default: the directory above this script)
#   GZ_SNAKEMAKE snakemake executable     (default: snakemake on PATH)
#   GZ_CORES     local cores              (default: 4; ignored with GZ_PROFILE)
#   GZ_PROFILE   Snakemake profile dir    (e.g. workflow/profiles/slurm)
#   GZ_CONFIG    extra config file        (e.g. /etc/gzcarbon/operations.yaml: demo: false, inputs, budgets)
#   GZ_ARGS      extra snakemake arguments
# A second run while one is still going exits at once (flock on .snakemake/monthly.lock).
set -euo pipefail

repo="${GZ_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
snakemake="${GZ_SNAKEMAKE:-snakemake}"
# first day of this month minus one month: safe on any day (unlike `date -d 'last month'` on the 31st)
month="${1:-$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%Y-%m)}"
if [[ ! "$month" =~ ^[0-9]{4}-(0[1-9]|1[0-2])$ ]]; then
    echo "run-monthly: month must be YYYY-MM, got '$month'" >&2
    exit 2
fi

cd "$repo"
mkdir -p .snakemake logs
args=(--config "month=$month" --rerun-incomplete)
if [[ -n "${GZ_PROFILE:-}" ]]; then
    args=(--profile "$GZ_PROFILE" "${args[@]}")
else
    args=(--cores "${GZ_CORES:-4}" "${args[@]}")
fi
if [[ -n "${GZ_CONFIG:-}" ]]; then
    args=(--configfile "$GZ_CONFIG" "${args[@]}")
fi
# shellcheck disable=SC2206
args+=(${GZ_ARGS:-})

exec 9>".snakemake/monthly.lock"
if ! flock -n 9; then
    echo "run-monthly: another monthly run holds .snakemake/monthly.lock; not starting." >&2
    exit 75
fi
echo "run-monthly: $(date -u +%FT%TZ) month=$month: $snakemake ${args[*]}"
"$snakemake" "${args[@]}"
echo "run-monthly: $(date -u +%FT%TZ) done: month $month (report: <results_dir>/$month/report.html)"
