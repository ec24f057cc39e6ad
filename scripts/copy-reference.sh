#!/usr/bin/env bash
# Copy a bench's (or run's) report folder into results/reference/, without what is
# machine-local or large: checkpoints, LLM transcripts, the HTML pages (report.md and its PNGs
# say the same; report.html embeds those PNGs again), and a bench's per-run plots and reports
# (each run keeps its changelog.md, summary.json and trials.csv).
# Usage: scripts/copy-reference.sh results/bench/<bench-id> [name]
set -euo pipefail
src=${1:?usage: scripts/copy-reference.sh FOLDER [NAME]}
dest="results/reference/${2:-$(basename "$src")}"
mkdir -p "$dest"
(cd "$src" && find . -type f ! -name checkpoint.db ! -name 'transcript*.jsonl' ! -name report.html ! -path './runs/*/*.png' ! -path './runs/*/report.md' -print0) |
  while IFS= read -r -d '' f; do mkdir -p "$dest/$(dirname "$f")"; cp "$src/$f" "$dest/$f"; done
echo "$dest: $(du -sh "$dest" | cut -f1)"
