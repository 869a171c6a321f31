// The configuration reference, docs/configuration.md, held to the parser: every key the worker
// accepts (acceptedConfigKeys(), listed from the tables the loader rejects unknown keys with) is
// documented, and every key the reference names is one the worker accepts.
//
// The convention docs/configuration.md keeps, and the only thing this test reads of it:
//  - A reference table is a Markdown table whose header's first cell is `key`
//    (`| key | default | meaning |`). Other tables, prose and code blocks are not read.
//  - The first cell of each row of a reference table holds keys and nothing else: full dotted
//    paths, each in backticks (`worker.slots`), several separated by `,` or `/`. A range or a
//    shorthand (`topics.jobs` … `topics.runs`, `.profile`) is refused rather than guessed at.
//  - Paths are written as acceptedConfigKeys() writes them: `<name>` and `<param>` for a name the
//    file chooses (`templates.<name>.argv`), a final `.*` for a pass-through mapping
//    (`kafka.properties.*`). Mappings that only hold other keys (`secrets.aws`) are not keys.
//  - Each key is documented once.
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outpost/common/config.h"

namespace outpost {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const std::string kReferencePath = std::string(OUTPOST_SOURCE_DIR) + "/docs/configuration.md";

// What a reference says: each key with the lines it is on, and what breaks the convention.
struct Reference {
  std::map<std::string, std::vector<int>> keys;
  std::vector<std::string> problems;
};

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// The cells of a table row, `\|` kept inside its cell.
std::vector<std::string> cellsOf(const std::string& row) {
  std::vector<std::string> cells;
  std::string cell;
  for (std::size_t i = 1; i < row.size(); ++i) {  // row[0] is the leading '|'
    if (row[i] == '\\' && i + 1 < row.size() && row[i + 1] == '|') {
      cell += '|';
      ++i;
    } else if (row[i] == '|') {
      cells.push_back(trim(cell));
      cell.clear();
    } else {
      cell += row[i];
    }
  }
  if (!trim(cell).empty()) cells.push_back(trim(cell));
  return cells;
}

// The keys of a reference row's first cell, or a problem when it holds anything but keys.
void readKeyCell(const std::string& cell, int line, Reference& ref) {
  const std::string where = "line " + std::to_string(line) + ": ";
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < cell.size(); ++i) {
    const char c = cell[i];
    if (c == ' ' || c == ',' || c == '/') continue;
    if (c != '`') {
      ref.problems.push_back(where + "the key cell '" + cell +
                             "' holds text outside backticks; write each key's full path");
      return;
    }
    const auto end = cell.find('`', i + 1);
    if (end == std::string::npos) {
      ref.problems.push_back(where + "unclosed backtick in '" + cell + "'");
      return;
    }
    const std::string key = cell.substr(i + 1, end - i - 1);
    if (key.empty() || key.front() == '.' || key.find_first_of(" \t") != std::string::npos) {
      ref.problems.push_back(where + "'" + key + "' is not a full dotted path");
      return;
    }
    keys.push_back(key);
    i = end;
  }
  if (keys.empty()) ref.problems.push_back(where + "a reference row without a key");
  for (const auto& k : keys) ref.keys[k].push_back(line);
}

Reference readReference(const std::string& text) {
  Reference ref;
  std::istringstream in(text);
  bool in_code = false;
  bool in_table = false;
  bool reference_table = false;
  int header_line = 0;
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    const std::string t = trim(line);
    if (t.starts_with("```")) in_code = !in_code;
    if (in_code || !t.starts_with('|')) {
      in_table = false;
      continue;
    }
    if (!in_table) {  // a header row
      in_table = true;
      header_line = n;
      const auto cells = cellsOf(t);
      reference_table = !cells.empty() && cells.front() == "key";
      continue;
    }
    if (!reference_table || n == header_line + 1) continue;  // not read, or |---|---|
    const auto cells = cellsOf(t);
    readKeyCell(cells.empty() ? "" : cells.front(), n, ref);
  }
  for (const auto& [key, lines] : ref.keys) {
    if (lines.size() > 1) {
      std::string at;
      for (int l : lines) at += " " + std::to_string(l);
      ref.problems.push_back("'" + key + "' is documented more than once, on lines" + at);
    }
  }
  return ref;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Keys of `a` not in `b`.
