"""Fills in the blocked records' workbook the way a clerk would in a spreadsheet program
(openpyxl, which rewrites the whole file): every yellow cell of the mother's-name column gets
a name. With `bad`, the first record's amount is typed as words as well, which must refuse the
whole file. Usage: fill_fixes.py IN.xlsx OUT.xlsx good|bad"""
import sys

import openpyxl

src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
wb = openpyxl.load_workbook(src)
ws = wb.worksheets[0]
header = [c.value for c in ws[1]]
mother = header.index("nama_ibu_kandung") + 1
amount = header.index("nominal") + 1
filled = 0
for row in range(2, ws.max_row + 1):
    cell = ws.cell(row=row, column=mother)
    if cell.fill is not None and cell.fill.fgColor.rgb in ("FFFFE699", "00FFE699"):
        cell.value = "Yohana Bili"
        filled += 1
if mode == "bad":
    ws.cell(row=2, column=amount).value = "enam ratus ribu"
if filled == 0:
    sys.exit("fill_fixes: no highlighted mother's-name cell in the workbook")
wb.save(dst)
print(filled)
