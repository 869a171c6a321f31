#include "outpost/lineage/child_events.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <expected>
#include <stdexcept>

#include "outpost/common/clock.h"
#include "outpost/lineage/naming.h"

namespace outpost::lineage {
namespace {

using nlohmann::json;

constexpr int kMaxDepth = 64;
constexpr std::size_t kQuoteMax = 100;
constexpr std::array<std::string_view, 6> kEventTypes = {"START", "RUNNING", "COMPLETE",
                                                         "ABORT", "FAIL",    "OTHER"};

// The event is refused for this reason.
struct Refusal {
  std::string why;
};

std::string quote(std::string_view v) {
  std::string out = "'";
  std::size_t n = std::min(v.size(), kQuoteMax);
  while (n < v.size() && n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
  out.append(v.substr(0, n));
  return out + (n < v.size() ? "...'" : "'");
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// An absolute URI (RFC 3986): scheme ":" then unreserved, reserved and %XX, fragment after '#'.
bool isUri(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 ||
      !std::isalpha(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  for (std::size_t i = 1; i < colon; ++i) {
    char c = s[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  bool fragment = false;
  for (std::size_t i = colon + 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        return false;
      }
      i += 2;
      continue;
    }
    if (c == '#' && !fragment) {
      fragment = true;
      continue;
    }
    if (std::isalnum(static_cast<unsigned char>(c))) continue;
    if (std::string_view("-._~:/?@!$&'()*+,;=").find(c) != std::string_view::npos) continue;
    if (!fragment && (c == '[' || c == ']')) continue;
    return false;
  }
  return true;
}

// Deepest nesting of arrays and objects, counted without parsing (strings skipped).
int nestingDepth(std::string_view line) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : line) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

// Every string, object key, and number whose text the redactor changes, redacted.
json redactAll(const json& v, const RedactFunction& redact) {
  switch (v.type()) {
    case json::value_t::object: {
      json out = json::object();
      for (const auto& [k, item] : v.items()) out[redact(k)] = redactAll(item, redact);
      return out;
    }
    case json::value_t::array: {
      json out = json::array();
      for (const auto& item : v) out.push_back(redactAll(item, redact));
      return out;
    }
    case json::value_t::string:
      return redact(v.get_ref<const std::string&>());
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: {
      // A numeric secret (a PIN) printed as a JSON number: the text goes, the type with it.
      std::string text = v.dump();
      std::string masked = redact(text);
      return masked == text ? v : json(masked);
    }
    default:
      return v;
  }
}

const char* typeName(const json& v) {
  return v.type_name();
}

const std::string* stringAt(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

void requireUri(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) throw Refusal{where + key + " is missing"};
  if (!it->is_string()) throw Refusal{where + key + " is a " + typeName(*it) + ", not a string"};
  if (!isUri(it->get_ref<const std::string&>())) {
    throw Refusal{where + key + " " + quote(it->get_ref<const std::string&>()) +
                  " is not an absolute URI"};
  }
}

// Facets: an object of objects, each with _producer and _schemaURL URIs.
void checkFacets(const json& holder, const char* key, const std::string& where) {
  auto it = holder.find(key);
  if (it == holder.end()) return;
  std::string at = where + key;
  if (!it->is_object()) throw Refusal{at + " is a " + typeName(*it) + ", not an object"};
  for (const auto& [name, facet] : it->items()) {
    std::string f = at + "." + name;
    if (!facet.is_object()) throw Refusal{f + " is a " + typeName(facet) + ", not a facet object"};
    requireUri(facet, "_producer", f + ".");
    requireUri(facet, "_schemaURL", f + ".");
  }
}

void requireName(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) throw Refusal{where + key + " is missing"};
  if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
    throw Refusal{where + key + " must be a non-empty string"};
  }
}

void checkDatasets(const json& event, const char* side, const char* extra_facets, bool names) {
  auto it = event.find(side);
  if (it == event.end()) return;
  if (!it->is_array())
    throw Refusal{std::string(side) + " is a " + typeName(*it) + ", not an array"};
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& d = (*it)[i];
    std::string where = std::string(side) + "[" + std::to_string(i) + "]";
    if (!d.is_object()) throw Refusal{where + " is a " + typeName(d) + ", not a dataset object"};
    requireName(d, "namespace", where + ".");
    requireName(d, "name", where + ".");
    checkFacets(d, "facets", where + ".");
    checkFacets(d, extra_facets, where + ".");
    if (names) {
      if (auto c = checkDataset(d["namespace"].get_ref<const std::string&>(),
                                d["name"].get_ref<const std::string&>());
          !c) {
        throw Refusal{where + ": " + c.error()};
      }
    }
  }
}

std::string describe(const LineageRunRef& r) {
  return "run " + r.run_id + " of job " + r.job_namespace + "/" + r.job_name;
}

bool sameRun(const LineageRunRef& a, const LineageRunRef& b) {
  return lower(a.run_id) == lower(b.run_id) && a.job_namespace == b.job_namespace &&
         a.job_name == b.job_name;
}

// {run: {runId}, job: {namespace, name}} as in the parent facet and its root.
LineageRunRef readRef(const json& holder, const std::string& where) {
  if (!holder.is_object()) throw Refusal{where + " is a " + typeName(holder) + ", not an object"};
  auto run = holder.find("run");
  auto job = holder.find("job");
  if (run == holder.end() || !run->is_object()) throw Refusal{where + ".run is missing"};
  if (job == holder.end() || !job->is_object()) throw Refusal{where + ".job is missing"};
  const std::string* id = stringAt(*run, "runId");
  if (!id || !isUuid(*id)) throw Refusal{where + ".run.runId is not a UUID"};
  requireName(*job, "namespace", where + ".job.");
  requireName(*job, "name", where + ".job.");
  return {*id, (*job)["namespace"].get<std::string>(), (*job)["name"].get<std::string>()};
}

std::optional<LineageRunRef> refOf(const json& holder) {
  if (!holder.is_object() || !holder.contains("run") || !holder.contains("job")) {
    return std::nullopt;
  }
  return LineageRunRef{holder["run"].value("runId", ""), holder["job"].value("namespace", ""),
                       holder["job"].value("name", "")};
}

// Sets the parent facet's root, with the facet version that defines it.
void setRoot(json& parent, const LineageRunRef& root) {
  json made = makeParentRunFacet(root, root);
  parent["root"] = made["root"];
  parent["_schemaURL"] = made["_schemaURL"];
}

// ---- The steps of processLine, in order. Each throws Refusal (or json::exception, for a shape
// the checks missed) to refuse the event.

// The line parsed and redacted, or why it is refused before any check: too long, nested too
// deep, or not JSON.
std::expected<json, std::string> parseRedacted(std::string_view line, std::size_t max_line_bytes,
                                               const RedactFunction& redact) {
  if (line.size() > max_line_bytes) {
    return std::unexpected("the line has " + std::to_string(line.size()) +
                           " bytes, over the limit of " + std::to_string(max_line_bytes));
  }
  if (nestingDepth(line) > kMaxDepth) {
    return std::unexpected("the JSON is nested deeper than " + std::to_string(kMaxDepth) +
                           " levels");
  }
  json raw;
  try {
    raw = json::parse(line);
  } catch (const json::parse_error& e) {
    // Only the position: the parser's own text quotes the input, which may hold a secret.
    return std::unexpected("not valid JSON (parse error near byte " + std::to_string(e.byte) + ")");
  }
  return redactAll(raw, redact);
}

// eventType, one of the enum's; returns it.
std::string checkEventType(const json& e) {
  auto type_it = e.find("eventType");
  if (type_it == e.end()) throw Refusal{"eventType is missing"};
  if (!type_it->is_string() ||
      std::ranges::find(kEventTypes, type_it->get_ref<const std::string&>()) == kEventTypes.end()) {
    throw Refusal{"eventType " +
                  (type_it->is_string() ? quote(type_it->get<std::string>())
                                        : std::string("(not a string)")) +
                  " is not one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER"};
  }
  return type_it->get<std::string>();
}

void checkEventTime(const json& e) {
  const std::string* time = stringAt(e, "eventTime");
  if (!e.contains("eventTime")) throw Refusal{"eventTime is missing"};
  if (!time || !parseRfc3339(*time)) {
    throw Refusal{"eventTime " + (time ? quote(*time) : std::string("(not a string)")) +
                  " is not an RFC 3339 date-time"};
  }
}

// producer and schemaURL: URIs, the latter OpenLineage's spec of a RunEvent.
void checkProducerAndSchema(const json& e) {
  requireUri(e, "producer", "");
  requireUri(e, "schemaURL", "");
  const std::string& url = e["schemaURL"].get_ref<const std::string&>();
  auto hash = url.find('#');
  std::string_view base = std::string_view(url).substr(0, hash);
  std::string_view fragment =
      hash == std::string::npos ? std::string_view() : std::string_view(url).substr(hash + 1);
  if (!base.ends_with("/OpenLineage.json")) {
    throw Refusal{"schemaURL " + quote(url) +
                  " is not the OpenLineage spec (.../OpenLineage.json)"};
  }
  if (!fragment.empty() && fragment != "/$defs/RunEvent") {
    throw Refusal{"schemaURL " + quote(url) +
                  " is not a RunEvent: only run events are "
                  "forwarded"};
  }
}

// run (added, empty, when missing) with a UUID runId if any, job, their facets, and the datasets.
void checkRunJobAndDatasets(json& e, bool check_dataset_names) {
  if (!e.contains("run")) e["run"] = json::object();
  json& run = e["run"];
  if (!run.is_object()) throw Refusal{std::string("run is a ") + typeName(run) + ", not an object"};
  if (run.contains("runId")) {
    const std::string* id = stringAt(run, "runId");
    if (!id || !isUuid(*id)) {
      throw Refusal{"run.runId " + (id ? quote(*id) : std::string("(not a string)")) +
                    " is not a UUID"};
    }
  }
  checkFacets(run, "facets", "run.");
  if (e.contains("job")) {
    const json& job = e["job"];
    if (!job.is_object())
      throw Refusal{std::string("job is a ") + typeName(job) + ", not an object"};
    requireName(job, "namespace", "job.");
    requireName(job, "name", "job.");
    checkFacets(job, "facets", "job.");
  }
  checkDatasets(e, "inputs", "inputFacets", check_dataset_names);
  checkDatasets(e, "outputs", "outputFacets", check_dataset_names);
}

// Everything about the event itself, before it is tied to the run; returns its eventType.
std::string checkEvent(json& e, bool check_dataset_names) {
  if (!e.is_object()) {
    throw Refusal{std::string("the line is a JSON ") + typeName(e) + ", not an event object"};
  }
  std::string type = checkEventType(e);
  checkEventTime(e);
  checkProducerAndSchema(e);
  checkRunJobAndDatasets(e, check_dataset_names);
  return type;
}

// The Outpost run events are tied to: itself, and its parent and root when it has them.
struct OutpostRun {
  LineageRunRef ours;
  std::optional<LineageRunRef> parent, root;
  const json* parent_facet = nullptr;  // the run's own parent facet

