// The worker's image, built by scripts/image from docker/Dockerfile and run with Debian's podman
// the way an operator runs it: with its config mounted, on the host's network (to reach the test
// broker on loopback). It runs a job, answers /readyz, is healthy by its own HEALTHCHECK, runs as
// a non-root user under tini, and on SIGTERM drains the running job and exits 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"
#include "scrape.h"

namespace outpost::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Shell {
  int status = -1;
  std::string output;  // standard output and error
};

Shell sh(const std::string& command) {
  Shell r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  const int status = pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A port nothing listens on now (the kernel's pick for a socket bound to port 0).
int freePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

// A container removed whatever the test's outcome.
class Container {
 public:
  explicit Container(std::string name) : name_(std::move(name)) {}
  ~Container() { sh("podman rm --force --time 0 " + name_); }
  const std::string& name() const { return name_; }
  std::string logs() const { return sh("podman logs " + name_).output; }

 private:
  std::string name_;
};

class Image : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // runc and explicit ulimits: see docker/podman/containers.conf.
    setenv("CONTAINERS_CONF", OUTPOST_SOURCE_DIR "/docker/podman/containers.conf", 0);
  }
};

TEST_F(Image, RunsAJobAnswersItsProbesAndDrainsOnSigterm) {
  auto info = sh("podman info --format '{{.Host.OCIRuntime.Name}}'");
  if (info.status != 0) {
    GTEST_SKIP() << "podman cannot run here: `podman info` said: " << trim(info.output);
  }
  // The image is built from what scripts/build made: scripts/image takes build/app/outpost.
  const fs::path built = fs::path(OUTPOST_SOURCE_DIR) / "build/app/outpost";
  ASSERT_TRUE(fs::exists(built) && fs::equivalent(built, OUTPOST_BINARY))
      << "scripts/image --prebuilt takes build/app/outpost; this test's binary is "
      << OUTPOST_BINARY;
  // One tag, built again each time: the layers (the apt-get of the runtime libraries above all)
  // stay cached from run to run; what an earlier build left untagged is pruned.
  const std::string tag = "localhost/outpost:ctest";
  auto image = sh(std::string(OUTPOST_SOURCE_DIR) + "/scripts/image --prebuilt --tag " + tag);
  ASSERT_EQ(image.status, 0) << image.output;
  sh("podman image prune --force");

  // What an operator sees of the image.
  auto config =
      sh("podman image inspect --format "
         "'{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Healthcheck}}' " +
         tag);
  ASSERT_EQ(config.status, 0) << config.output;
  EXPECT_THAT(config.output, HasSubstr("10001:10001"));
  EXPECT_THAT(config.output, HasSubstr("tini"));
  EXPECT_THAT(config.output, HasSubstr("/livez"));

  auto topics = createTopics("container", 1);
  const fs::path dir = fs::temp_directory_path() / uniqueName("container");
  fs::create_directories(dir);
  {
    std::ofstream cfg(dir / "outpost.yaml");
    cfg << "worker:\n  id: " << uniqueName("ctr") << "\n  pool: " << uniqueName("ctr")
        << "\n  slots: 2\n  drain_timeout: 60s\n"
        << "kafka:\n  bootstrap_servers: " << bootstrap() << "\n"
        << "topics:\n  prefix: " << topics.prefix << "\n"
        << "templates:\n"
           "  say:\n    argv: [echo, \"{msg}\"]\n    params: {msg: {pattern: \"[a-z0-9-]+\"}}\n"
           "    recipe: none\n"
           "  nap:\n    argv: [sleep, \"{s}\"]\n    params: {s: {pattern: \"[0-9]+\"}}\n"
           "    recipe: none\n";
  }
  fs::permissions(dir / "outpost.yaml", fs::perms::others_read, fs::perm_options::add);

  Container c(uniqueName("outpost-test"));
  // The image listens on 0.0.0.0:9464 (for probes from outside a pod); on the host's network a
  // test takes a free port on loopback instead, which the HEALTHCHECK follows.
  const int port = freePort();
  auto run = sh("podman run --detach --name " + c.name() + " --network host --env " +
                "OUTPOST_HTTP__LISTEN=127.0.0.1:" + std::to_string(port) + " --volume " +
                (dir / "outpost.yaml").string() + ":/etc/outpost/outpost.yaml:ro " + tag);
  ASSERT_EQ(run.status, 0) << run.output;

  auto ready = waitFor(port, "/readyz", 200);
  EXPECT_EQ(ready.status, 200) << ready.body << "\n" << c.logs();
  EXPECT_EQ(trim(sh("podman exec " + c.name() + " id -u").output), "10001");
  EXPECT_EQ(trim(sh("podman exec " + c.name() + " cat /proc/1/comm").output), "tini");
  auto health = sh("podman healthcheck run " + c.name());
  EXPECT_EQ(health.status, 0) << "HEALTHCHECK: " << health.output;

  // A job through the container.
  auto say = makeCommand("say", {{"msg", "from-the-container"}});
  submit(topics, say);
  TopicReader events(topics.events);
  ASSERT_TRUE(events.readUntil([&](const auto& r) {
    return terminalByRun(r).contains(say.run_id());
  })) << c.logs();
  const auto said = terminalByRun(events.records())[say.run_id()].front();
  EXPECT_EQ(said.state(), v1::SUCCEEDED) << said.message();
  EXPECT_THAT(said.log_tail(), HasSubstr("from-the-container"));

  // SIGTERM while a job runs: the worker drains it, then exits 0.
  auto nap = makeCommand("nap", {{"s", "3"}});
  submit(topics, nap);
  ASSERT_TRUE(events.readUntil([&](const auto& records) {
    for (const auto& e : decodeEvents(records)) {
      if (e.run_id() == nap.run_id() && e.state() == v1::STARTED) return true;
    }
    return false;
  })) << c.logs();
  auto kill = sh("podman kill --signal TERM " + c.name());
  ASSERT_EQ(kill.status, 0) << kill.output;
  auto waited = sh("timeout 120 podman wait " + c.name());
  ASSERT_EQ(waited.status, 0) << waited.output;
  EXPECT_EQ(trim(waited.output), "0") << "exit status after SIGTERM\n" << c.logs();
  ASSERT_TRUE(
      events.readUntil([&](const auto& r) { return terminalByRun(r).contains(nap.run_id()); }));
  EXPECT_EQ(terminalByRun(events.records())[nap.run_id()].front().state(), v1::SUCCEEDED)
      << "the running job was drained, not killed\n"
      << c.logs();
  EXPECT_THAT(c.logs(), HasSubstr("drain"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace outpost::test
