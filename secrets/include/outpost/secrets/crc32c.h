// CRC-32C (Castagnoli), the checksum Google Secret Manager sends with every secret payload.
#pragma once

#include <cstdint>
#include <string_view>

namespace outpost::secrets {

// CRC-32C of data (reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF):
// crc32c("123456789") == 0xE3069283. Pass the previous result as `crc` to continue over data
// given in pieces: crc32c(b, crc32c(a)) == crc32c(a + b).
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0);

}  // namespace outpost::secrets
