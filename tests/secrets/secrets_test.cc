// Secret references, the env and file providers, the resolver's cache, and the masker.
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outpost/common/utf8.h"
#include "outpost/secrets/masker.h"
#include "outpost/secrets/providers.h"
#include "outpost/secrets/reference.h"
#include "outpost/secrets/resolver.h"

namespace outpost::secrets {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<TextPart> parse(std::string_view text) {
  auto r = parseReferences(text);
  EXPECT_TRUE(r.has_value()) << r.error();
  return r.value_or(std::vector<TextPart>{});
}

TEST(References, AllFormsParse) {
  auto p = parse(
      "a ${DB_PASS} b ${aws-sm:arn:aws:sm:eu-1:1:secret:prod/db#creds.password} "
      "secret:/prod/api-key, ${azure-kv:api/v2} ${vault:kv/app#token} $${literal}");
  std::vector<std::string> refs;
  std::string literal;
  for (const auto& part : p) {
    if (part.is_reference) {
      refs.push_back(part.ref.provider + "|" + part.ref.path + "|" + part.ref.field + "|" +
                     part.ref.version);
    } else {
      literal += part.literal;
    }
  }
  EXPECT_EQ(refs, (std::vector<std::string>{
                      "|DB_PASS||", "aws-sm|arn:aws:sm:eu-1:1:secret:prod/db|creds.password|",
                      "secret|prod/api-key||", "azure-kv|api||v2", "vault|kv/app|token|"}));
  EXPECT_EQ(literal, "a  b  ,   ${literal}");
}

TEST(References, MalformedOnesNameTheirPosition) {
  EXPECT_THAT(parseReferences("x ${UNCLOSED").error(),
              AllOf(HasSubstr("not closed"), HasSubstr("byte 2")));
  EXPECT_THAT(parseReferences("${}").error(), HasSubstr("empty"));
  EXPECT_THAT(parseReferences("ok ${nope:x}").error(),
              AllOf(HasSubstr("unknown provider 'nope'"), HasSubstr("byte 3")));
  EXPECT_THAT(parseReferences("${A B}").error(), HasSubstr("cannot hold"));
  EXPECT_THAT(parseReferences("${file:../etc/shadow}").error(),
              HasSubstr("inside the secrets directory"));
  EXPECT_THAT(parseReferences("${aws-sm:x#}").error(), HasSubstr("empty #field"));
  EXPECT_THAT(parseReferences("${A ${B}}").error(), HasSubstr("not closed"));
}

// A reference sits in a recipe or an environment value, which may hold credentials of their own,
// and bad input may be any bytes: an error names the position and quotes at most a short escaped
// excerpt, always valid UTF-8 (it goes into REJECTED events and dead-letter headers).
TEST(References, ErrorsNeverQuoteTheRecipeAndAreValidUtf8) {
  const std::string credential = "password=hunter2-in-the-recipe";
  const std::string bad_bytes = "\xff\xfe\xc3";
  for (const std::string& text :
       {"x ${" + credential + bad_bytes, "${" + bad_bytes + credential + "}",
        "${" + credential + bad_bytes + ":x}", "${nope" + bad_bytes + credential + ":x}",
        "${aws-sm:" + credential + "#}", "secret:/" + bad_bytes + credential}) {
    auto parsed = parseReferences(text);
    ASSERT_FALSE(parsed.has_value()) << text;
    const auto& error = parsed.error();
    EXPECT_TRUE(isValidUtf8(error)) << error;
    EXPECT_THAT(error, Not(HasSubstr("hunter2"))) << error;
    EXPECT_THAT(error, HasSubstr("at byte")) << error;
    EXPECT_LE(error.size(), 160u) << error;
  }
}

TEST(References, ScopeNames) {
  auto p = parse("${A}${env:B}${aws-sm:prod/db#pw}secret:/x/y");
  EXPECT_EQ(scopeName(p[0].ref), "A");
  EXPECT_EQ(scopeName(p[1].ref), "env:B");
  EXPECT_EQ(scopeName(p[2].ref), "aws-sm:prod/db");
  EXPECT_EQ(scopeName(p[3].ref), "secret:/x/y");
}

TEST(Providers, EnvAndJsonFields) {
  EnvSecretProvider env(
      {{"PLAIN", "hunter22"}, {"JSON", R"({"db":{"password":"s3cret!"},"n":5})"}});
  EXPECT_EQ(env.fetch(SecretRef{"env", "PLAIN", "", "", "${env:PLAIN}"})->value.reveal(),
            "hunter22");
  EXPECT_EQ(env.fetch(SecretRef{"env", "JSON", "db.password", "", "${env:JSON#db.password}"})
                ->value.reveal(),
            "s3cret!");
  EXPECT_EQ(env.fetch(SecretRef{"env", "JSON", "n", "", "x"})->value.reveal(), "5");
  auto missing = env.fetch(SecretRef{"env", "NOPE", "", "", "${env:NOPE}"});
  EXPECT_EQ(missing.error().kind, SecretError::Kind::kNotFound);
  auto nofield = env.fetch(SecretRef{"env", "JSON", "db.user", "", "${env:JSON#db.user}"});
  EXPECT_THAT(nofield.error().message, HasSubstr("no field 'db.user'"));
  auto notjson = env.fetch(SecretRef{"env", "PLAIN", "x", "", "${env:PLAIN#x}"});
  EXPECT_THAT(notjson.error().message, HasSubstr("not a JSON object"));
  EXPECT_THAT(notjson.error().message, Not(HasSubstr("hunter22")));
}

TEST(Providers, FilesStripOneTrailingNewlineAndAreCapped) {
  auto dir =
      std::filesystem::temp_directory_path() / ("outpost-secrets-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "token") << "abc123\n";
  std::ofstream(dir / "big") << std::string(2000, 'x');
  FileSecretProvider files(dir.string(), 1000);
  EXPECT_EQ(files.fetch(SecretRef{"file", "token", "", "", "${file:token}"})->value.reveal(),
            "abc123");
  EXPECT_THAT(files.fetch(SecretRef{"file", "big", "", "", "${file:big}"}).error().message,
              HasSubstr("larger than 1000 bytes"));
  EXPECT_EQ(files.fetch(SecretRef{"file", "none", "", "", "${file:none}"}).error().kind,
            SecretError::Kind::kNotFound);
  EXPECT_EQ(files.fetch(SecretRef{"file", "../x", "", "", "${file:../x}"}).error().kind,
            SecretError::Kind::kInvalid);
  std::filesystem::remove_all(dir);
}

class ManualClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point{} + t;
  }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::time_point{} + t;
  }
  std::chrono::milliseconds t{1'000'000};
};

