// Secrets end to end: resolved on the worker, delivered to the job, and never seen again in any
// topic or in the worker's log, whatever encoding the job prints them in.
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "outpost/secrets/masker.h"
#include "scrape.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;

// A value whose base64, URL and JSON forms all differ from it.
const std::string kSecret = "Sup3r\"S3cret/Value+42 &x=\\y";

const char* kTemplates = R"yaml(templates:
  leak:
    # Prints the secret from its environment raw, base64 (standard and URL-safe), URL-encoded and
    # JSON-escaped, the raw one split across two writes, then the recipe (which holds it too),
    # and fails so that lineage carries the output tail as a stack trace.
    argv: [/usr/bin/python3, -c, "import os,sys,time,base64,json,urllib.parse as u\nt=os.environ['TOKEN']\nw=sys.stdout.write\nw('raw '+t[:7]); sys.stdout.flush(); time.sleep(0.3); w(t[7:]+'\\n')\nw('b64 '+base64.b64encode(t.encode()).decode()+'\\n')\nw('b64url '+base64.urlsafe_b64encode(t.encode()).decode().rstrip('=')+'\\n')\nw('url '+u.quote(t,safe='')+'\\n')\nw('json '+json.dumps(t)+'\\n')\nw('len '+str(len(t))+'\\n')\nw(open(os.environ['OUTPOST_RECIPE_FILE']).read()+'\\n')\nsys.exit(1)"]
    env: {TOKEN: "${IT_LEAK_TOKEN}"}
    secrets: ["IT_LEAK_*"]
    recipe: file
)yaml";

std::size_t countOf(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

TEST(Secrets, ASecretPrintedInEveryEncodingNeverLeavesTheWorker) {
  ::setenv("IT_LEAK_TOKEN", kSecret.c_str(), 1);
  ::setenv("IT_OTHER_TOKEN", "another-secret-value", 1);
  auto topics = createTopics("secrets", 1);
  WorkerProcess::Options o;
  o.templates = kTemplates;
  o.log_format = "auto";  // its log is a file, so JSON: the scan below covers that form
  WorkerProcess worker(topics, o);

  auto leak = makeCommand("leak");
  leak.set_recipe("source:\n  password: ${IT_LEAK_TOKEN}\n");
  auto refused = makeCommand("leak");
  refused.set_recipe("password: ${IT_OTHER_TOKEN}\n");
  auto in_args = makeCommand("leak");
  (*in_args.mutable_args())["x"] = "${IT_LEAK_TOKEN}";
  submit(topics, leak);
  submit(topics, refused);
  submit(topics, in_args);

  TopicReader events(topics.events);
  ASSERT_TRUE(events.readUntil([&](const auto& r) {
    auto t = terminalByRun(r);
    return t.contains(leak.run_id()) && t.contains(refused.run_id()) &&
           t.contains(in_args.run_id());
  }));
  auto terminal = terminalByRun(events.records());
  const auto& end = terminal[leak.run_id()].front();
  EXPECT_EQ(end.state(), v1::FAILED);
  // The job got the real value (its length), and every printed form came out masked.
  EXPECT_THAT(end.log_tail(), HasSubstr("len " + std::to_string(kSecret.size()) + "\n"));
  EXPECT_THAT(end.log_tail(), HasSubstr("raw ***\n"));
  EXPECT_THAT(end.log_tail(), HasSubstr("b64 ***\n"));
  EXPECT_THAT(end.log_tail(), HasSubstr("b64url ***\n"));
  EXPECT_THAT(end.log_tail(), HasSubstr("url ***\n"));
  EXPECT_THAT(end.log_tail(), HasSubstr("json \"***\"\n"));
  EXPECT_THAT(end.log_tail(), HasSubstr("password: ***"));
  EXPECT_EQ(terminal[refused.run_id()].front().state(), v1::REJECTED);
  EXPECT_THAT(terminal[refused.run_id()].front().message(), HasSubstr("${IT_OTHER_TOKEN}"));
  EXPECT_EQ(terminal[in_args.run_id()].front().state(), v1::REJECTED);
  EXPECT_THAT(terminal[in_args.run_id()].front().message(),
              HasSubstr("never go on a command line"));

  TopicReader lineage(topics.lineage), dlq(topics.dlq);
  ASSERT_TRUE(lineage.readUntil([](const auto& r) { return r.size() >= 2; }));
  ASSERT_TRUE(dlq.readUntil([](const auto& r) { return r.size() >= 2; }));
  // The masks are counted, and the metrics hold no secret either.
  const int port = worker.httpPort();
  ASSERT_GT(port, 0);
  std::string scrape;
  for (int i = 0; i < 100 && sample(scrape, "outpost_redactions_total").value_or(0) < 6; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    scrape = get(port, "/metrics").body;
  }
  EXPECT_GE(sample(scrape, "outpost_redactions_total").value_or(0), 6)
      << "six forms printed, each masked" << scrape;
  EXPECT_EQ(worker.terminate(), 0);

  // Every line is one JSON object; those about the run carry its fields as fields.
  std::size_t about_leak = 0;
  std::istringstream lines(worker.log());
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON line: " << line;
    if (j.value("run_id", "") == leak.run_id()) {
      ++about_leak;
      EXPECT_EQ(j.value("template", ""), "leak") << line;
      EXPECT_EQ(j.value("job_id", ""), leak.job_id()) << line;
    }
  }
  EXPECT_GE(about_leak, 2u) << "its start and its end";

  std::string everything = worker.log() + scrape;
  for (auto* reader : {&events, &lineage, &dlq}) {
    reader->readFor(std::chrono::milliseconds(300));
    for (const auto& r : reader->records()) {
      everything += r.key + r.value;
      for (const auto& [k, v] : r.headers) everything += k + v;
    }
  }
  // The masked records (the failed run's carries its output tail) still hold to the spec.
  auto v = validateLineage(lineage.records());
  EXPECT_TRUE(v.ok) << v.output;
  EXPECT_GT(everything.size(), 1000u);
  EXPECT_GE(countOf(everything, "***"), 7u);
  for (const auto& form : secrets::maskedForms(kSecret)) {
    EXPECT_EQ(countOf(everything, form), 0u) << "found a form of the secret: " << form;
  }
  EXPECT_EQ(countOf(everything, "another-secret-value"), 0u);
}

}  // namespace
}  // namespace outpost::test

