"""The command line: python3 -m outpost_client [options] submit|cancel|wait|watch ...

Exit statuses as `outpost submit --wait`: 0 SUCCEEDED, 1 FAILED, 2 bad options, 3 TIMED_OUT,
4 CANCELLED, 5 REJECTED, 6 EXPIRED, 7 no end within --wait-timeout, 8 Kafka error; cancel --wait:
0 once the run ended CANCELLED, 9 when it ended otherwise.
"""

import argparse
import json
import re
import sys

from confluent_kafka import KafkaException
from google.protobuf import json_format

from .client import Client, ExitStatus, WaitTimeout, event_pb2, exit_status_of


def seconds(text):
    """'90', '30s', '5m', '2h', '1d' or '500ms' as seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration such as 30s or 5m: {text!r}")
    unit = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return float(m.group(1)) * unit


def pairs(values, flag):
    out = {}
    for kv in values or []:
        k, eq, v = kv.partition("=")
        if not eq or not k:
            raise SystemExit(f"{flag} takes NAME=VALUE, not {kv!r}")
        out[k] = v
    return out


def describe(event, state_name):
    line = f"run {event.run_id} {state_name}"
    if event.duration_ms:
        line += f" in {event.duration_ms / 1000:.3f} s"
    if event.worker_id:
        line += f" on worker {event.worker_id}"
    if event.state in (event_pb2.SUCCEEDED, event_pb2.FAILED) and event.exit_code >= 0:
        line += f": exit {event.exit_code}"
    if event.message:
        line += f": {event.message}"
    return line


def wait_and_report(client, run_id, args, verb, since_ms=None):
    def on_event(e):
        if getattr(args, "follow_logs", False) and e.state == event_pb2.LOG:
            for line in e.log_lines:
                print(line, flush=True)

    try:
        end = client.wait(run_id, timeout=args.wait_timeout, on_event=on_event, since_ms=since_ms)
    except WaitTimeout as e:
        print(f"outpost_client {verb}: {e}", file=sys.stderr)
        return ExitStatus.WAIT_TIMED_OUT
    if end.state == event_pb2.NOTICE:  # a cancel after the run had ended
        print(f"run {run_id} ended before the cancel ({end.message})", file=sys.stderr)
        return ExitStatus.ALREADY_ENDED
    print(describe(end, event_pb2.RunState.Name(end.state)), file=sys.stderr)
    if end.state != event_pb2.SUCCEEDED and end.log_tail and not getattr(args, "follow_logs", False):
        print("---- the end of its output ----", file=sys.stderr)
        print(end.log_tail.rstrip("\n"), file=sys.stderr)
    if verb == "cancel":
        return ExitStatus.SUCCEEDED if end.state == event_pb2.CANCELLED else ExitStatus.ALREADY_ENDED
    return exit_status_of(end.state)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m outpost_client",
                                description="Submit, cancel, wait for and watch Outpost runs")
    p.add_argument("-b", "--bootstrap", required=True, help="Kafka bootstrap servers")
    p.add_argument("--prefix", default="outpost.", help="the topics' prefix (topics.prefix)")
    p.add_argument("-X", dest="kafka", action="append", default=[],
                   help="a librdkafka setting NAME=VALUE (e.g. security.protocol=SSL)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("submit", help="write a JobCommand; print its run_id")
    s.add_argument("-t", "--job-type", required=True)
    s.add_argument("-a", "--arg", action="append", help="template argument NAME=VALUE")
    s.add_argument("-e", "--env", action="append", help="environment NAME=VALUE")
    s.add_argument("-l", "--label", action="append", help="label NAME=VALUE")
    s.add_argument("-r", "--recipe-file", help="file whose bytes become the recipe")
    s.add_argument("--job-id")
    s.add_argument("--run-id")
    s.add_argument("--pool")
    s.add_argument("--timeout", type=seconds, help="the run's time limit, e.g. 10m")
    s.add_argument("--start-within", type=seconds, help="deadline to start, e.g. 5m")
    s.add_argument("--requested-by")

    c = sub.add_parser("cancel", help="ask the worker holding a run to stop it")
    c.add_argument("--run", required=True)
    c.add_argument("--reason", default="")

    w = sub.add_parser("wait", help="wait for a run's end; exit with its status")
    w.add_argument("--run", required=True)
    w.add_argument("--since-ms", type=int, help="read events from this Unix time (ms)")

    for cmd in (s, c, w):
        if cmd is not w:
            cmd.add_argument("-w", "--wait", action="store_true", help="wait for the run's end")
        cmd.add_argument("--wait-timeout", type=seconds, help="give up waiting after this long")
        if cmd is not c:
            cmd.add_argument("--follow-logs", action="store_true",
                             help="print the run's output lines as they come")

    for cmd in (s, c):
        cmd.add_argument("--sign-key", help="sign with this private key (PKCS#8 PEM, Ed25519 or "
                         "P-256; see outpost keygen)")
        cmd.add_argument("--kid", help="the key's id in the workers' trusted keys")
        cmd.add_argument("--sign-lifetime", type=seconds, default=300,
                         help="how long the signature is valid (default 5m)")
        cmd.add_argument("--sign-pool", action="append",
                         help="a pool the command may run in (default: --pool)")

    t = sub.add_parser("watch", help="print run events as JSON lines as they come")
    t.add_argument("--run")
    t.add_argument("--since-ms", type=int)
    t.add_argument("--timeout", type=seconds)

    args = p.parse_args(argv)
    signer = None
    if getattr(args, "sign_key", None):
        if not args.kid:
            p.error("--sign-key needs --kid")
        from .signing import Signer  # PyJWT only when signing
        signer = Signer(args.sign_key, args.kid, lifetime=args.sign_lifetime,
                        pools=args.sign_pool)
    client = Client(args.bootstrap, prefix=args.prefix, kafka=pairs(args.kafka, "-X"),
                    signer=signer)
    try:
        if args.command == "submit":
            recipe = open(args.recipe_file, "rb").read() if args.recipe_file else None
            run_id = client.submit(args.job_type, args=pairs(args.arg, "--arg"),
                                   env=pairs(args.env, "--env"), labels=pairs(args.label, "--label"),
                                   recipe=recipe, job_id=args.job_id, run_id=args.run_id,
                                   pool=args.pool, timeout=args.timeout,
                                   start_within=args.start_within, requested_by=args.requested_by)
            print(run_id, flush=True)
            return wait_and_report(client, run_id, args, "submit") if args.wait else 0
        if args.command == "cancel":
            print(client.cancel(args.run, reason=args.reason), flush=True)
            return wait_and_report(client, args.run, args, "cancel") if args.wait else 0
        if args.command == "wait":
            return wait_and_report(client, args.run, args, "wait", since_ms=args.since_ms)
        for event in client.watch(args.run, since_ms=args.since_ms, timeout=args.timeout):
            print(json.dumps(json_format.MessageToDict(event, preserving_proto_field_name=True)),
                  flush=True)
        return 0
    except KafkaException as e:
        print(f"outpost_client {args.command}: {e}", file=sys.stderr)
        return ExitStatus.KAFKA
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
