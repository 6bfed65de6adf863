// Byte-level helpers: the GPT-2 byte <-> unicode alphabet and strict/lossy UTF-8 handling.
// Strictness matches Rust's str (and so HF tokenizers): no overlongs, no surrogates, nothing above U+10FFFF.
#include "model/tokenizer_bytes.h"

namespace rlvr::model::bytes {

namespace {

struct Tables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> to_byte{};
  Tables() {
    to_byte.fill(-1);
    std::array<bool, 256> direct{};
    for (int b = '!'; b <= '~'; ++b) direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b) {
      to_cp[b] = direct[b] ? static_cast<uint32_t>(b) : 256 + n++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::array<uint32_t, 256>& byte_to_codepoint() { return tables().to_cp; }

int byte_of_codepoint(uint32_t cp) { return cp < 324 ? tables().to_byte[cp] : -1; }

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

// For a lead byte: the sequence length and the allowed range of the second byte (later bytes are 80..BF).
// len 0: not a valid lead byte.
struct Lead {
  int len;
  uint8_t lo, hi;
};

Lead lead_of(uint8_t b) {
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Number of bytes of s[i..] that form a valid prefix of a sequence (>= 1 when invalid), and whether the
// whole sequence is valid.
size_t scan(std::string_view s, size_t i, bool& valid) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    valid = true;
    return 1;
  }
  const Lead l = lead_of(b0);
  valid = false;
  if (l.len == 0) return 1;
  size_t k = 1;
  for (; k < static_cast<size_t>(l.len); ++k) {
    if (i + k >= s.size()) return k;
    const auto b = static_cast<uint8_t>(s[i + k]);
    const uint8_t lo = k == 1 ? l.lo : 0x80, hi = k == 1 ? l.hi : 0xBF;
    if (b < lo || b > hi) return k;
  }
  valid = true;
  return k;
}

}  // namespace

size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  bool valid = false;
  const size_t n = scan(s, i, valid);
  if (!valid) return 0;
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (n == 1) {
    cp = b0;
  } else {
    cp = b0 & (0xFF >> (n + 1));
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  }
  return n;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    // Fast path for runs of ASCII.
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      out += s[i++];
      continue;
    }
    bool valid = false;
    const size_t n = scan(s, i, valid);
    if (valid) {
      out.append(s.substr(i, n));
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal invalid subpart
    }
    i += n;
  }
  return out;
}

}  // namespace rlvr::model::bytes
