"""Build real workbooks from the Kaggle CSVs at test time (never stored in the repo)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd

KAGGLE = {"train": "train.csv", "test": "test.csv", "gender_submission": "gender_submission.csv"}


def kaggle_frame(titanic: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(titanic / KAGGLE[name])


def write_kaggle(
    titanic: Path, name: str, fmt: str, out_dir: Path, title: str | None = None
) -> Path:
    """Write one Kaggle file as ``fmt`` (xlsx, ods, xls or csv), optionally under a title row."""
    out = out_dir / f"{name}.{fmt}"
    if fmt == "csv":
        shutil.copyfile(titanic / KAGGLE[name], out)
        return out
    frame = kaggle_frame(titanic, name)
    start = 2 if title else 0
    if fmt == "xls":
        _write_xls(frame, out, title)
        return out
    if fmt == "ods":
        if title:
            raise ValueError("title rows are written for xlsx and xls only")
        # pandas-stubs lists only openpyxl and xlsxwriter; pandas writes .ods with odf.
        frame.to_excel(out, sheet_name="Passengers", index=False, engine="odf")  # type: ignore[arg-type]
        return out
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name="Passengers", index=False, startrow=start)
        if title:
            writer.sheets["Passengers"].cell(row=1, column=1, value=title)
    return out


def _write_xls(frame: pd.DataFrame, out: Path, title: str | None) -> None:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Passengers")
    start = 0
    if title:
        sheet.write(0, 0, title)
        start = 2
    for col, name in enumerate(frame.columns):
        sheet.write(start, col, name)
    for row, record in enumerate(frame.itertuples(index=False), start=start + 1):
        for col, value in enumerate(record):
            if isinstance(value, float) and math.isnan(value):
                continue
            sheet.write(row, col, value.item() if hasattr(value, "item") else value)
    book.save(str(out))


def passenger_csv(path: Path, rows: list[list[object]]) -> Path:
    """A train_data CSV of ``rows`` (see tests.unit.conftest.passenger), every cell quoted."""
    from tests.unit.conftest import TRAIN_HEADER

    lines = [",".join(TRAIN_HEADER)]
    lines += [",".join("" if v is None else f'"{v}"' for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