  explicit OutpostRun(const ChildLineageRun& run)
      : ours{run.run_id, run.job_namespace, run.job_name} {
    if (run.parent_facet) {
      parent_facet = &*run.parent_facet;
      parent = refOf(*run.parent_facet);
      if (run.parent_facet->contains("root")) root = refOf((*run.parent_facet)["root"]);
    }
  }

  // The root of the hierarchy the Outpost run belongs to, for runs below it.
  LineageRunRef chainRoot() const { return root ? *root : parent ? *parent : ours; }
};

// An event about the Outpost run itself: RUNNING or OTHER only, its job (filled in when missing),
// and its parent facet (added when missing; when present, it must name the run's parent and root,
// whose run ids are written as the run's own facet has them).
void tieToOutpostRun(json& e, const std::string& type, const OutpostRun& o) {
  json& run = e["run"];
  run["runId"] = o.ours.run_id;
  if (type != "RUNNING" && type != "OTHER") {
    throw Refusal{"eventType " + type + " for this run (" + o.ours.run_id +
                  ") is Outpost's own record to send; a job may send RUNNING or OTHER for "
                  "its run, or events of runs of its own"};
  }
  if (!e.contains("job")) {
    e["job"] = {{"namespace", o.ours.job_namespace}, {"name", o.ours.job_name}};
  } else if (e["job"]["namespace"] != o.ours.job_namespace || e["job"]["name"] != o.ours.job_name) {
    throw Refusal{"job " +
                  quote(e["job"]["namespace"].get<std::string>() + "/" +
                        e["job"]["name"].get<std::string>()) +
                  " is not this run's job " + quote(o.ours.job_namespace + "/" + o.ours.job_name)};
  }
  if (!run.contains("facets")) run["facets"] = json::object();
  json& facets = run["facets"];
  if (!facets.contains("parent")) {
    if (o.parent_facet) facets["parent"] = *o.parent_facet;
    return;
  }
  json& p = facets["parent"];
  LineageRunRef theirs = readRef(p, "run.facets.parent");
  if (!o.parent) {
    throw Refusal{"run.facets.parent names " + describe(theirs) + ", but this run has no parent"};
  }
  if (!sameRun(theirs, *o.parent)) {
    throw Refusal{"run.facets.parent names " + describe(theirs) + ", not this run's parent " +
                  describe(*o.parent)};
  }
  p["run"]["runId"] = o.parent->run_id;
  if (p.contains("root")) {
    LineageRunRef root = readRef(p["root"], "run.facets.parent.root");
    const LineageRunRef& expected = o.root ? *o.root : *o.parent;
    if (!sameRun(root, expected)) {
      throw Refusal{"run.facets.parent.root names " + describe(root) + ", not this run's root " +
                    describe(expected)};
    }
    p["root"]["run"]["runId"] = expected.run_id;
  } else if (o.root) {
    setRoot(p, *o.root);
  }
}

// An event about a run of the job's own (`run_id`): its own job, and a parent facet (naming the
// Outpost run when missing) whose root is the Outpost run's root.
void tieToChildRun(json& e, const std::string& run_id, const OutpostRun& o) {
  if (!e.contains("job")) {
    throw Refusal{"job is missing: an event for another run (" + run_id +
                  ") names that run's own job"};
  }
  if (e["job"]["namespace"] == o.ours.job_namespace && e["job"]["name"] == o.ours.job_name) {
    throw Refusal{"run " + run_id + " uses this run's job " +
                  quote(o.ours.job_namespace + "/" + o.ours.job_name) +
                  "; a run of the job's own needs a job name of its own"};
  }
  json& run = e["run"];
  if (!run.contains("facets")) run["facets"] = json::object();
  json& facets = run["facets"];
  const LineageRunRef chain_root = o.chainRoot();
  if (!facets.contains("parent")) {
    facets["parent"] = makeParentRunFacet(o.ours, chain_root);
    return;
  }
  json& p = facets["parent"];
  LineageRunRef theirs = readRef(p, "run.facets.parent");
  if (lower(theirs.run_id) == lower(run_id)) {
    throw Refusal{"run.facets.parent names the run itself (" + run_id + ")"};
  }
  if (lower(theirs.run_id) == lower(o.ours.run_id)) {
    if (theirs.job_namespace != o.ours.job_namespace || theirs.job_name != o.ours.job_name) {
      throw Refusal{"run.facets.parent names this run with the job " +
                    quote(theirs.job_namespace + "/" + theirs.job_name) + ", not " +
                    quote(o.ours.job_namespace + "/" + o.ours.job_name)};
    }
    p["run"]["runId"] = o.ours.run_id;
  }
  if (p.contains("root")) {
    LineageRunRef root = readRef(p["root"], "run.facets.parent.root");
    if (!sameRun(root, chain_root)) {
      throw Refusal{"run.facets.parent.root names " + describe(root) +
                    ", not the root of this run " + describe(chain_root)};
    }
    p["root"]["run"]["runId"] = chain_root.run_id;
  } else {
    setRoot(p, chain_root);
  }
}

// Ties the event to the Outpost run, by its runId (the Outpost run's when missing).
void tieToRun(json& e, const std::string& type, const ChildLineageRun& outpost_run,
              bool allow_child_runs) {
  const OutpostRun o(outpost_run);
  json& run = e["run"];
  if (!run.contains("runId")) run["runId"] = o.ours.run_id;
  const std::string run_id = run["runId"].get<std::string>();
  if (lower(run_id) == lower(o.ours.run_id)) {
    tieToOutpostRun(e, type, o);
    return;
  }
  if (!allow_child_runs) {
    throw Refusal{"run.runId " + run_id + " is not this run's (" + o.ours.run_id +
                  "); this worker forwards events about its own run only"};
  }
  tieToChildRun(e, run_id, o);
}

}  // namespace

