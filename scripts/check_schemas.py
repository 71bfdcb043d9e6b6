#!/usr/bin/env python3
"""Validate example messages (below, and those in queues/asyncapi.yaml) against queues/schemas/.

Needs the `jsonschema` package (and PyYAML for the AsyncAPI examples); exits 0 with a note if
missing. Usage: python3 scripts/check_schemas.py
"""
import json
import pathlib
import sys

QUEUES = pathlib.Path(__file__).resolve().parent.parent / "queues"
SCHEMAS = QUEUES / "schemas"
BATCH = "0f8e2c1a-3b7d-4e5f-9a6b-1c2d3e4f5a6b"

EXAMPLES = {
    "bank-request.v1.json": {
        "v": 1, "request_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "bank_code": "009",
        "sent_at": "2026-10-07T01:00:00Z", "kind": "transfer",
        "items": [{"item_id": "2201", "idempotency_key": "5e0be0ce-4a9e-504f-b0bb-f0fffab7dc54",
                   "account_number": "0123456789", "account_name": "SITI AMINAH",
                   "amount": {"value": "600000.00", "currency": "IDR"},
                   "description": "BPNT 2026-Q4"}],
    },
    "bank-reply.v1.json": {
        "v": 1, "request_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "bank_code": "009",
        "kind": "transfer", "answered_at": "2026-10-07T01:00:01.250Z",
        "items": [{"item_id": "2201", "status": "ok", "reference": "BNI7710020260001"},
                  {"item_id": "2202", "status": "rejected",
                   "reason": {"code": "ACCOUNT_DORMANT", "message": "account is dormant"}}],
    },
    "stage-message.v1.json": {"v": 1, "stage": "transfer", "batch_id": BATCH, "record_ids": [2201, 2202], "attempt": 2},
    "parked-record.v1.json": {
        "v": 1, "record_id": 2203, "batch_id": BATCH, "row": 14, "stage": "account_opening",
        "state": "blocked",
        "reasons": [{"code": "NIK_BIRTH_DATE_MISMATCH", "field": "birth_date",
                     "message": "birth date disagrees with the NIK"}],
    },
    "transfer-returned.v1.json": {
        "v": 1, "kind": "transfer_returned", "bank_code": "002", "sent_at": "2026-12-01T09:30:00Z",
        "items": [{"idempotency_key": "5e0be0ce-4a9e-504f-b0bb-f0fffab7dc54",
                   "reference": "SIM002000000000917",
                   "amount": {"value": "600000.00", "currency": "IDR"},
                   "reason_code": "AC04", "returned_on": "2026-12-01"}],
    },
    "poison-message.v1.json": {"v": 1, "queue": "salur.stage.transfer",
                               "reason": "not JSON: expected value at line 1 column 1", "raw": "hello"},
}

# Must fail: a transfer item without its idempotency key, an unknown status, an extra stage field.
BAD = [
    ("bank-request.v1.json", {**EXAMPLES["bank-request.v1.json"], "items": [{"item_id": "1"}]}),
    ("bank-reply.v1.json", {**EXAMPLES["bank-reply.v1.json"], "items": [{"item_id": "1", "status": "maybe"}]}),
    ("stage-message.v1.json", {**EXAMPLES["stage-message.v1.json"], "extra": 1}),
    ("transfer-returned.v1.json", {**EXAMPLES["transfer-returned.v1.json"], "items": [
        {**EXAMPLES["transfer-returned.v1.json"]["items"][0], "reason_code": "GONE"}]}),
]


def main() -> int:
    try:
        import jsonschema
    except ImportError:
        print("note: python package `jsonschema` not installed; schemas not checked")
        return 0
    schemas = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    cases = [(name, "embedded", ex) for name, ex in EXAMPLES.items()]
    try:
        import yaml
        doc = yaml.safe_load((QUEUES / "asyncapi.yaml").read_text())
        for mname, msg in doc["components"]["messages"].items():
            name = pathlib.Path(msg["payload"]["$ref"]).name
            for ex in msg.get("examples", []):
                cases.append((name, f"asyncapi {mname}/{ex.get('name')}", ex["payload"]))
    except ImportError:
        print("note: PyYAML not installed; asyncapi.yaml examples not checked")
    failures = 0
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    validators = {}
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        validators[name] = jsonschema.Draft202012Validator(schema, format_checker=checker)
    for name, label, instance in cases:
        errors = list(validators[name].iter_errors(instance))
        for e in errors:
            print(f"FAIL {name} ({label}): {'/'.join(map(str, e.absolute_path))}: {e.message}")
        failures += bool(errors)
    for name, instance in BAD:
        if validators[name].is_valid(instance):
            print(f"FAIL {name}: an invalid example was accepted")
            failures += 1
    print(f"{len(cases)} examples, {len(BAD)} counter-examples, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
