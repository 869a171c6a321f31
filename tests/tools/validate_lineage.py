#!/usr/bin/env python3
"""Validate OpenLineage events (JSON lines) against the official JSON schemas, offline.

Outpost emits OpenLineage run events; the tests check them against the upstream spec
files (OpenLineage.json and facets/*.json, Draft 2020-12) kept in the shared test data
($OUTPOST_TESTDATA/openlineage, see tests/support/testdata.h).
Nothing is fetched from the network: every schema is registered under its "$id", and
a "$ref" to anything else is an error.

Usage:
  validate_lineage.py --spec-dir DIR [--facets-dir DIR] [--extra-schema FILE ...]
                      [--project-schemas DIR | --no-project-schemas]
                      [--allow-unknown-facets] [--any-event-schema-url] FILE_OR_DASH...
  validate_lineage.py --spec-dir DIR [--facets-dir DIR] --self-test

Outpost's own facet schemas (lineage/schemas/*.json, e.g. the "outpost" run facet) are
registered too, found next to this script at ../../lineage/schemas (--project-schemas
to point elsewhere, --no-project-schemas to leave them out).

Each input holds one JSON event per line ("-" reads stdin; blank lines are skipped).
Prints "ok N" or "FAIL N: messages" per event, N being the line number (prefixed by
"FILE:" when several inputs are given). Exit 0 if every event is valid, 1 if any is
not (or a schema/ref problem occurred), 2 if no event was read or on a usage error.

Checks per event:
  * the event against OpenLineage.json: the $defs entry its schemaURL names
    (RunEvent, DatasetEvent or JobEvent; guessed from its shape otherwise), then the
    top-level oneOf, so it must be exactly one kind of event;
  * its schemaURL points at the registered OpenLineage.json (unless --any-event-schema-url);
  * every facet in run.facets, job.facets, inputs[].facets, inputs[].inputFacets,
    outputs[].facets, outputs[].outputFacets and dataset.facets against the schema
    its _schemaURL names (the "#/$defs/X" fragment, or the facet's property in that
    file when there is no fragment); a _schemaURL whose file is not registered is an
    error unless --allow-unknown-facets;
  * formats: date-time (RFC 3339), uri (RFC 3986, absolute) and uuid are enforced with
    checkers defined here, so results do not depend on optional Python packages.

--self-test validates every <spec-dir>/spec-tests/<Facet>/*.json (upstream's example
facets) against <facets-dir>/<Facet>.json and prints "self-test: N passed, N failed".
"""

import argparse
import datetime
import glob
import json
import os
import re
import sys
import warnings
from urllib.parse import urldefrag

# jsonschema >= 4.18 deprecates RefResolver; Debian 12's 4.10.3 is the target.
warnings.filterwarnings("ignore", category=DeprecationWarning)

import jsonschema  # noqa: E402
from jsonschema import Draft202012Validator, FormatChecker  # noqa: E402
from jsonschema.exceptions import RefResolutionError  # noqa: E402

CORE_FILE = "OpenLineage.json"
# Outpost's custom facet schemas, relative to this file (tests/tools/ -> lineage/schemas/).
PROJECT_SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                               "lineage", "schemas")
EVENT_DEFS = ("RunEvent", "DatasetEvent", "JobEvent")
CORE_FACET_DEFS = ("BaseFacet", "RunFacet", "JobFacet", "DatasetFacet",
                   "InputDatasetFacet", "OutputDatasetFacet")
MAX_MESSAGE = 300


class SetupError(Exception):
    """A problem with the schemas or the command line, not with an event."""


# --- formats -----------------------------------------------------------------------
# jsonschema's own date-time and uri checks need optional packages (rfc3339-validator,
# rfc3987) that may be missing; these are self-contained and always the same.

_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_URI = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.\-]*:"  # scheme
    r"(?:[A-Za-z0-9\-._~:/?@!$&'()*+,;=\[\]]|%[0-9A-Fa-f]{2})*"  # hier-part and query
    r"(?:#(?:[A-Za-z0-9\-._~:/?@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)?$")  # fragment
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_rfc3339_date_time(value):
    if not isinstance(value, str):
        return True  # formats only apply to strings; "type" checks the rest
    m = _DATE_TIME.match(value)
    if not m:
        return False
    date, time_, frac, zone = value[:10], value[11:19], m.group(7) or "", m.group(8)
    if time_.endswith(":60"):  # leap second: RFC 3339 allows it, datetime does not
        time_ = time_[:-2] + "59"
    frac = frac[:7]  # datetime takes at most microseconds
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        datetime.datetime.fromisoformat(f"{date}T{time_}{frac}{zone}")
    except ValueError:
        return False
    return True