ChildLineageRun ChildLineageRun::of(const LineageBuilder& builder, const v1::JobCommand& command) {
  return {command.run_id(), builder.jobNamespace(command), LineageBuilder::jobName(command),
          builder.parentFacet(command), builder.kafkaKey(command)};
}

ChildLineageProcessor::ChildLineageProcessor(ChildLineageRun run, RedactFunction redact,
                                             ChildLineageOptions options)
    : run_(std::move(run)), redact_(std::move(redact)), options_(options) {
  if (!redact_) throw std::invalid_argument("ChildLineageProcessor needs a redact function");
}

ChildLineageResult ChildLineageProcessor::refuse(std::string why) {
  ++rejected_;
  if (rejected_ > options_.max_reported_errors) return {};
  std::string msg = "lineage line " + std::to_string(line_) + " refused: " + why;
  if (rejected_ == options_.max_reported_errors) msg += " (later refusals are only counted)";
  // Quoted values come from the redacted event already; this is the second line of defence.
  msg = redact_(msg);
  for (auto& c : msg) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (msg.size() > options_.max_error_bytes) {
    std::size_t n = options_.max_error_bytes > 3 ? options_.max_error_bytes - 3 : 0;
    while (n > 0 && (static_cast<unsigned char>(msg[n]) & 0xC0) == 0x80) --n;
    msg = msg.substr(0, n) + "...";
  }
  return {std::nullopt, std::move(msg)};
}

