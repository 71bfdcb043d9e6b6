"""SNAP BI cross-check of salur against BNI's own SDK (bnipython, from PyPI).

1. Signatures: for the same keys, timestamp and body, `salur bank-gateway sign` and
   `sign-token` print exactly what the SDK's signing helpers compute
   (bnipython/lib/util/utils.py: generateSignatureServiceSnapBI, generateTokenSignature).
2. The SDK's own client (bnipython.lib.api.snapBI.SnapBI) calls bank-sim's SNAP server:
   access token, internal account inquiry, intrabank transfer, transfer status; a repeated
   transfer is refused as a duplicate and a client with a wrong secret is refused.

The SDK cannot be imported as a package under Python 3.11: its `__init__` imports
`lib/net/httpClient.py`, which uses a Python 3.12 f-string (`f'Bearer {options['accessToken']}'`,
the same quotes nested, PEP 701). So its modules are loaded one by one from the installed files,
and httpClient.py is compiled with that one expression's inner quotes changed to double quotes
(nothing else changes). Its client only targets BNI's fixed hosts (`env` dev/uat/sandbox/prod in
lib/util/constants.py); `SnapBI.baseUrl`, which its methods read on every call, is set to
bank-sim's address after construction.

Usage: snap_crosscheck.py SALUR_BIN SNAP_URL KEY_PEM CLIENT_KEY SECRET PARTNER_ID
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import types
import uuid

SALUR, SNAP_URL, KEY, CLIENT_KEY, SECRET, PARTNER = sys.argv[1:7]

ROOT = os.path.dirname(importlib.util.find_spec("bnipython").origin)


def package(name, path):
    mod = types.ModuleType(name)
    mod.__path__ = [path]
    sys.modules[name] = mod


def load(name, rel, patch=None):
    path = os.path.join(ROOT, rel)
    source = open(path, encoding="utf-8").read()
    if patch:
        old, new = patch
        assert old in source, f"{rel}: the expression to patch is gone ({old})"
        source = source.replace(old, new)
    mod = types.ModuleType(name)
    mod.__file__ = path
    sys.modules[name] = mod
    exec(compile(source, path, "exec"), mod.__dict__)
    return mod


# The package skeleton without running bnipython/__init__.py.
package("bnipython", ROOT)
package("bnipython.lib", os.path.join(ROOT, "lib"))
package("bnipython.lib.util", os.path.join(ROOT, "lib", "util"))
package("bnipython.lib.net", os.path.join(ROOT, "lib", "net"))
package("bnipython.lib.api", os.path.join(ROOT, "lib", "api"))
utils = load("bnipython.lib.util.utils", "lib/util/utils.py")
load("bnipython.lib.util.constants", "lib/util/constants.py")
load("bnipython.lib.util.response", "lib/util/response.py")
load(
    "bnipython.lib.net.httpClient",
    "lib/net/httpClient.py",
    patch=("f'Bearer {options['accessToken']}'", "f'Bearer {options[\"accessToken\"]}'"),
)
bni_client = load("bnipython.lib.bniClient", "lib/bniClient.py")
snap_bi = load("bnipython.lib.api.snapBI", "lib/api/snapBI.py")

failures = 0


def check(what, ok, detail=""):
    global failures
    print(f"  {'ok  ' if ok else 'FAIL'} {what}{(': ' + detail) if detail else ''}")
    if not ok:
        failures += 1


def salur(*args):
    return subprocess.run([SALUR, "bank-gateway", *args], check=True, capture_output=True, text=True).stdout.strip()


print("1. signatures: salur vs bnipython's utils.py")
for ts in ["2026-11-30T10:00:00+07:00", "2027-01-01T00:00:59+07:00"]:
    sdk = utils.generateTokenSignature({"privateKeyPath": KEY, "clientId": CLIENT_KEY, "timeStamp": ts})
    ours = salur("sign-token", "--key", KEY, "--client-key", CLIENT_KEY, "--timestamp", ts)
    check(f"access-token signature, {ts}", sdk == ours, ours[:24] + "…")

bodies = [
    ("/snap-service/v1/transfer-intrabank", {
        "partnerReferenceNo": "6f1c3a0e-2b1d-5c8e-9f00-1234567890ab",
        "amount": {"value": "600000.00", "currency": "IDR"},
        "beneficiaryAccountNo": "0090000001234", "beneficiaryEmail": "", "currency": "IDR",
        "customerReference": "42", "feeType": "OUR", "remark": "BPNT 2026-Q4",
        "sourceAccountNo": "0090000000001", "transactionDate": "2026-11-30T10:00:00+07:00",
        "additionalInfo": {"deviceId": "salur", "channel": "mobilephone"},
    }),
    ("/snap/v1.0/account-inquiry-internal", {
        "partnerReferenceNo": "1", "beneficiaryAccountNo": "0090000001234",
        "additionalInfo": {"beneficiaryName": "Maria Goreti Ndolu", "note": "Ré \"quoted\" \\ slash"},
    }),
    ("/snap/v1.0/transfer/status", {}),
]
with tempfile.TemporaryDirectory() as tmp:
    for path, body in bodies:
        for token in ["tok-abc", "eyJhbGciOi.JIUzI1NiJ9"]:
            ts = "2026-11-30T10:00:00+07:00"
            sdk = utils.generateSignatureServiceSnapBI({
                "body": body, "method": "POST", "url": path, "accessToken": token,
                "timeStamp": ts, "apiSecret": SECRET,
            })
            f = os.path.join(tmp, "body.json")
            with open(f, "w", encoding="utf-8") as out:
                out.write(json.dumps(body, indent=2))  # not minified: salur minifies
            ours = salur("sign", "--secret", SECRET, "--method", "POST", "--path", path,
                         "--token", token, "--body", f, "--timestamp", ts)
            check(f"X-SIGNATURE POST {path} token {token[:7]}", sdk == ours, ours[:24] + "…")

print("2. bnipython's SnapBI client against bank-sim's SNAP server")


def client(secret):
    c = bni_client.BNIClient({
        "env": "sandbox", "appName": "salur-crosscheck", "clientId": CLIENT_KEY,
        "clientSecret": "unused", "apiKey": PARTNER, "apiSecret": secret,
    })
    s = snap_bi.SnapBI(c, {"privateKeyPath": KEY, "channelId": "95221"})
    s.baseUrl = SNAP_URL  # the SDK has no option for another host (see above)
    return s


snap = client(SECRET)
token = snap.getTokenSnapBI()
check("access token", bool(token), f"{len(token)} characters")
inq = snap.internalAccountInquiry({"partnerReferenceNo": "2020102900000000000001", "beneficiaryAccountNo": "0090000007777"})
check("internal account inquiry", inq["responseCode"] == "2001500" and bool(inq.get("beneficiaryAccountName")),
      f"{inq['responseCode']} {inq.get('beneficiaryAccountName')}")
ref = str(uuid.uuid4())
transfer = {
    "partnerReferenceNo": ref, "amount": {"value": "600000.00", "currency": "IDR"},
    "beneficiaryAccountNo": "0090000007777", "sourceAccountNo": "0090000000001", "transactionDate": "",
    "remark": "crosscheck",
}
paid = snap.transferIntraBank(transfer)
check("intrabank transfer", paid["responseCode"] == "2001700" and bool(paid.get("referenceNo")),
      f"{paid['responseCode']} {paid.get('referenceNo')}")
status = snap.transactionStatusInquiry({
    "originalPartnerReferenceNo": ref, "serviceCode": "17", "transactionDate": "",
    "amount": {"value": "600000.00", "currency": "IDR"},
})
check("transfer status", status["responseCode"] == "2003600" and status.get("latestTransactionStatus") == "00"
      and status.get("originalReferenceNo") == paid.get("referenceNo"),
      f"{status['responseCode']} latestTransactionStatus={status.get('latestTransactionStatus')}")
try:
    snap.transferIntraBank(transfer)
    check("the same transfer again is refused", False, "it was accepted")
except ValueError as e:
    check("the same transfer again is refused", "4091701" in str(e), str(e).strip().replace("\033[91m", "").replace("\033[0m", ""))
try:
    client("wrong-secret").internalAccountInquiry({"partnerReferenceNo": "2", "beneficiaryAccountNo": "0090000007777"})
    check("a wrong client secret is refused", False, "it was accepted")
except ValueError as e:
    check("a wrong client secret is refused", "4011500" in str(e), str(e).strip().replace("\033[91m", "").replace("\033[0m", ""))

if failures:
    print(f"{failures} check(s) failed")
    sys.exit(1)
print("all checks passed")
