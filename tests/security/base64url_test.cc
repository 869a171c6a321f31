// common's base64url (outpost/common/base64.h): the encoding of every token part and JWK
// coordinate. The decoder is strict, so that each byte string has one spelling in a token.
#include <gtest/gtest.h>

#include <string>

#include "outpost/common/base64.h"

namespace outpost {
namespace {

TEST(Base64Url, EncodesWithoutPaddingInTheUrlAlphabet) {
  EXPECT_EQ(encodeBase64Url(""), "");
  EXPECT_EQ(encodeBase64Url("f"), "Zg");
  EXPECT_EQ(encodeBase64Url("fo"), "Zm8");
  EXPECT_EQ(encodeBase64Url("foo"), "Zm9v");
  EXPECT_EQ(encodeBase64Url("foob"), "Zm9vYg");
  EXPECT_EQ(encodeBase64Url("fooba"), "Zm9vYmE");
  EXPECT_EQ(encodeBase64Url("foobar"), "Zm9vYmFy");
  EXPECT_EQ(encodeBase64Url("\xFB\xFF"), "-_8");
}

TEST(Base64Url, DecodesWhatItEncodes) {
  EXPECT_EQ(decodeBase64Url(""), "");
  EXPECT_EQ(decodeBase64Url("Zg"), "f");
  EXPECT_EQ(decodeBase64Url("Zm8"), "fo");
  EXPECT_EQ(decodeBase64Url("Zm9vYmFy"), "foobar");
  EXPECT_EQ(decodeBase64Url("-_8"), "\xFB\xFF");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    EXPECT_EQ(decodeBase64Url(encodeBase64Url(all.substr(0, n))), all.substr(0, n)) << n;
  }
}

TEST(Base64Url, RefusesEverySecondSpelling) {
  EXPECT_FALSE(decodeBase64Url("Zg=="));  // padding
  EXPECT_FALSE(decodeBase64Url("Zm8="));  // padding
  EXPECT_FALSE(decodeBase64Url("+/8"));   // the standard alphabet's 62 and 63
  EXPECT_FALSE(decodeBase64Url("-/8"));
  EXPECT_FALSE(decodeBase64Url("Zm9v Zg"));  // whitespace
  EXPECT_FALSE(decodeBase64Url("Zm9v\nZg"));
  EXPECT_FALSE(decodeBase64Url("Zm9vY"));  // a length no encoding has
  EXPECT_FALSE(decodeBase64Url("Z"));
  EXPECT_FALSE(decodeBase64Url("Zh"));   // "f" with unused bits set (Zg is its spelling)
  EXPECT_FALSE(decodeBase64Url("Zm9"));  // "fo" with unused bits set (Zm8)
  EXPECT_FALSE(decodeBase64Url(std::string("Zg\0", 3)));
}

}  // namespace
}  // namespace outpost