std::vector<std::string> missingFrom(const std::set<std::string>& a,
                                     const std::map<std::string, std::vector<int>>& b) {
  std::vector<std::string> out;
  for (const auto& k : a) {
    if (!b.contains(k)) out.push_back(k);
  }
  return out;
}

// Keys of `documented` the parser does not accept, each with the line it is first on.
std::vector<std::string> refusedOf(const std::set<std::string>& accepted,
                                   const std::map<std::string, std::vector<int>>& documented) {
  std::vector<std::string> out;
  for (const auto& [key, at] : documented) {
    if (!accepted.contains(key)) out.push_back(key + " (line " + std::to_string(at[0]) + ")");
  }
  return out;
}

std::string lines(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += "\n  " + i;
  return out;
}

// ---------------------------------------------------------------------------------------------
// docs/configuration.md against the parser

class ConfigReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    text_ = readFile(kReferencePath);
    ASSERT_FALSE(text_.empty()) << "cannot read " << kReferencePath;
    ref_ = readReference(text_);
  }
  std::string text_;
  Reference ref_;
};

TEST_F(ConfigReferenceTest, KeepsTheConventionOfItsKeyTables) {
  EXPECT_THAT(ref_.problems, IsEmpty()) << kReferencePath << ":" << lines(ref_.problems);
}

TEST_F(ConfigReferenceTest, DocumentsEveryKeyTheWorkerAccepts) {
  const auto undocumented = missingFrom(acceptedConfigKeys(), ref_.keys);
  EXPECT_THAT(undocumented, IsEmpty())
      << "the worker accepts these keys, which " << kReferencePath
      << " does not document (add a row to the section's `| key |` table):" << lines(undocumented);
}

TEST_F(ConfigReferenceTest, NamesOnlyKeysTheWorkerAccepts) {
  const auto refused = refusedOf(acceptedConfigKeys(), ref_.keys);
  EXPECT_THAT(refused, IsEmpty()) << kReferencePath
                                  << " documents keys the worker refuses as unknown:"
                                  << lines(refused);
}

// ---------------------------------------------------------------------------------------------
// acceptedConfigKeys: what it lists, and that the loader takes each of them

TEST(AcceptedConfigKeys, ListsLeavesWithPlaceholdersAndPassThroughMaps) {
  const auto keys = acceptedConfigKeys();
  for (const char* k :
       {"kafka.bootstrap_servers", "worker.slots", "templates.<name>.argv",
        "templates.<name>.params.<param>.pattern", "templates.<name>.env.*",
        "templates.<name>.limits.cpu_time", "secrets.vault.address", "secrets.azure.max_attempts",
        "kafka.properties.*", "lineage.http.flush_timeout"}) {
    EXPECT_TRUE(keys.contains(k)) << k;
  }
  for (const char* k : {"kafka", "kafka.properties", "secrets.aws", "templates.<name>",
                        "templates.<name>.limits", "lineage.http"}) {
    EXPECT_FALSE(keys.contains(k)) << k << " holds keys; it is not one";
  }
}

// A YAML file that sets `path` ("a.b.c") to `value`, with chosen names for the placeholders.
std::string yamlSetting(const std::string& path, const std::string& value) {
  std::string yaml;
  std::string indent;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    std::string segment = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (segment == "<name>") segment = "t";
    if (segment == "<param>") segment = "p";
    if (segment == "*") segment = "any.key";
    yaml += indent + "'" + segment + "':";
    if (dot == std::string::npos) break;
    yaml += "\n";
    indent += "  ";
    start = dot + 1;
  }
  return yaml + " " + value + "\n";
}

