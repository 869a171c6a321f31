// Admission and launch-plan rendering: a command (its Protobuf bytes) against templates with
// parameters, environment, recipes and secrets, as the worker admits it; then, admitted, its secret
// references resolved into the plan. Refusals are outcomes; nothing may crash, and no argument of
// an admitted plan holds a secret reference.
#include <cstdlib>
#include <map>

#include "outpost/common/config.h"
#include "outpost/dispatch/admission.h"
#include "outpost/v1/job.pb.h"

namespace {

const outpost::Config& config() {
  static const outpost::Config c =
      outpost::parseConfig(R"(worker: {pool: main, work_dir: /tmp/outpost-fuzz}
templates:
  ok:
    argv: [echo, "{n}", "--name={name}"]
    params: {n: {pattern: "[0-9]+", default: "0"}, name: {pattern: "[a-z-]{1,20}", default: x}}
    recipe: none
  ingest:
    argv: [datahub, ingest, -c, "{recipe_file}"]
    env: {DB_PASSWORD: "${env:DB_PASSWORD}", MODE: batch}
    env_passthrough: [HOME]
    accept_env: [LOG_LEVEL, DB_URL]
    secrets: ["env:DB_*", "file:tokens/*"]
  stdin:
    argv: [cat]
    recipe: stdin
)",
                           {}, "fuzz");
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace outpost;
  v1::JobCommand command;
  if (!command.ParseFromArray(data, static_cast<int>(size))) return 0;
  static const Environment worker_env = {{"HOME", "/home/outpost"}};
  dispatch::AdmissionPolicy policy{&config().templates, &worker_env, config().worker.work_dir};
  auto admitted = dispatch::admit(command, 1, policy);
  if (!admitted) return 0;
  for (const auto& arg : admitted->plan.argv) {
    for (const auto& ref : admitted->secrets) {
      if (!ref.text.empty() && arg.find(ref.text) != std::string::npos) std::abort();
    }
  }
  std::map<std::string, secrets::SecretValue> values;
  for (const auto& ref : admitted->secrets)
    values.emplace(ref.text, secrets::SecretValue("s3cr3t"));
  dispatch::resolveInto(*admitted, command, values);
  return 0;
}
