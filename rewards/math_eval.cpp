// Evaluation of parsed answers: exact rationals on 128-bit integers (with overflow detection), complex
// double evaluation with a step budget, and a GiNaC symbolic check (normal(a - b) == 0) behind one global
// lock, since GiNaC's reference counts are not thread-safe. Exponents and sizes are capped before GiNaC
// sees anything.
#include <ginac/ginac.h>

#include <cmath>
#include <mutex>
#include <numeric>

#include "rewards/math_ast.h"

namespace rlvr::rewards::detail {

namespace {

using i128 = __int128;

i128 gcd128(i128 a, i128 b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b) {
    i128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

Rat mkrat(i128 n, i128 d) {
  Rat r;
  if (d == 0) return r;
  if (d < 0) { n = -n; d = -d; }
  i128 g = gcd128(n, d);
  if (g > 1) { n /= g; d /= g; }
  r.n = n;
  r.d = d;
  r.ok = true;
  return r;
}
Rat bad() { return Rat{}; }

Rat radd(const Rat& a, const Rat& b) {
  if (!a.ok || !b.ok) return bad();
  i128 x, y, n, d;
  if (__builtin_mul_overflow(a.n, b.d, &x) || __builtin_mul_overflow(b.n, a.d, &y) ||
      __builtin_add_overflow(x, y, &n) || __builtin_mul_overflow(a.d, b.d, &d))
    return bad();
  return mkrat(n, d);
}
Rat rmul(const Rat& a, const Rat& b) {
  if (!a.ok || !b.ok) return bad();
  i128 n, d;
  if (__builtin_mul_overflow(a.n, b.n, &n) || __builtin_mul_overflow(a.d, b.d, &d)) return bad();
  return mkrat(n, d);
}
Rat rinv(const Rat& a) {
  if (!a.ok || a.n == 0) return bad();
  return mkrat(a.d, a.n);
}
Rat rneg(const Rat& a) {
  if (!a.ok) return a;
  Rat r = a;
  r.n = -r.n;
  return r;
}
bool is_int(const Rat& a) { return a.ok && a.d == 1; }

// Integer k-th root if exact.
bool iroot(i128 v, int k, i128& out) {
  if (v < 0) {
    if (k % 2 == 0) return false;
    if (!iroot(-v, k, out)) return false;
    out = -out;
    return true;
  }
  long double x = std::pow((long double)v, 1.0L / k);
  i128 c = (i128)std::llround((double)x);
  for (i128 cand = c - 2; cand <= c + 2; ++cand) {
    if (cand < 0) continue;
    i128 p = 1;
    bool of = false;
    for (int i = 0; i < k && !of; ++i) of = __builtin_mul_overflow(p, cand, &p);
    if (!of && p == v) { out = cand; return true; }
  }
  return false;
}

Rat rpow(const Rat& b, const Rat& e, const VerifyOptions& opt) {
  if (!b.ok || !e.ok) return bad();
  if (e.d == 1) {
    if (e.n > opt.max_exponent || e.n < -opt.max_exponent) return bad();
    long long k = (long long)e.n;
    bool neg = k < 0;
    if (neg) k = -k;
    Rat r = mkrat(1, 1), base = b;
    while (k) {
      if (k & 1) r = rmul(r, base);
      if (!r.ok) return bad();
      k >>= 1;
      if (k) base = rmul(base, base);
      if (!base.ok) return bad();
    }
    return neg ? rinv(r) : r;
  }
  // Rational exponent p/q: exact when the base is a perfect q-th power.
  if (e.d > 64 || b.n < 0) return bad();
  int q = int(e.d);
  i128 rn, rd;
  if (!iroot(b.n, q, rn) || !iroot(b.d, q, rd)) return bad();
  return rpow(mkrat(rn, rd), mkrat(e.n, 1), opt);
}

Rat parse_decimal(const std::string& s) {
  i128 n = 0, d = 1;
  bool frac = false;
  for (char c : s) {
    if (c == '.') { frac = true; continue; }
    if (c < '0' || c > '9') return bad();
    if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, c - '0', &n)) return bad();
    if (frac && __builtin_mul_overflow(d, 10, &d)) return bad();
  }
  return mkrat(n, d);
}

}  // namespace

