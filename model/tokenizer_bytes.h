// Byte-level helpers shared by the tokenizer and its writer: the GPT-2 byte <-> unicode alphabet, UTF-8
// encode/decode of single code points, and lossy UTF-8 repair. Internal to model/ (not a public API).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace rlvr::model::bytes {

// GPT-2 `bytes_to_unicode`: printable bytes map to themselves, the other 68 to U+0100 + n in byte order.
const std::array<uint32_t, 256>& byte_to_codepoint();
// Inverse: -1 for code points that are not in the alphabet (only cp < 324 can be).
int byte_of_codepoint(uint32_t cp);

void append_utf8(std::string& out, uint32_t cp);

// Decodes one code point at s[i]; returns its byte length, or 0 if s[i..] is not a valid UTF-8 sequence
// (overlongs, surrogates and > U+10FFFF are invalid).
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp);

// Replaces each maximal invalid subsequence with U+FFFD (the Unicode / Rust from_utf8_lossy / Python
// errors="replace" policy).
std::string utf8_lossy(std::string_view s);

}  // namespace rlvr::model::bytes
