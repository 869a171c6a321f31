// Text that leaves Outpost (events, records, headers, lineage, error messages) is valid UTF-8
// whatever the input: proto3 string fields must be, and Python's and Java's Protobuf runtimes
// refuse a whole message that breaks it. And input Outpost could not accept is quoted, if at all,
// only as a short escaped excerpt (a recipe may hold credentials of its own).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace outpost {

// Whether `bytes` is valid UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
bool isValidUtf8(std::string_view bytes);

// Whether sanitizeUtf8(bytes) would be `bytes` itself: valid UTF-8 without NUL bytes.
bool isSanitized(std::string_view bytes);

// Replaces invalid UTF-8 sequences and NUL bytes with U+FFFD. A truncated sequence at the very
// start (a tail cut through a character) is dropped instead when `drop_leading_partial`.
std::string sanitizeUtf8(std::string_view bytes, bool drop_leading_partial = false);

// At most `max_bytes` of `bytes`, printable ASCII as it is, every other byte (and the quote and
// backslash) as \xNN, followed by "..." when cut: an excerpt of bad input safe to put in an error
// message, a log line or an event. Names a field and a byte offset better than quoting more.
std::string escapedExcerpt(std::string_view bytes, std::size_t max_bytes = 24);

}  // namespace outpost
