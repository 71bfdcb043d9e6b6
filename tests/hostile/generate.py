"""Writes the hostile-input corpus (CSV and JSON) and expected.tsv, the answer each file gets.

Run from this directory: python3 generate.py. The Excel cases are built by tests/hostile.rs.
"""
import json

H = "nik,no_kk,nama,nama_ibu_kandung,tempat_lahir,tanggal_lahir,jenis_kelamin,alamat,kode_wilayah,no_hp,kode_bank,no_rekening,nominal"
cols = H.split(",")
R = ["5301011203850001", "5301010101100003", "Yohanes Ndun", "Maria Bria", "Kupang", "12-03-1985", "L",
     "Jl. Timor Raya No. 5", "53.01.01.2001", "081234567890", "002", "", "600000"]


def row(**kw):
    r = list(R)
    for k, v in kw.items():
        r[cols.index(k)] = v
    return ",".join('"%s"' % x.replace('"', '""') if ("," in x or "\n" in x or '"' in x) else x for x in r)


manifest = []


def raw(name, ctype, data, status, typ, line="", rown="", field=""):
    with open(name, "wb") as f:
        f.write(data)
    manifest.append((name, ctype, status, typ, line, rown, field))


def csv(name, lines, status, typ, line="", rown="", field=""):
    raw(name, "text/csv", ("\n".join(lines) + "\n").encode(), status, typ, line, rown, field)


IV = "invalid-value"
csv("csv-nul-in-name.csv", [H, row(nama="Yohanes\x00Ndun")], 422, IV, 2, 1, "name")
csv("csv-nul-in-nik.csv", [H, row(nik="530101\x001203850001")], 422, IV, 2, 1, "nik")
csv("csv-nul-in-amount.csv", [H, row(nominal="600000\x00")], 422, IV, 2, 1, "amount")
csv("csv-bell-in-address.csv", [H, row(alamat="Jl. Timor\x07Raya")], 422, IV, 2, 1, "address")
csv("csv-ansi-escape-in-name.csv", [H, row(nama="\x1b[31mYohanes")], 422, IV, 2, 1, "name")
csv("csv-del-in-name.csv", [H, row(nama="Yohanes\x7f")], 422, IV, 2, 1, "name")
csv("csv-c1-control-in-mother.csv", [H, row(nama_ibu_kandung="Maria\u0085Bria")], 422, IV, 2, 1, "mother_name")
csv("csv-rtl-override-in-name.csv", [H, row(nama="Yohanes \u202eodnN")], 422, IV, 2, 1, "name")
csv("csv-bidi-isolate-in-birth-place.csv", [H, row(tempat_lahir="Kup\u2066ang")], 422, IV, 2, 1, "birth_place")
csv("csv-newline-in-name.csv", [H, row(nama="Yohanes\nNdun")], 422, IV, 2, 1, "name")
csv("csv-nul-on-row-2.csv", [H, row(), row(nik="5301011203850002", nama_ibu_kandung="Ma\x00ria")], 422, IV, 3, 2, "mother_name")
csv("csv-nul-after-100-rows.csv", [H] + [row(nik="53010112038%05d" % i) for i in range(1, 100)] + [row(alamat="Jl.\x00")],
    422, IV, 101, 100, "address")
csv("csv-long-address.csv", [H, row(alamat="A" * 5000)], 422, IV, 2, 1, "address")
csv("csv-long-name.csv", [H, row(nama="N" * 101)], 422, IV, 2, 1, "name")
csv("csv-long-nik.csv", [H, row(nik="1" * 33)], 422, IV, 2, 1, "nik")
csv("csv-long-kk.csv", [H, row(no_kk="2" * 33)], 422, IV, 2, 1, "kk")
csv("csv-long-region.csv", [H, row(kode_wilayah="5" * 33)], 422, IV, 2, 1, "region_code")
csv("csv-long-phone.csv", [H, row(no_hp="0" * 33)], 422, IV, 2, 1, "phone")
csv("csv-long-bank-code.csv", [H, row(kode_bank="0" * 17)], 422, IV, 2, 1, "bank_code")
csv("csv-long-account.csv", [H, row(no_rekening="9" * 41)], 422, IV, 2, 1, "account_number")
csv("csv-long-amount.csv", [H, row(nominal="6" * 41)], 422, IV, 2, 1, "amount")
csv("csv-long-sex.csv", [H, row(jenis_kelamin="L" * 17)], 422, IV, 2, 1, "sex")
csv("csv-long-birth-date.csv", [H, row(tanggal_lahir="1" * 33)], 422, IV, 2, 1, "birth_date")
csv("csv-long-birth-place-multibyte.csv", [H, row(tempat_lahir="é" * 101)], 422, IV, 2, 1, "birth_place")
raw("csv-utf16le-bom.csv", "text/csv", b"\xff\xfe" + (H + "\n" + row() + "\n").encode("utf-16-le"), 400, "not-utf8")
raw("csv-utf16le-no-bom.csv", "text/csv", (H + "\n" + row() + "\n").encode("utf-16-le"), 400, "not-utf8")
raw("csv-utf16be-no-bom.csv", "text/csv", (H + "\n" + row() + "\n").encode("utf-16-be"), 400, "not-utf8")
raw("csv-latin1-name.csv", "text/csv", (H + "\n" + row(nama="José") + "\n").encode("latin-1"), 400, "not-utf8", 2, "", "nama")
csv("csv-missing-columns.csv", [H.replace(",nama_ibu_kandung", ""), row().replace(",Maria Bria", "")], 422,
    "missing-columns", 1, "", "mother_name")
