// sanitizeUtf8 and TailBuffer: a run's output tail is bounded, counted exactly and valid UTF-8.
#include <cstdint>
#include <random>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outpost/runner/output.h"

namespace outpost::runner {
namespace {

using ::testing::HasSubstr;

const std::string kFffd = "\xEF\xBF\xBD";
// Pieces of invalid or partial text, named so that no hex escape runs into the next letter.
const std::string kEuro = "\xE2\x82\xAC";   // U+20AC, three bytes
const std::string kEuroTail = "\x82\xAC";   // the euro sign without its lead byte
const std::string kFf = "\xFF";             // never valid in UTF-8
const std::string kContinuation = "\x80";   // a continuation byte on its own
const std::string kLeadOfTwo = "\xC3";      // starts a two-byte character
const std::string kHalfEmoji = "\xF0\x9F";  // first half of U+1F600

// A strict UTF-8 validator, written independently of the one under test: shortest forms only,
// no surrogates, nothing past U+10FFFF. NUL is also refused, as the sanitizer replaces it.
bool isValidUtf8NoNul(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 == 0) return false;
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    auto cont = [&](std::size_t k) {
      return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    };
    auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      if (!cont(1)) return false;
      i += 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      if (!cont(1) || !cont(2)) return false;
      if (b0 == 0xE0 && at(1) < 0xA0) return false;   // overlong
      if (b0 == 0xED && at(1) >= 0xA0) return false;  // surrogate
      i += 3;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      if (!cont(1) || !cont(2) || !cont(3)) return false;
      if (b0 == 0xF0 && at(1) < 0x90) return false;   // overlong
      if (b0 == 0xF4 && at(1) >= 0x90) return false;  // past U+10FFFF
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

// Runs of U+FFFD collapsed to one "<?>", so expectations hold whether an implementation
// replaces an invalid sequence byte by byte or as a whole.
std::string collapsed(const std::string& s) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 3, kFffd) == 0) {
      out += "<?>";
      while (s.compare(i, 3, kFffd) == 0) i += 3;
    } else {
      out += s[i++];
    }
  }
  return out;
}

std::string randomBytes(std::mt19937& rng, std::size_t n) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(byte(rng));
  return s;
}

// ---------------------------------------------------------------------------------------------
// The checker itself, so that the random tests below can be trusted.

