#include "common/plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>

#include "common/fs.h"

namespace rlvr {
namespace {

uint32_t crc32(const unsigned char* p, size_t n, uint32_t crc = 0) {
  static std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void put_u32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  std::string td = std::string(type, 4) + data;
  out += td;
  put_u32(out, crc32(reinterpret_cast<const unsigned char*>(td.data()), td.size()));
}

// 5x7 glyphs, one byte per row (low 5 bits, MSB = left column).
const std::map<char, std::array<uint8_t, 7>>& font() {
  static const std::map<char, std::array<uint8_t, 7>> f = {
      {'0', {14, 17, 19, 21, 25, 17, 14}}, {'1', {4, 12, 4, 4, 4, 4, 14}},     {'2', {14, 17, 1, 2, 4, 8, 31}},
      {'3', {31, 2, 4, 2, 1, 17, 14}},     {'4', {2, 6, 10, 18, 31, 2, 2}},    {'5', {31, 16, 30, 1, 1, 17, 14}},
      {'6', {6, 8, 16, 30, 17, 17, 14}},   {'7', {31, 1, 2, 4, 8, 8, 8}},      {'8', {14, 17, 17, 14, 17, 17, 14}},
      {'9', {14, 17, 17, 15, 1, 2, 12}},   {'A', {14, 17, 17, 31, 17, 17, 17}}, {'B', {30, 17, 17, 30, 17, 17, 30}},
      {'C', {14, 17, 16, 16, 16, 17, 14}}, {'D', {28, 18, 17, 17, 17, 18, 28}}, {'E', {31, 16, 16, 30, 16, 16, 31}},
      {'F', {31, 16, 16, 30, 16, 16, 16}}, {'G', {14, 17, 16, 23, 17, 17, 15}}, {'H', {17, 17, 17, 31, 17, 17, 17}},
      {'I', {14, 4, 4, 4, 4, 4, 14}},      {'J', {7, 2, 2, 2, 2, 18, 12}},     {'K', {17, 18, 20, 24, 20, 18, 17}},
      {'L', {16, 16, 16, 16, 16, 16, 31}}, {'M', {17, 27, 21, 21, 17, 17, 17}}, {'N', {17, 17, 25, 21, 19, 17, 17}},
      {'O', {14, 17, 17, 17, 17, 17, 14}}, {'P', {30, 17, 17, 30, 16, 16, 16}}, {'Q', {14, 17, 17, 17, 21, 18, 13}},
      {'R', {30, 17, 17, 30, 20, 18, 17}}, {'S', {15, 16, 16, 14, 1, 1, 30}},   {'T', {31, 4, 4, 4, 4, 4, 4}},
      {'U', {17, 17, 17, 17, 17, 17, 14}}, {'V', {17, 17, 17, 17, 17, 10, 4}},  {'W', {17, 17, 17, 21, 21, 21, 10}},
      {'X', {17, 17, 10, 4, 10, 17, 17}},  {'Y', {17, 17, 10, 4, 4, 4, 4}},     {'Z', {31, 1, 2, 4, 8, 16, 31}},
      {'.', {0, 0, 0, 0, 0, 12, 12}},      {'-', {0, 0, 0, 31, 0, 0, 0}},      {'/', {1, 1, 2, 4, 8, 16, 16}},
      {':', {0, 12, 12, 0, 12, 12, 0}},    {'(', {2, 4, 8, 8, 8, 4, 2}},       {')', {8, 4, 2, 2, 2, 4, 8}},
      {'@', {14, 17, 23, 21, 23, 16, 15}}, {'_', {0, 0, 0, 0, 0, 0, 31}},      {'=', {0, 0, 31, 0, 31, 0, 0}},
      {'+', {0, 4, 4, 31, 4, 4, 0}},       {',', {0, 0, 0, 0, 12, 4, 8}},      {'%', {24, 25, 2, 4, 8, 19, 3}},
  };
  return f;
}

struct Canvas {
  int w, h;
  std::vector<unsigned char> px;
  Canvas(int w_, int h_) : w(w_), h(h_), px(static_cast<size_t>(w_) * h_ * 3, 255) {}
  void set(int x, int y, unsigned rgb) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    auto* p = &px[(static_cast<size_t>(y) * w + x) * 3];
    p[0] = (rgb >> 16) & 0xff, p[1] = (rgb >> 8) & 0xff, p[2] = rgb & 0xff;
  }
  void line(double x0, double y0, double x1, double y1, unsigned rgb, int thick = 1) {
    int steps = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    for (int i = 0; i <= steps; ++i) {
      double t = static_cast<double>(i) / steps;
      int x = static_cast<int>(std::lround(x0 + (x1 - x0) * t)), y = static_cast<int>(std::lround(y0 + (y1 - y0) * t));
      for (int dx = 0; dx < thick; ++dx)
        for (int dy = 0; dy < thick; ++dy) set(x + dx, y + dy, rgb);
    }
  }
  void rect(int x, int y, int rw, int rh, unsigned rgb) {
    for (int i = 0; i < rw; ++i)
      for (int j = 0; j < rh; ++j) set(x + i, y + j, rgb);
  }
  void text(int x, int y, const std::string& s, unsigned rgb = 0x202020, int scale = 1) {
    for (char ch : s) {
      char c = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      auto it = font().find(c);
      if (it != font().end())
        for (int r = 0; r < 7; ++r)
          for (int col = 0; col < 5; ++col)
            if (it->second[r] & (1 << (4 - col))) rect(x + col * scale, y + r * scale, scale, scale, rgb);
      x += 6 * scale;
    }
  }
};

std::string tick_label(double v) {
  if (std::abs(v) >= 1000 || (std::abs(v) < 0.01 && v != 0)) return fmt::format("{:.1e}", v);
  auto s = fmt::format("{:.2f}", v);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

std::string encode_png_rgb(const std::vector<unsigned char>& rgb, int width, int height) {
  std::string out = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put_u32(ihdr, width);
  put_u32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, no interlace
  chunk(out, "IHDR", ihdr);
  // Raw scanlines (filter byte 0) in a zlib stream of stored deflate blocks.
  std::string raw;
  raw.reserve(static_cast<size_t>(height) * (width * 3 + 1));
  for (int y = 0; y < height; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(&rgb[static_cast<size_t>(y) * width * 3]), static_cast<size_t>(width) * 3);
  }
  std::string z = "\x78\x01";
  for (size_t pos = 0; pos < raw.size() || pos == 0; pos += 65535) {
    size_t n = std::min<size_t>(65535, raw.size() - pos);
    bool last = pos + n >= raw.size();
    z.push_back(last ? 1 : 0);
    z.push_back(static_cast<char>(n & 0xff));
    z.push_back(static_cast<char>(n >> 8));
    z.push_back(static_cast<char>(~n & 0xff));
    z.push_back(static_cast<char>((~n >> 8) & 0xff));
    z.append(raw, pos, n);
    if (last) break;
  }
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  put_u32(z, (b << 16) | a);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", "");
  return out;
}

void write_line_plot(const std::filesystem::path& path, const std::string& title, const std::string& x_label,
                     const std::vector<PlotSeries>& series, double y_min, double y_max, int width, int height) {
  Canvas cv(width, height);
  const int left = 70, right = 20, top = 40, bottom = 60;
  double x0 = 1e300, x1 = -1e300, lo = std::isnan(y_min) ? 1e300 : y_min, hi = std::isnan(y_max) ? -1e300 : y_max;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      lo = std::min(lo, s.y[i]), hi = std::max(hi, s.y[i]);
    }
  if (x0 > x1) x0 = 0, x1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (lo > hi) lo = 0, hi = 1;
  if (hi == lo) hi = lo + 1;
  const int pw = width - left - right, ph = height - top - bottom;
  auto X = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto Y = [&](double y) { return top + (1.0 - (y - lo) / (hi - lo)) * ph; };
  for (int i = 0; i <= 5; ++i) {  // grid and ticks
    double yv = lo + (hi - lo) * i / 5.0, xv = x0 + (x1 - x0) * i / 5.0;
    cv.line(left, Y(yv), left + pw, Y(yv), 0xe0e0e0);
    cv.line(X(xv), top, X(xv), top + ph, 0xe0e0e0);
    auto yl = tick_label(yv);
    cv.text(left - 8 - 6 * static_cast<int>(yl.size()), static_cast<int>(Y(yv)) - 3, yl);
    auto xl = tick_label(xv);
    cv.text(static_cast<int>(X(xv)) - 3 * static_cast<int>(xl.size()), top + ph + 8, xl);
  }
  cv.line(left, top, left, top + ph, 0x000000);
  cv.line(left, top + ph, left + pw, top + ph, 0x000000);
  cv.text(left, 12, title, 0x000000, 2);
  cv.text(left + pw / 2 - 3 * static_cast<int>(x_label.size()), top + ph + 24, x_label);
  int ly = top + ph + 40, lx = left;
  for (const auto& s : series) {
    for (size_t i = 0; i + 1 < s.x.size() && i + 1 < s.y.size(); ++i)
      if (std::isfinite(s.y[i]) && std::isfinite(s.y[i + 1])) cv.line(X(s.x[i]), Y(s.y[i]), X(s.x[i + 1]), Y(s.y[i + 1]), s.rgb, 2);
    if (s.markers || s.x.size() == 1)
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
        if (std::isfinite(s.y[i])) cv.rect(static_cast<int>(X(s.x[i])) - 3, static_cast<int>(Y(s.y[i])) - 3, 7, 7, s.rgb);
    if (s.name.empty()) continue;  // unnamed series (e.g. the edges of a band) have no legend entry
    cv.rect(lx, ly, 14, 7, s.rgb);
    cv.text(lx + 18, ly, s.name);
    lx += 30 + 6 * static_cast<int>(s.name.size());
  }
  write_file_atomic(path, encode_png_rgb(cv.px, width, height));
}

}  // namespace rlvr