def is_uri(value):
    return not isinstance(value, str) or bool(_URI.match(value))


def is_uuid(value):
    return not isinstance(value, str) or bool(_UUID.match(value))


def make_format_checker():
    checker = FormatChecker()
    checker.checks("date-time")(is_rfc3339_date_time)
    checker.checks("uri")(is_uri)
    checker.checks("uuid")(is_uuid)
    return checker


# --- schemas -----------------------------------------------------------------------

class OfflineResolver(jsonschema.RefResolver):
    """Resolves only registered schemas; never touches the network."""

    def resolve_remote(self, uri):
        raise RefResolutionError(f"unresolvable $ref {uri!r}: no registered schema has that $id")


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SetupError(f"cannot read {path}: {e}") from e


class Schemas:
    def __init__(self, spec_dir, facets_dir=None, extra=()):
        self.docs = {}  # $id -> schema document
        self.paths = {}  # $id -> file it came from
        core_path = os.path.join(spec_dir, CORE_FILE)
        self.core_id = self._add(core_path)
        facets_dir = facets_dir or os.path.join(spec_dir, "facets")
        facet_files = sorted(glob.glob(os.path.join(facets_dir, "*.json")))
        if not facet_files:
            raise SetupError(f"no facet schemas (*.json) in {facets_dir}")
        for path in facet_files + list(extra):
            self._add(path)
        self.resolver = OfflineResolver(base_uri=self.core_id, referrer=self.docs[self.core_id],
                                        store=dict(self.docs))
        self.format_checker = make_format_checker()
        self._validators = {}

    def _add(self, path):
        doc = load_json(path)
        sid = doc.get("$id") if isinstance(doc, dict) else None
        if not isinstance(sid, str) or not sid:
            raise SetupError(f"{path} has no $id")
        sid = urldefrag(sid)[0]
        if sid in self.docs:
            raise SetupError(f"{path} and {self.paths[sid]} have the same $id {sid}")
        try:
            Draft202012Validator.check_schema(doc)
        except jsonschema.SchemaError as e:
            raise SetupError(f"{path} is not a valid Draft 2020-12 schema: {e.message}") from e
        self.docs[sid] = doc
        self.paths[sid] = path
        return sid

    def validator(self, ref):
        """A validator for the schema at ref, an absolute URI with an optional fragment."""
        v = self._validators.get(ref)
        if v is None:
            v = Draft202012Validator({"$ref": ref}, resolver=self.resolver,
                                     format_checker=self.format_checker)
            self._validators[ref] = v
        return v

    def has_fragment(self, base, fragment):
        try:
            self.resolver.resolve_fragment(self.docs[base], fragment)
            return True
        except RefResolutionError:
            return False

    def errors(self, ref, instance, where=""):
        """Messages for every way instance breaks the schema at ref."""
        try:
            errs = list(self.validator(ref).iter_errors(instance))
        except RefResolutionError as e:
            return [f"{where or '$'}: {e}"]
        out = []
        for err in sorted(errs, key=lambda e: list(map(str, e.absolute_path))):
            out += leaf_messages(err, where)
        return dedupe(out)

    def same_name(self, base):
        """Registered $ids of another version of the schema file base names."""
        name = base.rstrip("/").rsplit("/", 1)[-1]
        return [sid for sid in self.docs if sid.rsplit("/", 1)[-1] == name and sid != base]


def leaf_messages(err, where):
    """Messages that say what is actually wrong, not just 'not valid under any of ...'."""
    if not err.context:
        return [format_error(err, where)]
    branches = {}
    for sub in err.context:
        key = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        branches.setdefault(key, []).append(sub)
    if len(branches) == 1:
        return [m for sub in next(iter(branches.values())) for m in leaf_messages(sub, where)]
    # Several alternatives failed: say so, and name what is wrong in the closest one.
    best = jsonschema.exceptions.best_match(err.context)
    head = format_error(err, where, f"matches none of the {len(branches)} alternatives "
                                    f"of {err.validator}; closest one fails with")
    return [head + " " + "; ".join(leaf_messages(best, where))] if best is not None else [head]


def format_error(err, where, message=None):
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    if message is None and err.validator == "not":
        # jsonschema's text repeats the whole instance; the forbidden schema says more.
        message = f"must not be valid under {json.dumps(err.validator_value)}"
    msg = message or " ".join(err.message.split())
    if len(msg) > MAX_MESSAGE:
        msg = msg[:MAX_MESSAGE] + "..."
    return f"{where or '$'}{path}: {msg}"


def dedupe(items):
    seen, out = set(), []
    for i in items:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


# --- events ------------------------------------------------------------------------

