#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "outpost/runner/supervisor.h"

namespace outpost {
namespace {

std::string pathOf(const LaunchPlan& plan) {
  for (const auto& kv : plan.env) {
    if (kv.starts_with("PATH=")) return kv.substr(5);
  }
  return "/usr/local/bin:/usr/bin:/bin";
}

// Finds the program the way execvp would, but on the run's PATH rather than the worker's.
std::expected<std::string, std::string> resolveProgram(const LaunchPlan& plan) {
  const std::string& name = plan.argv.front();
  if (name.empty()) return std::unexpected("the template's argv[0] is empty");
  if (name.find('/') != std::string::npos) {
    // A relative path is run after the chdir into the working directory, so check it there.
    std::string where = name.front() == '/' ? name : plan.working_dir + "/" + name;
    if (access(where.c_str(), X_OK) != 0) {
      return std::unexpected("cannot run '" + name + "': " + std::strerror(errno));
    }
    return name;
  }
  std::string path = pathOf(plan);
  std::size_t begin = 0;
  while (begin <= path.size()) {
    auto end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(begin, end - begin);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    begin = end + 1;
  }
  return std::unexpected("program '" + name + "' was not found on PATH (" + path + ")");
}

struct SpawnAttr {
  posix_spawnattr_t attr;
  SpawnAttr() { posix_spawnattr_init(&attr); }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
};
struct SpawnActions {
  posix_spawn_file_actions_t actions;
  SpawnActions() { posix_spawn_file_actions_init(&actions); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions); }
};

}  // namespace

std::expected<pid_t, std::string> PosixLauncher::launch(const LaunchPlan& plan, int stdin_fd,
                                                        int output_fd) {
  auto program = resolveProgram(plan);
  if (!program) return std::unexpected(program.error());

  SpawnAttr a;
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  // New session (so the run is its own process group), no blocked signals, every signal back to
  // its default disposition (the worker ignores SIGPIPE; the job must not inherit that).
  posix_spawnattr_setflags(&a.attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask(&a.attr, &empty);
  posix_spawnattr_setsigdefault(&a.attr, &all);

  SpawnActions f;
  posix_spawn_file_actions_adddup2(&f.actions, stdin_fd, 0);
  posix_spawn_file_actions_adddup2(&f.actions, output_fd, 1);
  posix_spawn_file_actions_adddup2(&f.actions, output_fd, 2);
  posix_spawn_file_actions_addchdir_np(&f.actions, plan.working_dir.c_str());
  posix_spawn_file_actions_addclosefrom_np(&f.actions, 3);

  std::vector<char*> argv, envp;
  for (const auto& s : plan.argv) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  for (const auto& s : plan.env) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, program->c_str(), &f.actions, &a.attr, argv.data(), envp.data());
  if (rc != 0) {
    return std::unexpected("cannot start '" + plan.argv.front() + "': " + std::strerror(rc));
  }
  return pid;
}

}  // namespace outpost
