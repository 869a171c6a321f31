#!/usr/bin/env python3
"""Decode what Outpost wrote the way a platform in another language would, strictly.

Reads JSON lines, one record each: {"topic": ROLE, "value": HEX, "headers": {NAME: HEX}},
where ROLE is events, runs, workers, lineage or dlq. Events, run records and worker status are
parsed with Debian's python3-protobuf (which refuses a whole message whose proto3 string fields
are not valid UTF-8), lineage records as UTF-8 JSON, and every header value of a dead letter
written by Outpost (outpost.dlq.*) as UTF-8 text. Prints one JSON object of counts and of what
could not be read; exits 0 either way (the caller judges).

Usage: decode_strict.py --proto-python DIR RECORDS.jsonl
  DIR holds the modules protoc --python_out made of proto/outpost/v1/*.proto.
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto-python", required=True)
    ap.add_argument("records")
    args = ap.parse_args()
    sys.path.insert(0, args.proto_python)
    from google.protobuf.internal import api_implementation
    from outpost.v1 import event_pb2, run_record_pb2, worker_pb2

    parsers = {
        "events": event_pb2.RunEvent,
        "runs": run_record_pb2.RunRecord,
        "workers": worker_pb2.WorkerStatus,
    }
    out = {
        "protobuf_implementation": api_implementation.Type(),
        "read": {},
        "undecodable": [],
        "events": [],
    }
    with open(args.records, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            rec = json.loads(line)
            role = rec["topic"]
            value = bytes.fromhex(rec["value"])
            out["read"][role] = out["read"].get(role, 0) + 1
            try:
                if role in parsers:
                    msg = parsers[role].FromString(value)
                    if role == "events":
                        out["events"].append({
                            "run_id": msg.run_id,
                            "state": event_pb2.RunState.Name(msg.state),
                            "message": msg.message,
                        })
                elif role == "lineage":
                    json.loads(value.decode("utf-8"))
                elif role == "dlq":
                    for name, v in rec.get("headers", {}).items():
                        if name.startswith("outpost.dlq."):
                            bytes.fromhex(v).decode("utf-8")
            except Exception as e:  # what a consumer in Python would hit
                out["undecodable"].append({"record": n, "topic": role,
                                           "error": f"{type(e).__name__}: {e}"[:300]})
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