def event_def(event, schemas, args, problems):
    """Which event definition to validate against: the one schemaURL names, else by shape."""
    url = event.get("schemaURL")
    if isinstance(url, str):
        base, fragment = urldefrag(url)
        if base != schemas.core_id and not args.any_event_schema_url:
            problems.append(f"$.schemaURL: {url!r} is not the registered spec {schemas.core_id}")
        m = re.fullmatch(r"/\$defs/(\w+)", fragment)
        if base == schemas.core_id and m:
            if m.group(1) in EVENT_DEFS:
                return m.group(1)
            problems.append(f"$.schemaURL: #{fragment} is not one of {', '.join(EVENT_DEFS)}")
    if "run" in event:
        return "RunEvent"
    if "dataset" in event:
        return "DatasetEvent"
    return "JobEvent" if "job" in event else "RunEvent"


def facet_groups(event):
    """(location, facets dict) for every place an event carries facets."""
    def obj(x):
        return x if isinstance(x, dict) else {}

    yield "$.run.facets", obj(obj(event.get("run")).get("facets"))
    yield "$.job.facets", obj(obj(event.get("job")).get("facets"))
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        items = event.get(side)
        for i, ds in enumerate(items if isinstance(items, list) else []):
            yield f"$.{side}[{i}].facets", obj(obj(ds).get("facets"))
            yield f"$.{side}[{i}].{extra}", obj(obj(ds).get(extra))
    yield "$.dataset.facets", obj(obj(event.get("dataset")).get("facets"))


def check_facet(key, facet, where, schemas, args):
    url = facet.get("_schemaURL")
    if not isinstance(url, str):
        return []  # the core schema already reports a missing or non-string _schemaURL
    base, fragment = urldefrag(url)
    if base not in schemas.docs:
        if args.allow_unknown_facets:
            return []
        hint = ""
        others = schemas.same_name(base)
        if others:
            hint = f" (registered version: {', '.join(others)})"
        return [f"{where}: unknown facet schema {url!r}{hint}"]
    doc = schemas.docs[base]
    declared = doc.get("properties") if isinstance(doc.get("properties"), dict) else {}
    problems = []
    if declared and key not in declared:
        problems.append(f"{where}: facet name {key!r} is not the one {base} declares "
                        f"({', '.join(sorted(declared))})")
    if fragment:
        if not schemas.has_fragment(base, fragment):
            return problems + [f"{where}: {url!r}: no #{fragment} in {base}"]
        return problems + schemas.errors(url, facet, where)
    if key in declared:
        # No fragment: the schema file's own property for this facet says which $defs applies.
        parent = where.rsplit(".", 1)[0]
        return problems + schemas.errors(base, {key: facet}, parent)
    name = base.rsplit("/", 1)[-1].removesuffix(".json")
    if isinstance(doc.get("$defs"), dict) and name in doc["$defs"]:
        return problems + schemas.errors(f"{base}#/$defs/{name}", facet, where)
    return problems + [f"{where}: cannot tell which definition in {base} applies; "
                       "add a #/$defs/<Name> fragment to _schemaURL"]


def check_event(event, schemas, args):
    if not isinstance(event, dict):
        return [f"$: event is a JSON {type(event).__name__}, not an object"]
    problems = []
    name = event_def(event, schemas, args, problems)
    errs = schemas.errors(f"{schemas.core_id}#/$defs/{name}", event)
    problems += errs
    if not errs:
        # The spec's top level is oneOf(RunEvent, DatasetEvent, JobEvent): exactly one must match.
        top = schemas.errors(schemas.core_id, event)
        if top:
            problems.append(f"$: valid as {name} but not as exactly one OpenLineage event kind: "
                            + "; ".join(top))
    for where, facets in facet_groups(event):
        for key, facet in facets.items():
            if isinstance(facet, dict):
                problems += check_facet(key, facet, f"{where}.{key}", schemas, args)
    return dedupe(problems)


def read_lines(name):
    if name == "-":
        return sys.stdin.read().splitlines()
    try:
        with open(name, encoding="utf-8") as f:
            return f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SetupError(f"cannot read {name}: {e}") from e


def validate_inputs(inputs, schemas, args):
    events = failures = 0
    for name in inputs:
        for lineno, line in enumerate(read_lines(name), 1):
            if not line.strip():
                continue
            events += 1
            label = f"{name}:{lineno}" if len(inputs) > 1 else str(lineno)
            try:
                problems = check_event(json.loads(line), schemas, args)
            except ValueError as e:
                problems = [f"not JSON: {e}"]
            if problems:
                failures += 1
                print(f"FAIL {label}: " + "; ".join(problems))
            else:
                print(f"ok {label}")
    if events == 0:
        print("no events read", file=sys.stderr)
        return 2
    return 1 if failures else 0