Rat eval_exact(const Node& n, const VerifyOptions& opt, EvalBudget& b) {
  if (!b.step()) return bad();
  switch (n.k) {
    case K::Num: return parse_decimal(n.s);
    case K::Add: {
      Rat r = mkrat(0, 1);
      for (auto& k : n.kids) {
        r = radd(r, eval_exact(*k, opt, b));
        if (!r.ok) return r;
      }
      return r;
    }
    case K::Mul: {
      Rat r = mkrat(1, 1);
      for (auto& k : n.kids) {
        r = rmul(r, eval_exact(*k, opt, b));
        if (!r.ok) return r;
      }
      return r;
    }
    case K::Div: return rmul(eval_exact(*n.kids[0], opt, b), rinv(eval_exact(*n.kids[1], opt, b)));
    case K::Neg: return rneg(eval_exact(*n.kids[0], opt, b));
    case K::Pow: return rpow(eval_exact(*n.kids[0], opt, b), eval_exact(*n.kids[1], opt, b), opt);
    case K::Percent: return rmul(eval_exact(*n.kids[0], opt, b), mkrat(1, 100));
    case K::Fact: {
      Rat a = eval_exact(*n.kids[0], opt, b);
      if (!is_int(a) || a.n < 0 || a.n > 33) return bad();
      i128 r = 1;
      for (i128 i = 2; i <= a.n; ++i) r *= i;
      return mkrat(r, 1);
    }
    case K::Func: {
      if (n.s == "ratio") {
        Rat x = eval_exact(*n.kids[1], opt, b);
        if (!x.ok || x.n == 0) return bad();
        return rmul(eval_exact(*n.kids[0], opt, b), rinv(x));
      }
      if (n.s == "abs") {
        Rat a = eval_exact(*n.kids[0], opt, b);
        if (a.ok && a.n < 0) a.n = -a.n;
        return a;
      }
      if (n.s == "binom" && n.kids.size() == 2) {
        Rat a = eval_exact(*n.kids[0], opt, b), c = eval_exact(*n.kids[1], opt, b);
        if (!is_int(a) || !is_int(c) || a.n < 0 || c.n < 0 || a.n > 200) return bad();
        if (c.n > a.n) return mkrat(0, 1);
        i128 r = 1;
        i128 kk = c.n < a.n - c.n ? c.n : a.n - c.n;
        for (i128 i = 1; i <= kk; ++i) {
          if (__builtin_mul_overflow(r, a.n - kk + i, &r)) return bad();
          r /= i;
        }
        return mkrat(r, 1);
      }
      if (n.s == "mod" && n.kids.size() == 2) {
        Rat a = eval_exact(*n.kids[0], opt, b), c = eval_exact(*n.kids[1], opt, b);
        if (!is_int(a) || !is_int(c) || c.n == 0) return bad();
        i128 r = a.n % c.n;
        if (r < 0) r += c.n < 0 ? -c.n : c.n;
        return mkrat(r, 1);
      }
      if ((n.s == "floor" || n.s == "ceil") && n.kids.size() == 1) {
        Rat a = eval_exact(*n.kids[0], opt, b);
        if (!a.ok) return a;
        i128 q = a.n / a.d;
        if (a.n % a.d != 0) {
          if (n.s == "floor" && a.n < 0) q -= 1;
          if (n.s == "ceil" && a.n > 0) q += 1;
        }
        return mkrat(q, 1);
      }
      if ((n.s == "gcd" || n.s == "lcm") && n.kids.size() >= 2) {
        i128 acc = n.s == "gcd" ? 0 : 1;
        for (auto& k : n.kids) {
          Rat a = eval_exact(*k, opt, b);
          if (!is_int(a)) return bad();
          if (n.s == "gcd") acc = gcd128(acc, a.n);
          else {
            i128 g = gcd128(acc, a.n);
            if (g == 0) return mkrat(0, 1);
            if (__builtin_mul_overflow(acc / g, a.n < 0 ? -a.n : a.n, &acc)) return bad();
          }
        }
        return mkrat(acc, 1);
      }
      if (n.s == "det" && n.kids.size() == 1 && n.kids[0]->k == K::Matrix) {
        const Node& m = *n.kids[0];
        if (m.rows == 2 && m.cols == 2) {
          Rat a = eval_exact(*m.kids[0], opt, b), bb = eval_exact(*m.kids[1], opt, b),
              c = eval_exact(*m.kids[2], opt, b), d = eval_exact(*m.kids[3], opt, b);
          return radd(rmul(a, d), rneg(rmul(bb, c)));
        }
        return bad();
      }
      return bad();
    }
    default: return bad();
  }
}

