#include "outpost/security/jwks_file.h"

namespace outpost::security {

bool JwksFile::Identity::operator==(const Identity& o) const {
  return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
         mtime.tv_nsec == o.mtime.tv_nsec;
}

JwksFile::Identity JwksFile::identify(const std::string& path) {
  Identity id;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return id;  // missing: size -1
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  id.size = st.st_size;
  id.mtime = st.st_mtim;
  return id;
}

std::expected<std::shared_ptr<const KeySet>, std::string> JwksFile::read() {
  // Identified before it is read: a change while reading is seen at the next look.
  read_ = identify(path_);
  auto keys = KeySet::loadJwksFile(path_);
  if (!keys) return std::unexpected(keys.error());
  return std::make_shared<const KeySet>(std::move(*keys));
}

bool JwksFile::changed() const {
  return !(identify(path_) == read_);
}

}  // namespace outpost::security
