// How the configuration loader reads one YAML mapping: against a table of the keys that mapping
// accepts (its Schema), which is also what rejects unknown keys and what acceptedConfigKeys()
// lists. Private to common/; each section's table sits beside the function that parses it.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "outpost/common/config.h"

namespace outpost::config_impl {

struct Schema;

enum class KeyKind {
  kValue,          // a single value or a list of them
  kPassThrough,    // a mapping of names the file chooses to values, passed on unchecked
  kSection,        // a mapping with its own Schema
  kNamedSections,  // a mapping of names the file chooses, each a mapping with the same Schema
};

// One key a mapping accepts: {"slots"}, {"properties", KeyKind::kPassThrough},
// {"http", KeyKind::kSection, &kLineageHttpSchema}, {"params", KeyKind::kNamedSections,
// &kParamSchema, "<param>"}.
struct KeySpec {
  constexpr KeySpec(std::string_view name_, KeyKind kind_ = KeyKind::kValue,
                    const Schema* schema_ = nullptr, std::string_view placeholder_ = {})
      : name(name_), kind(kind_), schema(schema_), placeholder(placeholder_) {}

  std::string_view name;
  KeyKind kind;
  const Schema* schema;          // kSection, kNamedSections: what the mapping(s) hold
  std::string_view placeholder;  // kNamedSections: how the reference writes a chosen name
};

// The keys one mapping accepts: its own, then those of `includes` (settings several sections
// share, such as a secret store's transport).
struct Schema {
  std::span<const KeySpec> keys;
  const Schema* includes = nullptr;
};

// Adds every key `schema` accepts to `out`, as full paths under `prefix` ("" or "a.b."): values
// and pass-through maps ("a.b.*"), not the mappings that hold them.
void listKeys(const Schema& schema, const std::string& prefix, std::set<std::string>& out);

// Reads one mapping of the file. Every key it is asked for must be in its Schema, and every key of
// the Schema must be asked for before rejectUnknown(): both are invariants of the parser, checked
// (std::logic_error), so that the table and the code that reads it cannot drift apart. Keys in
// the file that the Schema does not list are configuration errors naming their full path.
class Section {
 public:
  // A missing or null `node` is an absent section: every read keeps its default.
  Section(YAML::Node node, std::string path, const Schema& schema);

  // Whether the mapping is in the file (an empty one counts).
  bool given() const { return node_ && !node_.IsNull(); }

  // How a message names this section, or one of its keys: "'worker.slots'".
  std::string where(const std::string& key = "") const;
  // The full path of one of its keys: "worker.slots".
  std::string child(const std::string& key) const;

  // Each leaves `out` as it is when the key is absent or null.
  void read(const std::string& key, std::string& out);
  void read(const std::string& key, std::optional<std::string>& out);
  void read(const std::string& key, bool& out);
  void read(const std::string& key, unsigned& out);
  void read(const std::string& key, std::size_t& out);
  void read(const std::string& key, Millis& out);
  void read(const std::string& key, std::vector<std::string>& out);
  // Sizes: a number of bytes, or with KiB, MiB, GiB (also KB, MB, GB as powers of 1000).
  void readBytes(const std::string& key, std::uint64_t& out);
  // A kPassThrough key: merged into `out`.
  void read(const std::string& key, std::map<std::string, std::string>& out);

  // A kSection key, given or not.
  Section section(const std::string& key);
  // A kNamedSections key: `parse` is called for each entry in the file's order, with its name.
  void forEachEntry(const std::string& key,
                    const std::function<void(const std::string&, Section)>& parse);

  // Throws for the first key present but not in the Schema.
  void rejectUnknown() const;

 private:
  const KeySpec& spec(const std::string& key, KeyKind kind) const;
  YAML::Node get(const std::string& key, KeyKind kind);
  std::string scalar(const YAML::Node& n, const std::string& key) const;
  long long number(const YAML::Node& n, const std::string& key, long long max) const;

  YAML::Node node_;
  std::string path_;
  const Schema* schema_;
  std::set<std::string> used_;
};

// The sections parsed outside config.cc, by their owners.
extern const Schema kSecretsSchema;
SecretsConfig parseSecrets(Section s);
extern const Schema kSecuritySchema;
SecurityConfig parseSecurity(Section s);
extern const Schema kTemplateSchema;
TemplateConfig parseTemplate(const std::string& name, Section s);

}  // namespace outpost::config_impl
