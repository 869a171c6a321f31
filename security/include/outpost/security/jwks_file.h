// The trusted keys' file (security.trusted_keys), read at start and again whenever it changes:
// keys are rotated by rewriting or replacing the file, without a restart.
#pragma once

#include <sys/stat.h>
#include <expected>
#include <memory>
#include <string>

#include "outpost/security/keys.h"

namespace outpost::security {

// Not thread-safe: one owner (the worker's poll thread).
class JwksFile {
 public:
  explicit JwksFile(std::string path) : path_(std::move(path)) {}

  // Reads and parses the file, and remembers which file that was (device, inode, size, mtime),
  // also when it is refused, so that a bad file is reported once, not at every look.
  std::expected<std::shared_ptr<const KeySet>, std::string> read();
  // Whether the file at the path is no longer the one read last: written, replaced (a rename or a
  // Kubernetes Secret's symlink swap) or removed.
  bool changed() const;
  const std::string& path() const { return path_; }

 private:
  struct Identity {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    struct timespec mtime {};
    bool operator==(const Identity& o) const;
  };
  static Identity identify(const std::string& path);

  std::string path_;
  Identity read_;
};

}  // namespace outpost::security