// Counts fetches and can hold them, to see concurrent askers share one.
class CountingProvider final : public SecretProvider {
 public:
  std::string name() const override { return "env"; }
  std::expected<FetchedSecret, SecretError> fetch(const SecretRef& ref) override {
    ++calls;
    if (hold) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (ref.path != "KNOWN")
      return std::unexpected(SecretError{SecretError::Kind::kNotFound, ref.text + ": nope"});
    return FetchedSecret{SecretValue(value), "v1"};
  }
  std::atomic<int> calls{0};
  bool hold = false;
  std::string value = "first-value";
};

TEST(Resolver, CachesForTheTtlThenSeesARotation) {
  ManualClock clock;
  auto p = std::make_shared<CountingProvider>();
  SecretResolver r({{"env", p}}, {"env"}, "", std::chrono::minutes(5), std::chrono::hours(1),
                   clock);
  SecretRef ref{"", "KNOWN", "", "", "${KNOWN}"};
  EXPECT_EQ(r.resolve(ref)->value.reveal(), "first-value");
  EXPECT_TRUE(r.resolve(ref)->cached);
  EXPECT_EQ(p->calls, 1);
  p->value = "rotated-value";
  clock.t += std::chrono::minutes(6);
  EXPECT_EQ(r.resolve(ref)->value.reveal(), "rotated-value");
  EXPECT_EQ(p->calls, 2);
  // Both the old and the new value stay masked.
  EXPECT_EQ(r.masker()->mask("a first-value b rotated-value"), "a *** b ***");
  clock.t += std::chrono::hours(2);
  EXPECT_EQ(r.masker()->mask("first-value"), "first-value") << "forgotten after mask_for";
}