TEST(Utf8Checker, AcceptsValidAndRefusesInvalidText) {
  EXPECT_TRUE(isValidUtf8NoNul("plain \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(isValidUtf8NoNul("\xC0\xAF"));
  EXPECT_FALSE(isValidUtf8NoNul("\xE0\x80\xAF"));
  EXPECT_FALSE(isValidUtf8NoNul("\xED\xA0\x80"));
  EXPECT_FALSE(isValidUtf8NoNul("\xF4\x90\x80\x80"));
  EXPECT_FALSE(isValidUtf8NoNul("\xE2\x82"));
  EXPECT_FALSE(isValidUtf8NoNul(std::string("a\0b", 3)));
}

// ---------------------------------------------------------------------------------------------
// sanitizeUtf8

TEST(SanitizeUtf8, AsciiIsUnchanged) {
  std::string ascii;
  for (int c = 1; c < 0x80; ++c) ascii += static_cast<char>(c);
  EXPECT_EQ(sanitizeUtf8(ascii), ascii);
  EXPECT_EQ(sanitizeUtf8(""), "");
}

TEST(SanitizeUtf8, ValidMultiByteCharactersAreKept) {
  for (std::string s : {"h\xC3\xA9llo",                 // 2 bytes
                        "\xDF\xBF",                     // U+07FF, the largest 2-byte
                        "\xE0\xA0\x80",                 // U+0800, the smallest 3-byte
                        "price: 5 \xE2\x82\xAC",        // 3 bytes
                        "\xEF\xBF\xBF",                 // U+FFFF
                        "\xF0\x9F\x98\x80 smile",       // 4 bytes
                        "\xF0\x90\x80\x80",             // U+10000, the smallest 4-byte
                        "\xF4\x8F\xBF\xBF",             // U+10FFFF, the largest
                        "\xED\x9F\xBF\xEE\x80\x80"}) {  // either side of the surrogates
    EXPECT_EQ(sanitizeUtf8(s), s) << s;
  }
}

TEST(SanitizeUtf8, ReplacementCharacterInTheInputIsKept) {
  EXPECT_EQ(sanitizeUtf8("a" + kFffd + "b"), "a" + kFffd + "b");
}

TEST(SanitizeUtf8, InvalidSingleBytesBecomeReplacementCharacters) {
  EXPECT_EQ(sanitizeUtf8("a" + kFf + "b"), "a" + kFffd + "b");
  EXPECT_EQ(sanitizeUtf8("a" + kContinuation + "b"), "a" + kFffd + "b");
  EXPECT_EQ(sanitizeUtf8("\xFE"), kFffd);
  EXPECT_EQ(sanitizeUtf8(kLeadOfTwo + "x"), kFffd + "x");
}

TEST(SanitizeUtf8, NulBecomesAReplacementCharacter) {
  EXPECT_EQ(sanitizeUtf8(std::string("a\0b", 3)), "a" + kFffd + "b");
  EXPECT_EQ(sanitizeUtf8(std::string("\0\0", 2)), kFffd + kFffd);
}

TEST(SanitizeUtf8, OverlongFormsAreReplaced) {
  for (std::string s : {"\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xE0\x9F\xBF", "\xF0\x80\x80\xAF",
                        "\xF0\x8F\xBF\xBF"}) {
    std::string out = sanitizeUtf8("<" + s + ">");
    EXPECT_EQ(collapsed(out), "<<?>>");
    EXPECT_TRUE(isValidUtf8NoNul(out));
  }
}

TEST(SanitizeUtf8, SurrogatesAreReplaced) {
  for (std::string s : {"\xED\xA0\x80", "\xED\xAF\xBF", "\xED\xB0\x80", "\xED\xBF\xBF"}) {
    std::string out = sanitizeUtf8("<" + s + ">");
    EXPECT_EQ(collapsed(out), "<<?>>");
    EXPECT_TRUE(isValidUtf8NoNul(out));
  }
}

TEST(SanitizeUtf8, CodePointsPastTheUnicodeRangeAreReplaced) {
  for (std::string s : {"\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF7\xBF\xBF\xBF"}) {
    std::string out = sanitizeUtf8("<" + s + ">");
    EXPECT_EQ(collapsed(out), "<<?>>");
    EXPECT_TRUE(isValidUtf8NoNul(out));
  }
}

TEST(SanitizeUtf8, TruncatedSequencesAreReplaced) {
  // At the end of the text.
  EXPECT_EQ(collapsed(sanitizeUtf8("ab\xE2\x82")), "ab<?>");
  EXPECT_EQ(collapsed(sanitizeUtf8("ab\xF0\x9F\x98")), "ab<?>");
  // In the middle, followed by ASCII that must survive.
  EXPECT_EQ(collapsed(sanitizeUtf8("a\xE2\x82z")), "a<?>z");
  EXPECT_EQ(collapsed(sanitizeUtf8("a" + kHalfEmoji + "ok")), "a<?>ok");
  // Followed by a valid character that must survive.
  EXPECT_EQ(collapsed(sanitizeUtf8("\xE2\x82\xC3\xA9")), "<?>\xC3\xA9");
}

TEST(SanitizeUtf8, LeadingPartialIsReplacedByDefault) {
  EXPECT_EQ(collapsed(sanitizeUtf8(kEuroTail + "abc")), "<?>abc");
}

TEST(SanitizeUtf8, LeadingPartialIsDroppedWhenAsked) {
  EXPECT_EQ(sanitizeUtf8(kEuroTail + "abc", true), "abc");  // tail of a 3-byte character
  EXPECT_EQ(sanitizeUtf8("\x9F\x98\x80 ok", true), " ok");  // tail of a 4-byte character
  EXPECT_EQ(sanitizeUtf8("\xAC" + kEuro, true), kEuro);     // then a whole character
}

TEST(SanitizeUtf8, DroppingTheLeadingPartialKeepsWholeText) {
  EXPECT_EQ(sanitizeUtf8("abc", true), "abc");
  EXPECT_EQ(sanitizeUtf8(kEuro + "abc", true), kEuro + "abc");
  EXPECT_EQ(sanitizeUtf8("", true), "");
}

TEST(SanitizeUtf8, AtMostThreeLeadingContinuationBytesAreDropped) {
  // No character has more than three continuation bytes: a fourth is garbage, not a partial.
  EXPECT_EQ(collapsed(sanitizeUtf8("\x80\x80\x80\x80x", true)), "<?>x");
}

TEST(SanitizeUtf8, RandomBytesAlwaysBecomeValidUtf8) {
  std::mt19937 rng(20261121);
  for (int round = 0; round < 2000; ++round) {
    std::string in = randomBytes(rng, 1 + round % 97);
    for (bool drop : {false, true}) {
      std::string out = sanitizeUtf8(in, drop);
      ASSERT_TRUE(isValidUtf8NoNul(out)) << "round " << round;
      ASSERT_LE(out.size(), in.size() * 3) << "round " << round;
    }
  }
}

// Mostly ASCII with one odd byte or character at every offset: the word-at-a-time scan must
// find it wherever it falls within or across its eight-byte steps.
TEST(SanitizeUtf8, AnOddByteIsFoundAtEveryOffsetOfLongAsciiText) {
  const std::string odd[] = {std::string(1, '\0'), kFf,   kContinuation,
                             kLeadOfTwo,           kEuro, kHalfEmoji};
  for (const auto& piece : odd) {
    for (std::size_t at = 0; at <= 40; ++at) {
      std::string in = std::string(at, 'a') + piece + std::string(23, 'z');
      const bool valid_char = piece == kEuro;
      const bool is_nul = piece.size() == 1 && piece[0] == 0;
      EXPECT_EQ(isValidUtf8(in), valid_char || is_nul) << at;
      EXPECT_EQ(isSanitized(in), valid_char) << at;
      std::string out = sanitizeUtf8(in);
      EXPECT_TRUE(isValidUtf8NoNul(out)) << at;
      EXPECT_EQ(out.substr(0, at), std::string(at, 'a')) << at;
      EXPECT_EQ(out.substr(out.size() - 23), std::string(23, 'z')) << at;
      EXPECT_EQ(out == in, valid_char) << at;
    }
  }
}

TEST(SanitizeUtf8, IsSanitizedSaysWhetherSanitizingChangesAnything) {
  std::mt19937 rng(20261205);
  for (int round = 0; round < 4000; ++round) {
    std::string in = randomBytes(rng, round % 61);
    // Mostly printable, as logs are: random bytes alone would hardly ever be clean.
    for (auto& c : in) {
      if (rng() % 8 != 0) c = static_cast<char>('a' + rng() % 26);
    }
    ASSERT_EQ(isSanitized(in), sanitizeUtf8(in) == in) << "round " << round;
    ASSERT_EQ(isSanitized(in), isValidUtf8NoNul(in)) << "round " << round;
  }
}

// ---------------------------------------------------------------------------------------------
// TailBuffer

TEST(TailBuffer, StartsEmpty) {
  TailBuffer t(16);
  EXPECT_EQ(t.totalBytes(), 0u);
  EXPECT_EQ(t.droppedBytes(), 0u);
  EXPECT_EQ(t.text(), "");
}

TEST(TailBuffer, KeepsEverythingBelowCapacity) {
  TailBuffer t(16);
  t.append("hello ");
  t.append("");
  t.append("world");
  EXPECT_EQ(t.text(), "hello world");
  EXPECT_EQ(t.totalBytes(), 11u);
  EXPECT_EQ(t.droppedBytes(), 0u);
}

TEST(TailBuffer, ExactlyCapacityDropsNothing) {
  TailBuffer t(8);
  t.append("12345678");
  EXPECT_EQ(t.text(), "12345678");
  EXPECT_EQ(t.droppedBytes(), 0u);
}

// Small appends, and appends up to 2.5 times the capacity: filling the buffer (it grows as bytes
// arrive), overflowing it in the middle of an append, and wrapping.
TEST(TailBuffer, KeepsTheLastBytesAcrossAppendsOfEverySize) {
  constexpr std::size_t kCap = 100;
  for (int longest : {37, 250}) {
    TailBuffer t(kCap);
    std::string all;
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> len(0, longest);
    std::uniform_int_distribution<int> letter('a', 'z');
    for (int i = 0; i < 1000; ++i) {
      std::string chunk(static_cast<std::size_t>(len(rng)), ' ');
      for (auto& c : chunk) c = static_cast<char>(letter(rng));
      t.append(chunk);
      all += chunk;
      std::string want = all.size() > kCap ? all.substr(all.size() - kCap) : all;
      ASSERT_EQ(t.text(), want) << "longest " << longest << ", after append " << i;
      ASSERT_EQ(t.totalBytes(), all.size());
      ASSERT_EQ(t.droppedBytes(), all.size() - want.size());
    }
  }
}

TEST(TailBuffer, OneHugeAppendKeepsItsLastBytes) {
  TailBuffer t(16);
  std::string big;
  for (int i = 0; i < 1000; ++i) big += static_cast<char>('a' + i % 26);
  t.append("prefix");
  t.append(big);
  EXPECT_EQ(t.text(), big.substr(big.size() - 16));
  EXPECT_EQ(t.totalBytes(), 1006u);
  EXPECT_EQ(t.droppedBytes(), 990u);
}

TEST(TailBuffer, AppendsAfterAHugeAppendContinueTheTail) {
  TailBuffer t(16);
  std::string all = std::string(100, 'x') + "0123456789abcdef";
  t.append(all);
  t.append("XYZ");
  all += "XYZ";
  EXPECT_EQ(t.text(), all.substr(all.size() - 16));
  t.append(std::string(16, 'q'));
  EXPECT_EQ(t.text(), std::string(16, 'q'));
  EXPECT_EQ(t.totalBytes(), all.size() + 16);
  EXPECT_EQ(t.droppedBytes(), all.size());
}

TEST(TailBuffer, ZeroCapacityCountsButKeepsNothing) {
  TailBuffer t(0);
  t.append("hello");
  EXPECT_EQ(t.text(), "");
  EXPECT_EQ(t.totalBytes(), 5u);
  EXPECT_EQ(t.droppedBytes(), 5u);
}

TEST(TailBuffer, CharacterCutAtTheStartOfTheTailIsDropped) {
  TailBuffer t(4);
  t.append("a" + kEuro);
  EXPECT_EQ(t.text(), "a" + kEuro);
  t.append("b");  // keeps the euro sign and "b": the cut fell on a character boundary
  EXPECT_EQ(t.text(), kEuro + "b");
  t.append("c");  // keeps kEuroTail + "bc": the cut went through the euro sign
  EXPECT_EQ(t.text(), "bc");
}

TEST(TailBuffer, LeadingContinuationIsKeptAsReplacementWhenNothingWasDropped) {
  TailBuffer t(16);
  t.append(kContinuation + "abc");
  EXPECT_EQ(t.text(), kFffd + "abc");
}

TEST(TailBuffer, RandomBytesGiveBoundedValidUtf8) {
  constexpr std::size_t kCap = 64;
  TailBuffer t(kCap);
  std::mt19937 rng(424242);
  std::uniform_int_distribution<int> len(0, 150);
  std::uint64_t total = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string chunk = randomBytes(rng, static_cast<std::size_t>(len(rng)));
    t.append(chunk);
    total += chunk.size();
    std::string text = t.text();
    ASSERT_LE(text.size(), kCap * 3) << "after append " << i;
    ASSERT_TRUE(isValidUtf8NoNul(text)) << "after append " << i;
    ASSERT_EQ(t.totalBytes(), total);
    ASSERT_EQ(t.droppedBytes(), total > kCap ? total - kCap : 0);
  }
}

}  // namespace
}  // namespace outpost::runner

