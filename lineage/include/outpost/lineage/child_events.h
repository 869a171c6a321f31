// Lineage a job writes itself: OpenLineage RunEvents as JSON lines on the descriptor or file
// Outpost hands it (OUTPOST_LINEAGE_FD / OUTPOST_LINEAGE_FILE). Each line is checked, tied to
// the Outpost run (runId, job, parent), redacted, and either handed back for forwarding or
// refused with a message that is safe to publish in the run's events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "outpost/lineage/openlineage.h"
#include "outpost/v1/job.pb.h"

namespace outpost::lineage {

// The Outpost run whose job writes the events.
struct ChildLineageRun {
  std::string run_id;  // the command's run_id (OUTPOST_RUN_ID)
  std::string job_namespace;
  std::string job_name;
  // The run's own parent facet (LineageBuilder::parentFacet), if it has a parent.
  std::optional<nlohmann::json> parent_facet;
  // The key of the run's own records (LineageBuilder::kafkaKey); every forwarded event gets it,
  // so a run's records and its job's events share one partition and keep their order.
  std::string kafka_key;

  static ChildLineageRun of(const LineageBuilder& builder, const v1::JobCommand& command);
};

struct ChildLineageOptions {
  // Longer lines are refused without being parsed (the stream reader skips to the next newline).
  std::size_t max_line_bytes = 1024 * 1024;
  // Refusal messages are cut to this many bytes.
  std::size_t max_error_bytes = 512;
  // Lines (events) accepted or refused per run; later ones are dropped and counted.
  std::uint64_t max_events = 10'000;
  // Refusals that get a message; later ones are only counted (the terminal record has the count).
  std::uint64_t max_reported_errors = 20;
  // Events for runs other than the Outpost run (a dbt model, a Spark job) are accepted and tied
  // to it through their parent facet. false: only events about the Outpost run itself pass.
  bool allow_child_runs = true;
  // Refuse events whose datasets break the OpenLineage naming conventions (naming.h) for a
  // platform they list; namespaces of other platforms pass.
  bool check_dataset_names = true;
};

// An accepted event, ready for the lineage transport.
struct ChildLineageRecord {
  std::string json;  // the redacted event, compact, one line
  std::string kafka_key;
  std::string run_id;
  std::string event_type;
};

// What became of one line. At most one of the two is set; neither for a blank line or a refusal
// past max_reported_errors.
struct ChildLineageResult {
  std::optional<ChildLineageRecord> record;
  // Why the line was refused, e.g. "lineage line 3 refused: eventTime '2026-13-01' is not an
  // RFC 3339 date-time". Redacted, without control characters, at most max_error_bytes; never
  // the line itself.
  std::string error;
};

// Replaces secrets in a complete piece of text (for instance a SecretMasker's mask()).
using RedactFunction = std::function<std::string(std::string_view)>;

// Checks, ties and redacts the events of one run, in the order its job wrote them. Not
// thread-safe: one thread (the one reading the job's descriptor or file) uses it.
//
// The rules, by the event's run.runId:
//  * missing, or the Outpost run's: the event is about the Outpost run. Missing runId and job
//    are filled in; a different job is refused. Only RUNNING and OTHER are accepted: START and
//    the terminal COMPLETE/FAIL/ABORT of the Outpost run are Outpost's own records. The run's
//    parent facet is added when missing; a parent (or root) that contradicts it is refused.
//  * another UUID (allow_child_runs): a run of the job's own, with its own job (refused when
//    missing or equal to the Outpost job). Without a parent facet it gets one naming the Outpost
//    run and job, with root = the Outpost run's root, else its parent, else the Outpost run. A
//    parent naming the Outpost run must name its job too; a parent naming another run (a level
//    in the job's own hierarchy) is kept. Either way the root is filled in when missing and
//    must be the Outpost run's root when present.
// Every other check (eventTime RFC 3339, eventType in the enum, producer and schemaURL URIs,
// facets with _producer and _schemaURL, datasets with namespace and name) refuses the event.
// Every string (and object key) is redacted before any check, so neither the forwarded event
// nor a refusal message can carry a secret the redactor knows.
class ChildLineageProcessor {
 public:
  // Throws std::invalid_argument without a redact function.
  ChildLineageProcessor(ChildLineageRun run, RedactFunction redact,
                        ChildLineageOptions options = {});

  // One line, without its newline.
  ChildLineageResult process(std::string_view line);

  // Bytes as they come from the descriptor: results for every complete line, in order. A line
  // over max_line_bytes is refused once and its bytes are dropped up to the next newline.
  std::vector<ChildLineageResult> feed(std::string_view bytes);
  // At end of stream: the last line, if it had no newline.
  std::vector<ChildLineageResult> finish();

  std::uint64_t forwarded() const { return forwarded_; }
  std::uint64_t rejected() const { return rejected_; }

 private:
  ChildLineageResult refuse(std::string why);
  ChildLineageResult processLine(std::string_view line);

  ChildLineageRun run_;
  RedactFunction redact_;
  ChildLineageOptions options_;
  std::string partial_;       // bytes of the line being read (feed)
  bool skipping_ = false;     // dropping an over-long line up to its newline (feed)
  std::uint64_t line_ = 0;    // lines seen, blank ones included
  std::uint64_t events_ = 0;  // non-blank lines seen
  std::uint64_t forwarded_ = 0;
  std::uint64_t rejected_ = 0;
};

}  // namespace outpost::lineage