// The lists are taken from the loader's tables; this holds them to what the loader does with a
// file: none of the keys is unknown to it, and a key not listed is.
TEST(AcceptedConfigKeys, EveryListedKeyIsTakenByTheLoader) {
  const auto unknown = [](const std::string& yaml) {
    try {
      parseConfig(yaml, {});
    } catch (const ConfigError& e) {
      // Any other error (a bad value, a missing required setting) comes after the key was read.
      return std::string(e.what()).find("unknown setting") != std::string::npos;
    }
    return false;
  };
  const auto keys = acceptedConfigKeys();
  ASSERT_THAT(keys, SizeIs(::testing::Gt(100u)));
  for (const auto& key : keys) EXPECT_FALSE(unknown(yamlSetting(key, "'1'"))) << key;
  EXPECT_TRUE(unknown(yamlSetting("worker.slotz", "'1'")));
  EXPECT_TRUE(unknown(yamlSetting("templates.<name>.limits.cpu", "'1'")));
}

// ---------------------------------------------------------------------------------------------
// The reader of the convention: it finds what is there, and refuses what would hide a key

TEST(ConfigReferenceReader, ReadsKeysOnlyFromKeyTablesAndNotFromCode) {
  const auto ref = readReference(
      "| key | default | meaning |\n"
      "|---|---|---|\n"
      "| `a.b` | `1` | x |\n"
      "| `a.c`, `a.d` / `a.e` | | y \\| z |\n"
      "\n"
      "| value | default | meaning |\n"
      "|---|---|---|\n"
      "| `not.a.key` | | |\n"
      "```\n"
      "| key |\n"
      "|---|\n"
      "| `in.code` |\n"
      "```\n");
  EXPECT_THAT(ref.problems, IsEmpty()) << lines(ref.problems);
  std::vector<std::string> found;
  for (const auto& [k, at] : ref.keys) found.push_back(k);
  EXPECT_THAT(found, ElementsAre("a.b", "a.c", "a.d", "a.e"));
  EXPECT_THAT(ref.keys.at("a.d"), ElementsAre(4));
}

TEST(ConfigReferenceReader, RefusesRangesShorthandsAndRowsWithoutKeys) {
  const std::string head = "| key | default | meaning |\n|---|---|---|\n";
  EXPECT_THAT(readReference(head + "| `t.jobs` … `t.runs` | | |\n").problems,
              ElementsAre(HasSubstr("outside backticks")));
  EXPECT_THAT(readReference(head + "| `s.aws.region`, `.profile` | | |\n").problems,
              ElementsAre(HasSubstr("not a full dotted path")));
  EXPECT_THAT(readReference(head + "| templates | | |\n").problems,
              ElementsAre(HasSubstr("outside backticks")));
  EXPECT_THAT(readReference(head + "| | | |\n").problems, ElementsAre(HasSubstr("without a key")));
  EXPECT_THAT(readReference(head + "| `a` | | |\n| `a` | | |\n").problems,
              ElementsAre(HasSubstr("more than once")));
}

// What the two comparisons above see when the reference and the parser disagree.
TEST(ConfigReferenceReader, AKeyLeftOutOrMadeUpIsFound) {
  const auto accepted = acceptedConfigKeys();
  std::map<std::string, std::vector<int>> documented;
  for (const auto& k : accepted) documented[k] = {1};
  EXPECT_THAT(missingFrom(accepted, documented), IsEmpty());
  EXPECT_THAT(refusedOf(accepted, documented), IsEmpty());
  documented.erase("worker.slots");
  EXPECT_THAT(missingFrom(accepted, documented), ElementsAre("worker.slots"));
  documented["worker.slotz"] = {7};
  EXPECT_THAT(refusedOf(accepted, documented), ElementsAre("worker.slotz (line 7)"));
}

}  // namespace
}  // namespace outpost