namespace outpost::runner {
namespace {

// Collects what a LineSplitter hands on.
struct Collect {
  std::vector<std::string> lines;
  LineSplitter::Sink sink() {
    return [this](std::string_view l) { lines.emplace_back(l); };
  }
};

TEST(LineSplitter, SplitsAcrossChunksAndKeepsTheLastLineForFinish) {
  LineSplitter s(100);
  Collect out;
  s.feed("one\ntw", out.sink());
  s.feed("o\r\nthr", out.sink());
  EXPECT_EQ(out.lines, (std::vector<std::string>{"one", "two"}));
  s.finish(out.sink());
  EXPECT_EQ(out.lines, (std::vector<std::string>{"one", "two", "thr"}));
  Collect none;
  s.finish(none.sink());
  EXPECT_TRUE(none.lines.empty());
}

TEST(LineSplitter, CutsOverlongLinesWithAMarkerCountingTheRest) {
  LineSplitter s(10);
  Collect out;
  s.feed(std::string(25, 'a'), out.sink());
  s.feed(std::string(5, 'a') + "\nok\n", out.sink());
  s.feed(std::string(12, 'b') + "\n" + std::string(10, 'c') + "\n", out.sink());
  ASSERT_EQ(out.lines.size(), 4u);
  EXPECT_EQ(out.lines[0], std::string(10, 'a') + " [outpost: line cut, 20 more bytes]");
  EXPECT_EQ(out.lines[1], "ok");
  EXPECT_EQ(out.lines[2], std::string(10, 'b') + " [outpost: line cut, 2 more bytes]");
  EXPECT_EQ(out.lines[3], std::string(10, 'c'));
}

// Whatever the chunks, the lines are the same: whole lines inside a chunk take another path
// than lines that span chunks.
TEST(LineSplitter, TheSameLinesWhateverTheChunks) {
  std::string text;
  std::mt19937 rng(20261205);
  for (int i = 0; i < 300; ++i) {
    text += std::string(rng() % 30, static_cast<char>('a' + i % 26));
    text += rng() % 5 == 0 ? "\r\n" : "\n";
  }
  text += "tail";
  LineSplitter whole(20);
  Collect expected;
  whole.feed(text, expected.sink());
  whole.finish(expected.sink());
  for (std::size_t chunk : {1u, 2u, 7u, 64u, 1000u}) {
    LineSplitter s(20);
    Collect got;
    for (std::size_t at = 0; at < text.size(); at += chunk) {
      s.feed(std::string_view(text).substr(at, chunk), got.sink());
    }
    s.finish(got.sink());
    EXPECT_EQ(got.lines, expected.lines) << chunk;
  }
  ASSERT_EQ(expected.lines.size(), 301u);
  EXPECT_EQ(expected.lines.back(), "tail");
}

TEST(LogBatcher, ABatchIsDueBySizeOrByTime) {
  using namespace std::chrono_literals;
  LogBatcher b(10, 1000ms, 1 << 20);
  auto t0 = LogBatcher::Clock::time_point{} + 1h;
  EXPECT_EQ(b.dueAt(), LogBatcher::Clock::time_point::max());
  b.add("abc", t0);
  EXPECT_FALSE(b.due(t0 + 999ms));
  EXPECT_TRUE(b.due(t0 + 1000ms));
  b.add("defghijk", t0 + 1ms);  // 11 bytes now
  EXPECT_TRUE(b.due(t0 + 1ms));
  EXPECT_EQ(b.take().views(), (std::vector<std::string_view>{"abc", "defghijk"}));
  EXPECT_FALSE(b.due(t0 + 1h));
}

TEST(LogBatcher, TheRateLimitDropsAndCountsLinesThenRefills) {
  using namespace std::chrono_literals;
  LogBatcher b(1 << 20, 1000ms, 100);  // 100 bytes a second
  auto t0 = LogBatcher::Clock::time_point{} + 1h;
  for (int i = 0; i < 20; ++i) b.add(std::string(9, 'x'), t0);  // 10 bytes each with newline
  EXPECT_EQ(b.take().size(), 10u);
  EXPECT_EQ(b.droppedLines(), 10u);
  b.add(std::string(9, 'y'), t0 + 500ms);  // half a second refills 50 bytes
  EXPECT_EQ(b.take().size(), 1u);
  EXPECT_EQ(b.droppedLines(), 10u);
}

TEST(LogBatcher, KeptLinesAreMadeValidUtf8) {
  using namespace std::chrono_literals;
  LogBatcher b(1 << 20, 1000ms, 1 << 20);
  b.add(std::string("a\xff"
                    "b\0c",
                    5),
        LogBatcher::Clock::time_point{} + 1h);
  EXPECT_EQ(b.take().views(), std::vector<std::string_view>{"a\xEF\xBF\xBD"
                                                            "b\xEF\xBF\xBD"
                                                            "c"});
}

}  // namespace
}  // namespace outpost::runner
