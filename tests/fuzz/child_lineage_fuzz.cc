// The child lineage line parser: OpenLineage events a job writes on its lineage channel, fed in
// arbitrary pieces. Whatever is forwarded or refused never carries the secret the redactor knows.
#include <cstdlib>
#include <string>

#include "outpost/lineage/child_events.h"
#include "outpost/lineage/openlineage.h"
#include "outpost/v1/job.pb.h"

namespace {

constexpr std::string_view kSecret = "hunter2-secret";

std::string redact(std::string_view text) {
  std::string out(text);
  for (auto at = out.find(kSecret); at != std::string::npos; at = out.find(kSecret)) {
    out.replace(at, kSecret.size(), "***");
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace outpost::lineage;
  outpost::v1::JobCommand c;
  c.set_run_id("0190a5d2-7c3e-7abc-8def-000000000001");
  c.set_job_id("fuzz");
  c.set_job_type("fuzz");
  ChildLineageProcessor p(ChildLineageRun::of(LineageBuilder("outpost"), c), redact);
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto check = [](const std::vector<ChildLineageResult>& results) {
    for (const auto& r : results) {
      if (r.error.find(kSecret) != std::string::npos) std::abort();
      if (r.record && r.record->json.find(kSecret) != std::string::npos) std::abort();
    }
  };
  // In two pieces, split where the first byte says: lines across reads.
  const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  check(p.feed(in.substr(0, cut)));
  check(p.feed(in.substr(cut)));
  check(p.finish());
  return 0;
}