namespace outpost::test {
namespace {

TEST(Secrets, SecretsCheckSaysWhereEachSecretIsFoundAndNeverItsValue) {
  auto dir = std::filesystem::temp_directory_path() / uniqueName("secrets-check");
  std::filesystem::create_directories(dir);
  {
    std::ofstream cfg(dir / "outpost.yaml");
    cfg << "templates:\n  probe:\n    argv: [psql]\n    recipe: none\n"
           "    env: {PGPASSWORD: \"${IT_CHECK_PASSWORD}\", OTHER: \"${env:IT_CHECK_MISSING}\"}\n"
           "    secrets: [IT_CHECK_PASSWORD, \"env:IT_CHECK_*\"]\n";
  }
  ::setenv("IT_CHECK_PASSWORD", "check-me-not-9f3a", 1);
  ::unsetenv("IT_CHECK_MISSING");
  auto run = [&](const std::string& args) {
    std::string cmd = outpostBinary() + " secrets check -c " +
                      (dir / "outpost.yaml").string() + args + " 2>&1";
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    int status = p ? pclose(p) : -1;
    return std::pair{WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
  };
  auto [code, out] = run("");
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("${IT_CHECK_PASSWORD}\tfound\tprovider=env"));
  EXPECT_THAT(out, HasSubstr("${env:IT_CHECK_MISSING}\tNOT FOUND"));
  EXPECT_THAT(out, Not(HasSubstr("check-me-not-9f3a")));
  ::setenv("IT_CHECK_MISSING", "now-here-1234", 1);
  auto [code2, out2] = run(" --template probe");
  EXPECT_EQ(code2, 0) << out2;
  EXPECT_THAT(out2, HasSubstr("2 checked, 0 not resolved"));
  EXPECT_EQ(run(" --template nope").first, 2);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace outpost::test
