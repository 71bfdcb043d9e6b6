"""Fills in the blocked records' workbook the way a clerk would in a spreadsheet program
(openpyxl, which rewrites the whole file), from the office's own files: the corrections file
`salur demo --write-batch` wrote next to the batch (a `row` column, then one column per field
by its English key, filled where the value must change). Each workbook row is matched to its
correction by the `baris` column (the record's row in the batch file); the corrected values go
into the field's column, whether it is marked yellow or masked. With `bad`, the first record's
amount is typed as words as well, which must refuse the whole file.

Usage:
  fill_fixes.py IN.xlsx OUT.xlsx CORRECTIONS.csv good|bad
      prints JSON: rows filled, cells written, corrections left unused (their rows)
  fill_fixes.py --show CORRECTIONS.csv ROW
      prints the correction of one row as JSON {field key: value}"""
import csv
import json
import sys

# The workbook's column headers (as intake names them) by the corrections file's field keys.
HEADERS = {
    "nik": "nik",
    "kk": "no_kk",
    "name": "nama",
    "mother_name": "nama_ibu_kandung",
    "birth_place": "tempat_lahir",
    "birth_date": "tanggal_lahir",
    "sex": "jenis_kelamin",
    "address": "alamat",
    "region_code": "kode_wilayah",
    "phone": "no_hp",
    "bank_code": "kode_bank",
    "account_number": "no_rekening",
    "amount": "nominal",
}


def corrections(path):
    with open(path, newline="", encoding="utf-8") as f:
        out = {}
        for rec in csv.DictReader(f):
            row = int(rec.pop("row"))
            out[row] = {k: v for k, v in rec.items() if v != ""}
        return out


if sys.argv[1] == "--show":
    print(json.dumps(corrections(sys.argv[2])[int(sys.argv[3])]))
    sys.exit(0)

import openpyxl  # noqa: E402 (only the filling needs it)

src, dst, fixes_path, mode = sys.argv[1:5]
fixes = corrections(fixes_path)
wb = openpyxl.load_workbook(src)
ws = wb.worksheets[0]
header = [c.value for c in ws[1]]
row_col = header.index("baris") + 1
amount = header.index("nominal") + 1
column = {key: header.index(name) + 1 for key, name in HEADERS.items()}
rows = cells = 0
used = set()
for r in range(2, ws.max_row + 1):
    baris = ws.cell(row=r, column=row_col).value
    if baris is None:
        continue
    baris = int(float(baris))
    if baris not in fixes:
        sys.exit(f"fill_fixes: the workbook's row {r} (baris {baris}) has no correction")
    for key, value in fixes[baris].items():
        ws.cell(row=r, column=column[key]).value = value
        cells += 1
    used.add(baris)
    rows += 1
if mode == "bad":
    ws.cell(row=2, column=amount).value = "enam ratus ribu"
if rows == 0:
    sys.exit("fill_fixes: no record in the workbook")
wb.save(dst)
print(json.dumps({"rows": rows, "cells": cells, "unused": sorted(set(fixes) - used)}))