csv("csv-alias-pair.csv", [H + ",amount", row() + ",600000"], 422, "duplicate-column", 1, "", "amount")
csv("csv-case-pair.csv", ["NIK," + H, "5301011203850001," + row()], 422, "duplicate-column", 1, "", "nik")
csv("csv-nul-in-header.csv", [H.replace("nik,", "ni\x00k,", 1), row()], 422, "missing-columns", 1, "", "nik")
csv("csv-header-only.csv", [H], 422, "no-data-rows")
raw("csv-empty.csv", "text/csv", b"", 422, "empty-file")
raw("csv-whitespace-only.csv", "text/csv", b" \n\r\n\t\n", 422, "empty-file")
csv("csv-short-row.csv", [H, row(), "5301011203850009,x"], 400, "malformed-csv", 3)
csv("csv-long-row.csv", [H, row() + ",extra,extra"], 400, "malformed-csv", 2)
raw("csv-zip-body.csv", "text/csv", b"PK\x03\x04\x14\x00\x00\x00garbage", 400, "content-type-mismatch", 1, "", "Content-Type")
raw("csv-json-body.csv", "text/csv", b'[{"nik":"1"}]', 400, "content-type-mismatch", 1, "", "Content-Type")


def rec(**kw):
    d = {"nik": R[0], "no_kk": R[1], "nama": R[2], "nama_ibu_kandung": R[3], "tempat_lahir": R[4],
         "tanggal_lahir": R[5], "jenis_kelamin": R[6], "alamat": R[7], "kode_wilayah": R[8],
         "kode_bank": R[10], "nominal": R[12]}
    d.update(kw)
    return d


def js(name, data, status, typ, line="", rown="", field=""):
    raw(name, "application/json", data if isinstance(data, bytes) else data.encode(), status, typ, line, rown, field)


def dup(first, second):
    return json.dumps(rec())[:-1] + ', "%s": "%s"}' % (first, second)


js("json-nul-escape-in-name.json", json.dumps([rec(nama="Yohanes\u0000Ndun")]), 422, IV, "", 1, "name")
js("json-nul-escape-in-nik.json", json.dumps([rec(), rec(nik="53010112\u00000385")]), 422, IV, "", 2, "nik")
js("json-raw-control-in-string.json", b'[{"nik":"53010\x01"}]', 400, "malformed-json", 1)
js("json-rtl-override.json", json.dumps([rec(nama="\u202eabc")]), 422, IV, "", 1, "name")
js("json-long-address.json", json.dumps([rec(alamat="x" * 10000)]), 422, IV, "", 1, "address")
js("json-long-mother-name.json", json.dumps([rec(nama_ibu_kandung="M" * 101)]), 422, IV, "", 1, "mother_name")
js("json-repeated-nik.json", "[" + dup("nik", "3578015507900002") + "]", 422, "duplicate-column", "", 1, "nik")
js("json-repeated-amount-on-row-2.json", "[" + json.dumps(rec()) + "," + dup("nominal", "9999999") + "]", 422,
   "duplicate-column", "", 2, "amount")
js("json-alias-pair.json", "[" + dup("amount", "600000") + "]", 422, "duplicate-column", "", 1, "amount")
js("json-case-pair.json", "[" + dup("NIK", "5301011203850001") + "]", 422, "duplicate-column", "", 1, "nik")
js("json-empty-array.json", "[]", 422, "no-data-rows")
js("json-whitespace-array.json", "  [ \n ]  ", 422, "no-data-rows")
js("json-object.json", json.dumps(rec()), 422, "json-not-a-batch")
js("json-array-of-numbers.json", "[1,2,3]", 422, "json-not-a-batch", "", 1)
js("json-array-of-arrays.json", "[[1],[2]]", 422, "json-not-a-batch", "", 1)
js("json-nested-value.json", json.dumps([rec(nik={"a": 1})]), 422, "json-not-a-batch", "", 1, "nik")
js("json-bool-value.json", json.dumps([rec(nominal=True)]), 422, "json-not-a-batch", "", 1, "nominal")
js("json-truncated.json", json.dumps([rec()])[:-5], 400, "malformed-json", 1)
js("json-trailing-garbage.json", json.dumps([rec()]) + " x", 400, "malformed-json", 1)
js("json-deep-nesting.json", "[" * 5000 + "]" * 5000, 400, "malformed-json", 1)
js("json-missing-columns.json", json.dumps([{"nik": "1"}]), 422, "missing-columns", "", "", "kk")
raw("json-utf16le.json", "application/json", b"\xff\xfe" + json.dumps([rec()]).encode("utf-16-le"), 400, "not-utf8")
js("json-latin1.json", json.dumps([rec(nama="JOSE")]).replace("JOSE", "Jos\xe9").encode("latin-1"), 400, "not-utf8", 1)
js("json-csv-body.json", H + "\n" + row() + "\n", 400, "content-type-mismatch", 1, "", "Content-Type")

with open("expected.tsv", "w") as f:
    f.write("# file\tcontent-type\tstatus\tproblem type\tline\trow\tfield (empty: the answer has no such member)\n")
    for m in manifest:
        f.write("\t".join(str(x) for x in m) + "\n")
print(len(manifest), "files")