ChildLineageResult ChildLineageProcessor::process(std::string_view line) {
  ++line_;
  return processLine(line);
}

ChildLineageResult ChildLineageProcessor::processLine(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (std::all_of(line.begin(), line.end(),
                  [](char c) { return c == ' ' || c == '\t' || c == '\r'; })) {
    return {};
  }
  ++events_;
  if (events_ > options_.max_events) {
    if (events_ == options_.max_events + 1) {
      return refuse("the job wrote more than " + std::to_string(options_.max_events) +
                    " lineage events; this one and later ones are dropped");
    }
    ++rejected_;
    return {};
  }
  auto parsed = parseRedacted(line, options_.max_line_bytes, redact_);
  if (!parsed) return refuse(std::move(parsed.error()));
  json& e = *parsed;
  try {
    const std::string type = checkEvent(e, options_.check_dataset_names);
    tieToRun(e, type, run_, options_.allow_child_runs);
    ChildLineageRecord record;
    record.json = lineageRecordText(e);
    record.kafka_key = run_.kafka_key;
    record.run_id = e["run"]["runId"].get<std::string>();
    record.event_type = type;
    ++forwarded_;
    return {std::move(record), {}};
  } catch (const Refusal& r) {
    return refuse(r.why);
  } catch (const json::exception&) {
    // A shape the checks missed: refuse rather than let it out of the read loop.
    return refuse("the event does not have the shape of an OpenLineage RunEvent");
  }
}

