#include "config_section.h"

#include <charconv>
#include <limits>
#include <stdexcept>

namespace outpost::config_impl {

void listKeys(const Schema& schema, const std::string& prefix, std::set<std::string>& out) {
  for (const Schema* s = &schema; s; s = s->includes) {
    for (const auto& k : s->keys) {
      const std::string path = prefix + std::string(k.name);
      switch (k.kind) {
        case KeyKind::kValue:
          out.insert(path);
          break;
        case KeyKind::kPassThrough:
          out.insert(path + ".*");
          break;
        case KeyKind::kSection:
          listKeys(*k.schema, path + ".", out);
          break;
        case KeyKind::kNamedSections:
          listKeys(*k.schema, path + "." + std::string(k.placeholder) + ".", out);
          break;
      }
    }
  }
}

Section::Section(YAML::Node node, std::string path, const Schema& schema)
    : node_(std::move(node)), path_(std::move(path)), schema_(&schema) {
  if (node_ && !node_.IsNull() && !node_.IsMap()) {
    throw ConfigError(where() + " must be a mapping");
  }
}

std::string Section::where(const std::string& key) const {
  if (key.empty()) return path_.empty() ? "the top level" : "'" + path_ + "'";
  return "'" + child(key) + "'";
}

std::string Section::child(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

const KeySpec& Section::spec(const std::string& key, KeyKind kind) const {
  for (const Schema* s = schema_; s; s = s->includes) {
    for (const auto& k : s->keys) {
      if (k.name != key) continue;
      if (k.kind != kind) {
        throw std::logic_error("the configuration parser reads '" + child(key) +
                               "' as another kind of key than its table says");
      }
      return k;
    }
  }
  throw std::logic_error("the configuration parser reads '" + child(key) +
                         "', which its section's table does not list");
}

YAML::Node Section::get(const std::string& key, KeyKind kind) {
  spec(key, kind);
  used_.insert(key);
  if (!node_ || !node_.IsMap()) return YAML::Node();
  return node_[key];
}

void Section::read(const std::string& key, std::string& out) {
  if (auto n = get(key, KeyKind::kValue); n && !n.IsNull()) out = scalar(n, key);
}

void Section::read(const std::string& key, std::optional<std::string>& out) {
  if (auto n = get(key, KeyKind::kValue); n && !n.IsNull()) out = scalar(n, key);
}

void Section::read(const std::string& key, bool& out) {
  if (auto n = get(key, KeyKind::kValue); n && !n.IsNull()) {
    auto s = scalar(n, key);
    if (s == "true" || s == "yes" || s == "on" || s == "1") {
      out = true;
    } else if (s == "false" || s == "no" || s == "off" || s == "0") {
      out = false;
    } else {
      throw ConfigError(where(key) + " must be true or false, not '" + s + "'");
    }
  }
}

void Section::read(const std::string& key, unsigned& out) {
  if (auto n = get(key, KeyKind::kValue); n && !n.IsNull()) {
    out = static_cast<unsigned>(number(n, key, std::numeric_limits<unsigned>::max()));
  }
}

void Section::read(const std::string& key, std::size_t& out) {
  if (auto n = get(key, KeyKind::kValue); n && !n.IsNull()) {
    out = static_cast<std::size_t>(number(n, key, std::numeric_limits<long long>::max()));
  }
}

void Section::readBytes(const std::string& key, std::uint64_t& out) {
  if (auto n = get(key, KeyKind::kValue); n && !n.IsNull()) {
    auto s = scalar(n, key);
    auto b = parseBytes(s);
    if (!b) {
      throw ConfigError(where(key) + " must be a size such as 1048576, 512MiB or 2GiB, not '" + s +
                        "'");
    }
    out = *b;
  }
}

void Section::read(const std::string& key, Millis& out) {
  if (auto n = get(key, KeyKind::kValue); n && !n.IsNull()) {
    auto s = scalar(n, key);
    auto d = parseDuration(s);
    if (!d) {
      throw ConfigError(where(key) + " must be a duration such as 500ms, 30s, 5m or 2h, not '" + s +
                        "'");
    }
    out = *d;
  }
}

void Section::read(const std::string& key, std::vector<std::string>& out) {
  auto n = get(key, KeyKind::kValue);
  if (!n || n.IsNull()) return;
  if (!n.IsSequence()) throw ConfigError(where(key) + " must be a list");
  out.clear();
  for (std::size_t i = 0; i < n.size(); ++i) {
    out.push_back(scalar(n[i], key + "[" + std::to_string(i) + "]"));
  }
}

void Section::read(const std::string& key, std::map<std::string, std::string>& out) {
  auto n = get(key, KeyKind::kPassThrough);
  if (!n || n.IsNull()) return;
  if (!n.IsMap()) throw ConfigError(where(key) + " must be a mapping");
  for (auto it = n.begin(); it != n.end(); ++it) {
    auto k = it->first.as<std::string>();
    out[k] = scalar(it->second, key + "." + k);
  }
}

Section Section::section(const std::string& key) {
  const KeySpec& k = spec(key, KeyKind::kSection);
  return Section(get(key, KeyKind::kSection), child(key), *k.schema);
}

void Section::forEachEntry(const std::string& key,
                           const std::function<void(const std::string&, Section)>& parse) {
  const KeySpec& k = spec(key, KeyKind::kNamedSections);
  auto n = get(key, KeyKind::kNamedSections);
  if (!n || n.IsNull()) return;
  if (!n.IsMap()) throw ConfigError(where(key) + " must be a mapping");
  for (auto it = n.begin(); it != n.end(); ++it) {
    auto name = it->first.as<std::string>();
    // Looked up by name, as every other key is: of a name given twice, the first counts.
    parse(name, Section(n[name], child(key) + "." + name, *k.schema));
  }
}

void Section::rejectUnknown() const {
  for (const Schema* s = schema_; s; s = s->includes) {
    for (const auto& k : s->keys) {
      if (!used_.contains(std::string(k.name))) {
        throw std::logic_error("the configuration parser never reads '" +
                               child(std::string(k.name)) + "', which its section's table lists");
      }
    }
  }
  if (!node_ || !node_.IsMap()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    auto k = it->first.as<std::string>();
    if (!used_.contains(k)) {
      throw ConfigError(
          "unknown setting " + where(k) +
          " (check its spelling against the configuration reference, docs/configuration.md)");
    }
  }
}

std::string Section::scalar(const YAML::Node& n, const std::string& key) const {
  if (!n.IsScalar()) throw ConfigError(where(key) + " must be a single value");
  return n.Scalar();
}

long long Section::number(const YAML::Node& n, const std::string& key, long long max) const {
  auto s = scalar(n, key);
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0 || v > max) {
    throw ConfigError(where(key) + " must be a whole number from 0 to " + std::to_string(max) +
                      ", not '" + s + "'");
  }
  return v;
}

}  // namespace outpost::config_impl