TEST(Resolver, ConcurrentAskersShareOneFetch) {
  ManualClock clock;
  auto p = std::make_shared<CountingProvider>();
  p->hold = true;
  SecretResolver r({{"env", p}}, {"env"}, "", std::chrono::minutes(5), std::chrono::hours(1),
                   clock);
  SecretRef ref{"", "KNOWN", "", "", "${KNOWN}"};
  std::vector<std::future<bool>> f;
  for (int i = 0; i < 8; ++i) {
    f.push_back(std::async(std::launch::async, [&] { return r.resolve(ref).has_value(); }));
  }
  for (auto& x : f) EXPECT_TRUE(x.get());
  EXPECT_EQ(p->calls, 1);
}

// A reload's new stores answer the next lookup at once (nothing cached under the old settings is
// used), and a value resolved before stays masked: a run started earlier may still print it.
TEST(Resolver, ReconfigureEmptiesTheCacheAndKeepsMaskingWhatWasResolved) {
  ManualClock clock;
  auto before = std::make_shared<EnvSecretProvider>(Environment{{"DB", "value-from-before"}});
  SecretResolver r({{"env", before}}, {"env"}, "", std::chrono::minutes(5), std::chrono::hours(1),
                   clock);
  SecretRef ref{"", "DB", "", "", "${DB}"};
  EXPECT_EQ(r.resolve(ref)->value.reveal(), "value-from-before");
  auto after = std::make_shared<EnvSecretProvider>(Environment{{"DB", "value-from-after"}});
  r.reconfigure({{{"env", after}}, {"env"}, "", std::chrono::minutes(5), std::chrono::hours(1)});
  auto got = r.resolve(ref);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->value.reveal(), "value-from-after");
  EXPECT_FALSE(got->cached);
  EXPECT_EQ(r.masker()->mask("value-from-before value-from-after"), "*** ***");
  EXPECT_EQ(r.stats().fetches.at({"env", "ok"}), 2u) << "the stats go on counting";
}

// A fetch that began under the old settings still answers, but its value is not cached: the
// next lookup asks the new stores.
TEST(Resolver, AFetchInProgressDuringReconfigureIsNotCached) {
  ManualClock clock;
  auto slow = std::make_shared<CountingProvider>();
  slow->hold = true;
  SecretResolver r({{"env", slow}}, {"env"}, "", std::chrono::minutes(5), std::chrono::hours(1),
                   clock);
  SecretRef ref{"", "KNOWN", "", "", "${KNOWN}"};
  auto first = std::async(std::launch::async, [&] { return r.resolve(ref); });
  while (slow->calls == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto fresh = std::make_shared<CountingProvider>();
  fresh->value = "fresh-value";
  r.reconfigure({{{"env", fresh}}, {"env"}, "", std::chrono::minutes(5), std::chrono::hours(1)});
  EXPECT_EQ(first.get()->value.reveal(), "first-value");
  EXPECT_EQ(r.resolve(ref)->value.reveal(), "fresh-value");
  EXPECT_EQ(fresh->calls, 1);
}

TEST(Resolver, TheChainTriesProvidersInOrderAndNamesThem) {
  ManualClock clock;
  auto env = std::make_shared<EnvSecretProvider>(Environment{{"B", "from-env-b"}});
  SecretResolver r({{"env", env}}, {"env"}, "", std::chrono::minutes(5), std::chrono::hours(1),
                   clock);
  EXPECT_EQ(r.resolve(SecretRef{"", "B", "", "", "${B}"})->provider, "env");
  auto miss = r.resolve(SecretRef{"", "C", "", "", "${C}"});
  EXPECT_THAT(miss.error().message, HasSubstr("${C}: not found in env"));
  auto cloud = r.resolve(SecretRef{"secret", "x", "", "", "secret:/x"});
  EXPECT_THAT(cloud.error().message, HasSubstr("secrets.default_cloud"));
}

TEST(Masker, MasksEveryEncodingAndNothingShort) {
  SecretValue v("p@ss w0rd/\"x\"");
  SecretValue tiny("abc");
  SecretMasker m({&v, &tiny});
  for (const auto& form : maskedForms(v.reveal())) {
    EXPECT_EQ(m.mask("<" + form + ">"), "<***>") << form;
  }
  EXPECT_EQ(m.mask("abc"), "abc");
  EXPECT_EQ(m.mask("no secrets here"), "no secrets here");
}

TEST(Masker, CountsEachMaskItWritesOnceAcrossChunks) {
  SecretValue a("correct-horse-battery");
  SecretMasker m({&a});
  const auto before = SecretMasker::redactions();
  EXPECT_EQ(m.mask("nothing here"), "nothing here");
  EXPECT_EQ(SecretMasker::redactions(), before);
  auto s = m.stream();
  std::string out = s->feed("1 correct-hor");
  out += s->feed("se-battery 2 correct-horse-battery");
  out += s->flush();
  EXPECT_EQ(out, "1 *** 2 ***");
  EXPECT_EQ(SecretMasker::redactions(), before + 2);
}

TEST(Masker, StreamsAcrossEveryChunkBoundary) {
  SecretValue a("correct-horse-battery"), b("staple-9876");
  SecretMasker m({&a, &b});
  const std::string text = "x correct-horse-battery y staple-9876staple-9876 z";
  for (std::size_t cut1 = 0; cut1 <= text.size(); ++cut1) {
    for (std::size_t cut2 = cut1; cut2 <= text.size(); cut2 += 3) {
      auto s = m.stream();
      std::string out = s->feed(text.substr(0, cut1));
      out += s->feed(text.substr(cut1, cut2 - cut1));
      out += s->feed(text.substr(cut2));
      out += s->flush();
      ASSERT_EQ(out, "x *** y *** z") << cut1 << "/" << cut2;
    }
  }
}

// What masking `text` must give, found the slow way: every occurrence of every form.
std::string naiveMask(const std::vector<SecretValue>& values, const std::string& text) {
  std::vector<bool> hit(text.size());
  for (const auto& v : values) {
    for (const auto& f : maskedForms(v.reveal())) {
      for (auto pos = text.find(f); pos != std::string::npos; pos = text.find(f, pos + 1)) {
        for (std::size_t i = 0; i < f.size(); ++i) hit[pos + i] = true;
      }
    }
  }
  std::string want;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!hit[i])
      want += text[i];
    else if (i == 0 || !hit[i - 1])
      want += "***";
  }
  return want;
}