# --- self-test ---------------------------------------------------------------------

def facet_defs(doc):
    """$defs entries that are facets: they build on one of the core facet definitions."""
    out = []
    for name, d in (doc.get("$defs") or {}).items():
        refs = [s.get("$ref", "") for s in (d.get("allOf") or []) if isinstance(s, dict)]
        if any(r.endswith(tuple(f"#/$defs/{c}" for c in CORE_FACET_DEFS)) for r in refs):
            out.append(name)
    return out


def self_test(spec_dir, facets_dir, schemas):
    """Upstream's example facets must validate against the schema named after their folder."""
    tests_dir = os.path.join(spec_dir, "spec-tests")
    facets_dir = facets_dir or os.path.join(spec_dir, "facets")
    by_path = {os.path.realpath(p): sid for sid, p in schemas.paths.items()}
    passed = failed = skipped = 0
    for folder in sorted(d for d in glob.glob(os.path.join(tests_dir, "*")) if os.path.isdir(d)):
        facet = os.path.basename(folder)
        sid = by_path.get(os.path.realpath(os.path.join(facets_dir, facet + ".json")))
        files = sorted(glob.glob(os.path.join(folder, "*.json")))
        if sid is None:
            skipped += len(files)
            print(f"skip {facet}: no {facet}.json in {facets_dir} ({len(files)} files)")
            continue
        doc = schemas.docs[sid]
        declared = doc.get("properties") or {}
        defs = facet_defs(doc)
        def_name = facet if facet in (doc.get("$defs") or {}) else (defs[0] if len(defs) == 1 else None)
        for path in files:
            rel = os.path.relpath(path, tests_dir)
            instance = load_json(path)
            problems = []
            if not isinstance(instance, dict) or not instance:
                problems.append("not a non-empty object of facets")
            else:
                # The file maps facet name -> facet, as the schema's top-level properties do.
                problems += schemas.errors(sid, instance)
                problems += [f"$.{k}: not a facet name declared by {sid}"
                             for k in instance if k not in declared]
                if def_name:
                    for k, v in instance.items():
                        problems += schemas.errors(f"{sid}#/$defs/{def_name}", v, f"$.{k}")
            problems = dedupe(problems)
            if problems:
                failed += 1
                print(f"FAIL {rel}: " + "; ".join(problems))
            else:
                passed += 1
                print(f"ok {rel}")
    print(f"self-test: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    if failed:
        return 1
    return 0 if passed else 2


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Validate OpenLineage JSON-lines events against the official schemas, offline.")
    ap.add_argument("--spec-dir", required=True,
                    help="folder with OpenLineage.json, facets/ and spec-tests/")
    ap.add_argument("--facets-dir", help="facet schemas (default: SPEC_DIR/facets)")
    ap.add_argument("--extra-schema", action="append", default=[], metavar="FILE",
                    help="another schema to register by its $id (e.g. a custom facet); repeatable")
    ap.add_argument("--project-schemas", default=PROJECT_SCHEMAS, metavar="DIR",
                    help="folder of Outpost's own facet schemas (*.json) to register "
                         "(default: lineage/schemas of this checkout)")
    ap.add_argument("--no-project-schemas", action="store_true",
                    help="do not register Outpost's own facet schemas")
    ap.add_argument("--allow-unknown-facets", action="store_true",
                    help="skip facets whose _schemaURL names no registered schema")
    ap.add_argument("--any-event-schema-url", action="store_true",
                    help="accept an event schemaURL other than the registered OpenLineage.json")
    ap.add_argument("--self-test", action="store_true",
                    help="validate SPEC_DIR/spec-tests/<Facet>/*.json against facets/<Facet>.json")
    ap.add_argument("inputs", nargs="*", metavar="FILE_OR_DASH",
                    help="JSON-lines files of events; - for stdin")
    args = ap.parse_args(argv)
    if args.self_test == bool(args.inputs):
        ap.error("give either --self-test or at least one FILE_OR_DASH")
    try:
        extra = list(args.extra_schema)
        if not args.no_project_schemas:
            project = os.path.normpath(args.project_schemas)
            if not os.path.isdir(project):
                raise SetupError(f"no project schema folder {project} "
                                 "(give --project-schemas DIR or --no-project-schemas)")
            extra = sorted(glob.glob(os.path.join(project, "*.json"))) + extra
        schemas = Schemas(args.spec_dir, args.facets_dir, extra)
        if args.self_test:
            return self_test(args.spec_dir, args.facets_dir, schemas)
        return validate_inputs(args.inputs, schemas, args)
    except SetupError as e:
        print(f"validate_lineage: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