std::vector<ChildLineageResult> ChildLineageProcessor::feed(std::string_view bytes) {
  std::vector<ChildLineageResult> out;
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    std::string_view piece = bytes.substr(0, nl);
    bytes.remove_prefix(nl == std::string_view::npos ? bytes.size() : nl + 1);
    if (skipping_) {
      if (nl != std::string_view::npos) skipping_ = false;
      continue;
    }
    if (partial_.size() + piece.size() > options_.max_line_bytes) {
      ++line_;
      ++events_;
      std::size_t seen = partial_.size() + piece.size();
      partial_.clear();
      skipping_ = nl == std::string_view::npos;
      if (events_ > options_.max_events) {
        ++rejected_;
        continue;
      }
      out.push_back(refuse("the line has more than " + std::to_string(options_.max_line_bytes) +
                           " bytes (" + std::to_string(seen) + " read)"));
      continue;
    }
    partial_.append(piece);
    if (nl == std::string_view::npos) break;
    ++line_;
    auto r = processLine(partial_);
    partial_.clear();
    if (r.record || !r.error.empty()) out.push_back(std::move(r));
  }
  return out;
}

std::vector<ChildLineageResult> ChildLineageProcessor::finish() {
  std::vector<ChildLineageResult> out;
  skipping_ = false;
  if (partial_.empty()) return out;
  ++line_;
  auto r = processLine(partial_);
  partial_.clear();
  if (r.record || !r.error.empty()) out.push_back(std::move(r));
  return out;
}

}  // namespace outpost::lineage