// Short values over a three-letter alphabet, so that text over four letters is full of
// overlapping and adjacent matches.
std::vector<SecretValue> denseValues(std::mt19937& rng) {
  std::vector<SecretValue> values;
  for (int i = 0; i < 20; ++i) {
    std::string v;
    for (int k = 0; k < 4 + i % 7; ++k) v += static_cast<char>('a' + rng() % 3);
    values.emplace_back(v);
  }
  return values;
}

std::string randomText(std::mt19937& rng, std::size_t n) {
  std::string text;
  for (std::size_t k = 0; k < n; ++k) text += static_cast<char>('a' + rng() % 4);
  return text;
}

TEST(Masker, AgreesWithANaiveSearchOnRandomText) {
  std::mt19937 rng(7);
  auto values = denseValues(rng);
  std::vector<const SecretValue*> ptrs;
  for (const auto& v : values) ptrs.push_back(&v);
  SecretMasker m(ptrs);
  for (int round = 0; round < 200; ++round) {
    auto text = randomText(rng, 60);
    ASSERT_EQ(m.mask(text), naiveMask(values, text)) << text;
  }
}

// Large chunks are scanned as two halves side by side; matches across the middle, across
// chunks and near both ends must come out as from one pass.
TEST(Masker, AgreesWithANaiveSearchOnLongTextInChunksOfEverySize) {
  std::mt19937 rng(11);
  auto values = denseValues(rng);
  std::vector<const SecretValue*> ptrs;
  for (const auto& v : values) ptrs.push_back(&v);
  SecretMasker m(ptrs);
  for (int round = 0; round < 30; ++round) {
    auto text = randomText(rng, 30'000 + rng() % 5'000);
    auto s = m.stream();
    std::string out;
    for (std::size_t pos = 0; pos < text.size();) {
      std::size_t n = std::min<std::size_t>(text.size() - pos, 1 + rng() % 12'000);
      out += s->feed(std::string_view(text).substr(pos, n));
      pos += n;
    }
    out += s->flush();
    ASSERT_EQ(out, naiveMask(values, text)) << "round " << round;
  }
}

}  // namespace
}  // namespace outpost::secrets