Cx eval_num(const Node& n, const Env& env, EvalBudget& b) {
  const double nan = std::nan("");
  if (!b.step()) return {nan, 0};
  switch (n.k) {
    case K::Num: return {std::strtod(n.s.c_str(), nullptr), 0};
    case K::Sym: {
      auto it = env.find(n.s);
      return it == env.end() ? Cx{nan, 0} : it->second;
    }
    case K::Const:
      if (n.s == "pi") return {M_PI, 0};
      if (n.s == "e") return {M_E, 0};
      if (n.s == "i") return {0, 1};
      if (n.s == "inf") return {INFINITY, 0};
      return {nan, 0};
    case K::Add: {
      Cx r = 0;
      for (auto& k : n.kids) r += eval_num(*k, env, b);
      return r;
    }
    case K::Mul: {
      Cx r = 1;
      for (auto& k : n.kids) r *= eval_num(*k, env, b);
      return r;
    }
    case K::Div: return eval_num(*n.kids[0], env, b) / eval_num(*n.kids[1], env, b);
    case K::Neg: return -eval_num(*n.kids[0], env, b);
    case K::Pow: {
      Cx x = eval_num(*n.kids[0], env, b), y = eval_num(*n.kids[1], env, b);
      if (y.imag() == 0 && y.real() == std::round(y.real()) && std::abs(y.real()) < 1e6) {
        if (x.imag() == 0) return {std::pow(x.real(), y.real()), 0};
        return std::pow(x, int(y.real()));
      }
      // Odd roots of negative reals: the real root (x^{1/3} of -8 is -2), as people write it.
      if (x.imag() == 0 && x.real() < 0 && y.imag() == 0) {
        double inv = 1.0 / y.real();
        double r = std::round(inv);
        if (std::abs(inv - r) < 1e-12 && std::fmod(std::abs(r), 2.0) == 1.0)
          return {-std::pow(-x.real(), y.real()), 0};
        // p/q with odd q
        for (int q = 3; q <= 15; q += 2) {
          double p = y.real() * q;
          if (std::abs(p - std::round(p)) < 1e-9) {
            double root = -std::pow(-x.real(), 1.0 / q);
            return {std::pow(root, std::round(p)), 0};
          }
        }
      }
      if (x.imag() == 0 && x.real() >= 0 && y.imag() == 0) return {std::pow(x.real(), y.real()), 0};
      return std::pow(x, y);
    }
    case K::Percent: return eval_num(*n.kids[0], env, b) / 100.0;
    case K::Fact: {
      Cx a = eval_num(*n.kids[0], env, b);
      if (a.imag() != 0 || a.real() < 0 || a.real() > 170) return {nan, 0};
      return {std::tgamma(a.real() + 1), 0};
    }
    case K::Func: {
      if (n.kids.empty()) return {nan, 0};
      if (n.s == "det") {
        if (n.kids[0]->k != K::Matrix) return {nan, 0};
        const Node& m = *n.kids[0];
        if (m.rows == 2 && m.cols == 2)
          return eval_num(*m.kids[0], env, b) * eval_num(*m.kids[3], env, b) -
                 eval_num(*m.kids[1], env, b) * eval_num(*m.kids[2], env, b);
        if (m.rows == 3 && m.cols == 3) {
          Cx a[9];
          for (int i = 0; i < 9; ++i) a[i] = eval_num(*m.kids[i], env, b);
          return a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
                 a[2] * (a[3] * a[7] - a[4] * a[6]);
        }
        return {nan, 0};
      }
      Cx x = eval_num(*n.kids[0], env, b);
      const std::string& f = n.s;
      if (f == "sin") return std::sin(x);
      if (f == "cos") return std::cos(x);
      if (f == "tan") return std::tan(x);
      if (f == "sec") return 1.0 / std::cos(x);
      if (f == "csc") return 1.0 / std::sin(x);
      if (f == "cot") return 1.0 / std::tan(x);
      if (f == "arcsin") return std::asin(x);
      if (f == "arccos") return std::acos(x);
      if (f == "arctan") return std::atan(x);
      if (f == "arcsec") return std::acos(1.0 / x);
      if (f == "arccsc") return std::asin(1.0 / x);
      if (f == "arccot") return std::atan(1.0 / x);
      if (f == "sinh") return std::sinh(x);
      if (f == "cosh") return std::cosh(x);
      if (f == "tanh") return std::tanh(x);
      if (f == "abs") return std::abs(x);
      if (f == "log") {
        if (n.kids.size() == 2) return std::log(x) / std::log(eval_num(*n.kids[1], env, b));
        return std::log(x);
      }
      if (f == "floor") return x.imag() == 0 ? Cx{std::floor(x.real()), 0} : Cx{nan, 0};
      if (f == "ceil") return x.imag() == 0 ? Cx{std::ceil(x.real()), 0} : Cx{nan, 0};
      if (n.kids.size() == 2) {
        Cx y = eval_num(*n.kids[1], env, b);
        if (f == "ratio") return x / y;
        if (f == "mod") {
          if (x.imag() != 0 || y.imag() != 0 || y.real() == 0) return {nan, 0};
          double r = std::fmod(x.real(), y.real());
          if (r < 0) r += std::abs(y.real());
          return {r, 0};
        }
        if (f == "binom") {
          if (x.imag() != 0 || y.imag() != 0) return {nan, 0};
          return {std::exp(std::lgamma(x.real() + 1) - std::lgamma(y.real() + 1) -
                           std::lgamma(x.real() - y.real() + 1)),
                  0};
        }
      }
      if (f == "max" || f == "min") {
        double best = f == "max" ? -INFINITY : INFINITY;
        for (auto& k : n.kids) {
          Cx v = eval_num(*k, env, b);
          if (v.imag() != 0) return {nan, 0};
          best = f == "max" ? std::max(best, v.real()) : std::min(best, v.real());
        }
        return {best, 0};
      }
      return {nan, 0};
    }
    default: return {nan, 0};
  }
}

