// Exact rational numbers over int64 with overflow detection, for checking countdown expressions.
// Every operation reports overflow instead of wrapping; callers turn that into a verdict.
#pragma once
#include <cstdint>
#include <numeric>
#include <optional>
#include <string>

namespace rlvr::data {

struct Rational {
  int64_t num = 0;
  int64_t den = 1;  // > 0, gcd(num, den) == 1
  bool operator==(const Rational&) const = default;
  bool is_integer() const { return den == 1; }
  std::string str() const { return den == 1 ? std::to_string(num) : std::to_string(num) + "/" + std::to_string(den); }
};

namespace rational_detail {
inline std::optional<Rational> make(__int128 n, __int128 d) {
  if (d == 0) return std::nullopt;
  if (d < 0) n = -n, d = -d;
  __int128 a = n < 0 ? -n : n, b = d;
  while (b != 0) {
    __int128 t = a % b;
    a = b;
    b = t;
  }
  if (a > 1) n /= a, d /= a;
  if (n > INT64_MAX || n < -INT64_MAX || d > INT64_MAX) return std::nullopt;
  return Rational{static_cast<int64_t>(n), static_cast<int64_t>(d)};
}
}  // namespace rational_detail

// nullopt on overflow (or division by zero for div).
inline std::optional<Rational> add(Rational a, Rational b) {
  return rational_detail::make(static_cast<__int128>(a.num) * b.den + static_cast<__int128>(b.num) * a.den,
                               static_cast<__int128>(a.den) * b.den);
}
inline std::optional<Rational> sub(Rational a, Rational b) {
  return rational_detail::make(static_cast<__int128>(a.num) * b.den - static_cast<__int128>(b.num) * a.den,
                               static_cast<__int128>(a.den) * b.den);
}
inline std::optional<Rational> mul(Rational a, Rational b) {
  return rational_detail::make(static_cast<__int128>(a.num) * b.num, static_cast<__int128>(a.den) * b.den);
}
inline std::optional<Rational> div(Rational a, Rational b) {
  return rational_detail::make(static_cast<__int128>(a.num) * b.den, static_cast<__int128>(a.den) * b.num);
}

}  // namespace rlvr::data