void free_symbols(const Node& n, std::vector<std::string>& out) {
  if (n.k == K::Sym) {
    if (std::find(out.begin(), out.end(), n.s) == out.end()) out.push_back(n.s);
    return;
  }
  for (auto& k : n.kids) free_symbols(*k, out);
}

bool has_decimal(const Node& n) {
  if (n.k == K::Num) return n.dec;
  for (auto& k : n.kids)
    if (has_decimal(*k)) return true;
  return false;
}

int count_nodes(const Node& n) {
  int c = 1;
  for (auto& k : n.kids) c += count_nodes(*k);
  return c;
}

// ---------------------------------------------------------------------------------------------------
namespace {

std::mutex g_ginac_mutex;

struct GinacCap {};

struct ToGinac {
  const VerifyOptions& opt;
  std::map<std::string, GiNaC::symbol>& syms;
  int budget = 400;
  double degree = 1;  // product of the exponents on the current path (expansion size guard)

  GiNaC::ex go(const Node& n) {
    if (--budget < 0) throw GinacCap{};
    using namespace GiNaC;
    switch (n.k) {
      case K::Num: {
        if (n.s.size() > 40) throw GinacCap{};
        std::string s = n.s;
        auto dot = s.find('.');
        if (dot == std::string::npos) return numeric(s.c_str());
        std::string digits = s.substr(0, dot) + s.substr(dot + 1);
        size_t places = s.size() - dot - 1;
        std::string den = "1" + std::string(places, '0');
        return numeric(digits.c_str()) / numeric(den.c_str());
      }
      case K::Sym: {
        auto it = syms.find(n.s);
        if (it == syms.end()) it = syms.emplace(n.s, symbol(n.s)).first;
        return it->second;
      }
      case K::Const:
        if (n.s == "pi") return Pi;
        if (n.s == "e") return exp(ex(1));
        if (n.s == "i") return I;
        throw GinacCap{};
      case K::Add: {
        ex r = 0;
        for (auto& k : n.kids) r += go(*k);
        return r;
      }
      case K::Mul: {
        ex r = 1;
        for (auto& k : n.kids) r *= go(*k);
        return r;
      }
      case K::Div: return go(*n.kids[0]) / go(*n.kids[1]);
      case K::Neg: return -go(*n.kids[0]);
      case K::Pow: {
        ex e = go(*n.kids[1]);
        ex ev = e.evalf();
        if (!is_a<numeric>(ev)) throw GinacCap{};  // symbolic exponents: leave to the numeric check
        numeric v = ex_to<numeric>(ev);
        if (!v.is_real() || abs(v) > numeric(64)) throw GinacCap{};
        double d = std::max(1.0, std::abs(v.to_double()));
        if (degree * d > 256) throw GinacCap{};
        degree *= d;
        ex base = go(*n.kids[0]);
        degree /= d;
        return pow(base, e);
      }
      case K::Percent: return go(*n.kids[0]) / 100;
      case K::Func: {
        if (n.kids.size() == 1) {
          ex x = go(*n.kids[0]);
          if (n.s == "sin") return sin(x);
          if (n.s == "cos") return cos(x);
          if (n.s == "tan") return tan(x);
          if (n.s == "sec") return 1 / cos(x);
          if (n.s == "csc") return 1 / sin(x);
          if (n.s == "cot") return cos(x) / sin(x);
          if (n.s == "log") return log(x);
          if (n.s == "abs") return abs(x);
          if (n.s == "arcsin") return asin(x);
          if (n.s == "arccos") return acos(x);
          if (n.s == "arctan") return atan(x);
        }
        if (n.kids.size() == 2 && n.s == "log") return log(go(*n.kids[0])) / log(go(*n.kids[1]));
        if (n.kids.size() == 2 && n.s == "ratio") return go(*n.kids[0]) / go(*n.kids[1]);
        throw GinacCap{};
      }
      default: throw GinacCap{};
    }
  }
};

}  // namespace

std::optional<bool> ginac_equal(const Node& a, const Node& b, const VerifyOptions& opt) {
  if (count_nodes(a) + count_nodes(b) > 300) return std::nullopt;
  std::lock_guard<std::mutex> lock(g_ginac_mutex);
  try {
    std::map<std::string, GiNaC::symbol> syms;
    ToGinac conv{opt, syms};
    GiNaC::ex d = conv.go(a) - conv.go(b);
    GiNaC::ex nd = GiNaC::normal(d.expand());
    if (nd.is_zero()) return true;
    // Constant non-zero difference (after normal form): decided.
    if (GiNaC::is_a<GiNaC::numeric>(nd)) return false;
    return std::nullopt;
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace rlvr::rewards::detail
