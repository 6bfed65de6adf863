// Tokenizer and recursive-descent parser for answers written in LaTeX or plain math. Bounded: input
// length, nesting depth and node count are capped; errors are returned, never thrown.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "rewards/math_ast.h"

namespace rlvr::rewards::detail {

std::shared_ptr<Node> make(K k, std::string s, std::vector<NP> kids) {
  auto n = std::make_shared<Node>();
  n->k = k;
  n->s = std::move(s);
  n->kids = std::move(kids);
  return n;
}

namespace {

enum class T : uint8_t {
  End, Num, Ident, Cmd, Op, LParen, RParen, LBrack, RBrack, LBrace, RBrace, LSet, RSet, Pipe, Comma, Semi,
  Amp, Newrow, Text, Sep, Caret, Under, Bang, Percent, Prime, Begin, EndEnv, Colon
};

struct Tok {
  T t;
  std::string s;
};

struct ParseError {
  ParseStatus st;
  std::string msg;
};

const std::unordered_set<std::string_view>& functions() {
  static const std::unordered_set<std::string_view> f = {
      "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "asin", "acos", "atan",
      "sinh", "cosh", "tanh", "log", "ln", "lg", "exp", "sqrt", "abs", "det", "gcd", "lcm", "max", "min",
      "floor", "ceil", "arcsec", "arccsc", "arccot", "cosec"};
  return f;
}

const std::unordered_set<std::string_view>& units() {
  static const std::unordered_set<std::string_view> u = {
      "cm", "mm", "km", "m", "meter", "meters", "metre", "metres", "inch", "inches", "in", "ft", "feet",
      "foot", "yard", "yards", "mile", "miles", "unit", "units", "sq", "square", "cubic", "kg", "g", "gram",
      "grams", "lb", "lbs", "pound", "pounds", "ounce", "ounces", "oz", "dollar", "dollars", "cent", "cents",
      "yuan", "euro", "euros", "hour", "hours", "hr", "hrs", "h", "minute", "minutes", "min", "mins",
      "second", "seconds", "sec", "s", "day", "days", "week", "weeks", "year", "years", "month", "months",
      "degree", "degrees", "deg", "rad", "radian", "radians", "l", "liter", "liters", "litre", "litres",
      "ml", "mph", "kmh", "people", "students", "apples", "times", "ways", "points", "percent", "pct",
      "percentage", "items", "pieces", "page", "pages", "mi", "cm2", "m2", "km2"};
  return u;
}

bool is_unit_word(std::string_view w) {
  std::string l(w);
  for (auto& c : l) c = char(std::tolower((unsigned char)c));
  return units().count(l) > 0;
}

// Commands that map to operators or tokens.
struct CmdMap {
  T t;
  const char* s;
};
const std::unordered_map<std::string_view, CmdMap>& cmd_map() {
  static const std::unordered_map<std::string_view, CmdMap> m = {
      {"le", {T::Op, "<="}}, {"leq", {T::Op, "<="}}, {"leqslant", {T::Op, "<="}}, {"ge", {T::Op, ">="}},
      {"geq", {T::Op, ">="}}, {"geqslant", {T::Op, ">="}}, {"lt", {T::Op, "<"}}, {"gt", {T::Op, ">"}},
      {"ne", {T::Op, "!="}}, {"neq", {T::Op, "!="}}, {"approx", {T::Op, "approx"}},
      {"simeq", {T::Op, "approx"}}, {"sim", {T::Op, "approx"}}, {"cong", {T::Op, "approx"}},
      {"equiv", {T::Op, "approx"}}, {"in", {T::Op, "in"}}, {"cup", {T::Op, "cup"}}, {"cap", {T::Op, "cap"}},
      {"setminus", {T::Op, "setminus"}}, {"pm", {T::Op, "pm"}}, {"mp", {T::Op, "mp"}},
      {"cdot", {T::Op, "*"}}, {"times", {T::Op, "*"}}, {"ast", {T::Op, "*"}}, {"div", {T::Op, "/"}},
      {"bmod", {T::Op, "mod"}}, {"mod", {T::Op, "mod"}}, {"to", {T::Sep, "to"}},
      {"rightarrow", {T::Sep, "=>"}}, {"Rightarrow", {T::Sep, "=>"}}, {"implies", {T::Sep, "=>"}},
      {"Longrightarrow", {T::Sep, "=>"}}, {"longrightarrow", {T::Sep, "=>"}}, {"iff", {T::Sep, "=>"}},
      {"quad", {T::Sep, "quad"}}, {"qquad", {T::Sep, "quad"}}, {"text{and}", {T::Sep, "and"}},
      {"lvert", {T::Pipe, "|"}}, {"rvert", {T::Pipe, "|"}}, {"vert", {T::Pipe, "|"}},
      {"mid", {T::Pipe, "|"}}, {"colon", {T::Colon, ":"}}, {"wedge", {T::Sep, "and"}},
      {"land", {T::Sep, "and"}}, {"lor", {T::Sep, "or"}}, {"vee", {T::Sep, "or"}},
      {"lbrace", {T::LSet, "{"}}, {"rbrace", {T::RSet, "}"}}, {"langle", {T::LParen, "("}},
      {"rangle", {T::RParen, ")"}}, {"lbrack", {T::LBrack, "["}}, {"rbrack", {T::RBrack, "]"}},
  };
  return m;
}

const std::unordered_set<std::string_view>& skip_cmds() {
  static const std::unordered_set<std::string_view> s = {
      "left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "bigg", "Bigg", "biggl", "biggr",
      "Biggl", "Biggr", "middle", "displaystyle", "textstyle", "scriptstyle", "limits", "nolimits",
      "circ", "degree", "displaystyle", "hfill", "newline", "noindent", "enspace", "thinspace",
      "negthinspace", "medspace", "thickspace", "strut", "nonumber", "notag", "cr", "hline", "phantom"};
  return s;
}
const std::unordered_set<std::string_view>& unwrap_cmds() {
  static const std::unordered_set<std::string_view> s = {
      "mathrm", "mathbf", "textbf", "mathit", "boldsymbol", "bm", "mathsf", "operatorname", "mathbb",
      "mathcal", "emph", "mathnormal", "mathtt", "pmb", "bf", "rm", "it", "mathscr", "mathfrak",
      "underline", "overline", "boxed", "fbox", "color", "textcolor", "displaystyle"};
  return s;
}
const std::unordered_set<std::string_view>& text_cmds() {
  static const std::unordered_set<std::string_view> s = {"text",   "textrm", "textnormal", "mbox",   "textit",
                                                         "textsf", "texttt", "textup",     "hbox", "textmd"};
  return s;
}
// Commands a `\\` prefix may wrongly escape (\\frac written by double-escaping JSON).
bool known_command(std::string_view c) {
  static const std::unordered_set<std::string_view> s = {
      "frac", "dfrac", "tfrac", "cfrac", "sqrt", "le", "ge", "leq", "geq", "text", "pi", "left", "right",
      "cdot", "times", "infty", "in", "cup", "boxed", "mathrm", "pm", "neq", "ne", "sin", "cos", "tan",
      "log", "ln", "binom", "lt", "gt", "dbinom"};
  return s.count(c) > 0;
}

// Reads a brace group starting at s[i] == '{'; returns its content and moves i past the closing brace.
bool read_group(std::string_view s, size_t& i, std::string_view& out) {
  if (i >= s.size() || s[i] != '{') return false;
  int depth = 0;
  for (size_t j = i; j < s.size(); ++j) {
    if (s[j] == '\\' && j + 1 < s.size()) { ++j; continue; }
    if (s[j] == '{') ++depth;
    else if (s[j] == '}' && --depth == 0) {
      out = s.substr(i + 1, j - i - 1);
      i = j + 1;
      return true;
    }
  }
  return false;
}

std::string norm_text(std::string_view t) {
  std::string o;
  for (size_t i = 0; i < t.size(); ++i) {
    unsigned char c = t[i];
    if (c == '\\') {  // drop command names inside \text (e.g. \text{\textbf{A}})
      size_t j = i + 1;
      while (j < t.size() && std::isalpha((unsigned char)t[j])) ++j;
      if (j == i + 1 && j < t.size()) j++;
      i = j - 1;
      continue;
    }
    if (std::isspace(c) || c == '{' || c == '}' || c == '$' || c == '~') continue;
    o += char(std::tolower(c));
  }
  return o;
}

class Lexer {
 public:
  Lexer(std::string_view s, const VerifyOptions& opt) : s_(s), opt_(opt) {}

  std::vector<Tok> run() {
    std::vector<Tok> out;
    int depth = 0;
    while (i_ < s_.size()) {
      unsigned char c = s_[i_];
      if (std::isspace(c) || c == '$' || c == '~' || c == '"' || c == '`') { ++i_; continue; }
      if (std::isdigit(c) || (c == '.' && i_ + 1 < s_.size() && std::isdigit((unsigned char)s_[i_ + 1]))) {
        out.push_back({T::Num, number(depth)});
        // Scientific notation glued to the number: 1.5e3, 2E-4 -> 1.5 * 10^(3).
        if (i_ + 1 < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
          size_t j = i_ + 1;
          bool neg = false;
          if (s_[j] == '+' || s_[j] == '-') { neg = s_[j] == '-'; ++j; }
          size_t k = j;
          while (k < s_.size() && std::isdigit((unsigned char)s_[k])) ++k;
          if (k > j && k - j <= 6 && (k == s_.size() || !std::isalpha((unsigned char)s_[k]))) {
            out.push_back({T::Op, "*"});
            out.push_back({T::Num, "10"});
            out.push_back({T::Caret, "^"});
            out.push_back({T::LBrace, "{"});
            if (neg) out.push_back({T::Op, "-"});
            out.push_back({T::Num, std::string(s_.substr(j, k - j))});
            out.push_back({T::RBrace, "}"});
            i_ = k;
          }
        }
        continue;
      }
      if (std::isalpha(c)) {
        size_t j = i_;
        while (j < s_.size() && std::isalpha((unsigned char)s_[j])) ++j;
        out.push_back({T::Ident, std::string(s_.substr(i_, j - i_))});
        i_ = j;
        continue;
      }
      if (c == '\\') { command(out, depth); continue; }
      if (c >= 0x80) { utf8(out); continue; }
      ++i_;
      switch (c) {
        case '(': ++depth; out.push_back({T::LParen, "("}); break;
        case ')': --depth; out.push_back({T::RParen, ")"}); break;
        case '[': ++depth; out.push_back({T::LBrack, "["}); break;
        case ']': --depth; out.push_back({T::RBrack, "]"}); break;
        case '{':
          if (s_.substr(i_).starts_with(",}")) { i_ += 2; break; }  // 14{,}916
          out.push_back({T::LBrace, "{"});
          break;
        case '}': out.push_back({T::RBrace, "}"}); break;
        case '|': out.push_back({T::Pipe, "|"}); break;
        case ',': out.push_back({T::Comma, ","}); break;
        case ';': out.push_back({T::Semi, ";"}); break;
        case '&': out.push_back({T::Amp, "&"}); break;
        case '^': {  // degrees: ^\circ, ^{\circ}
          size_t j = i_;
          while (j < s_.size() && s_[j] == ' ') ++j;
          std::string_view r = s_.substr(j);
          if (r.starts_with("\\circ")) { i_ = j + 5; break; }
          if (r.starts_with("{\\circ}")) { i_ = j + 7; break; }
          if (r.starts_with("{ \\circ }")) { i_ = j + 9; break; }
          out.push_back({T::Caret, "^"});
          break;
        }
        case '_': out.push_back({T::Under, "_"}); break;
        case '%': out.push_back({T::Percent, "%"}); break;
        case '\'': out.push_back({T::Prime, "'"}); break;
        case ':': out.push_back({T::Colon, ":"}); break;
        case '+': out.push_back({T::Op, "+"}); break;
        case '-': out.push_back({T::Op, "-"}); break;
        case '*':
          if (i_ < s_.size() && s_[i_] == '*') { ++i_; out.push_back({T::Caret, "^"}); }
          else out.push_back({T::Op, "*"});
          break;
        case '/': out.push_back({T::Op, "/"}); break;
        case '=':
          if (i_ < s_.size() && s_[i_] == '=') ++i_;
          if (i_ < s_.size() && s_[i_] == '>') { ++i_; out.push_back({T::Sep, "=>"}); break; }
          out.push_back({T::Op, "="});
          break;
        case '<':
          if (i_ < s_.size() && s_[i_] == '=') { ++i_; out.push_back({T::Op, "<="}); }
          else out.push_back({T::Op, "<"});
          break;
        case '>':
          if (i_ < s_.size() && s_[i_] == '=') { ++i_; out.push_back({T::Op, ">="}); }
          else out.push_back({T::Op, ">"});
          break;
        case '!':
          if (i_ < s_.size() && s_[i_] == '=') { ++i_; out.push_back({T::Op, "!="}); }
          else out.push_back({T::Bang, "!"});
          break;
        case '.': case '?':
          break;  // sentence punctuation
        default: throw ParseError{ParseStatus::syntax, std::string("unexpected character '") + char(c) + "'"};
      }
    }
    out.push_back({T::End, ""});
    return out;
  }

 private:
  std::string number(int depth) {
    size_t j = i_;
    std::string digits;
    while (j < s_.size() && std::isdigit((unsigned char)s_[j])) digits += s_[j++];
    // Thousands separators at the top level: 7,425,000 (not inside brackets, where commas separate items).
    if (depth <= 0 && !digits.empty() && digits.size() <= 3 && digits[0] != '0') {
      size_t k = j;
      std::string acc = digits;
      int groups = 0;
      while (k + 3 < s_.size() + 0 && s_[k] == ',' && k + 3 < s_.size() + 1) {
        size_t m = k + 1;
        if (s_.substr(m).starts_with("\\!")) m += 2;
        if (m + 3 > s_.size()) break;
        bool three = std::isdigit((unsigned char)s_[m]) && std::isdigit((unsigned char)s_[m + 1]) &&
                     std::isdigit((unsigned char)s_[m + 2]);
        if (!three || (m + 3 < s_.size() && std::isdigit((unsigned char)s_[m + 3]))) break;
        acc += s_.substr(m, 3);
        k = m + 3;
        ++groups;
      }
      if (groups > 0) { digits = acc; j = k; }
    }
    bool dec = false;
    if (j + 1 < s_.size() && s_[j] == '.' && std::isdigit((unsigned char)s_[j + 1])) {
      dec = true;
      digits += '.';
      ++j;
      while (j < s_.size() && std::isdigit((unsigned char)s_[j])) digits += s_[j++];
    }
    i_ = j;
    if (digits.empty() || digits[0] == '.') digits = "0" + digits;
    (void)dec;
    return digits;
  }

  void command(std::vector<Tok>& out, int& depth) {
    size_t j = i_ + 1;
    if (j >= s_.size()) { ++i_; return; }
    char c = s_[j];
    if (c == '\\') {
      size_t k = j + 1;
      while (k < s_.size() && std::isalpha((unsigned char)s_[k])) ++k;
      if (k > j + 1 && known_command(s_.substr(j + 1, k - j - 1))) { i_ = j; return; }  // \\frac -> \frac
      i_ = j + 1;
      out.push_back({T::Newrow, "\\\\"});
      return;
    }
    if (!std::isalpha((unsigned char)c)) {
      i_ = j + 1;
      switch (c) {
        case '{': out.push_back({T::LSet, "{"}); ++depth; return;
        case '}': out.push_back({T::RSet, "}"}); --depth; return;
        case '%': out.push_back({T::Percent, "%"}); return;
        case '|': out.push_back({T::Pipe, "|"}); return;
        case '(': case ')': case '[': case ']': return;  // \( \) \[ \] math delimiters
        default: return;  // \, \; \! \: \  \$ \# ...
      }
    }
    size_t k = j;
    while (k < s_.size() && std::isalpha((unsigned char)s_[k])) ++k;
    std::string_view name = s_.substr(j, k - j);
    i_ = k;
    if (skip_cmds().count(name)) {
      if ((name == "left" || name == "right" || name.starts_with("big") || name.starts_with("Big")) &&
          i_ < s_.size() && s_[i_] == '.')
        ++i_;
      if (name == "phantom") { std::string_view g; skip_ws(); read_group(s_, i_, g); }
      return;
    }
    if (name == "pmod") {  // the rest is a modulus annotation
      skip_ws();
      std::string_view g;
      read_group(s_, i_, g);
      return;
    }
    if (name == "color" || name == "textcolor") {
      skip_ws();
      std::string_view g;
      read_group(s_, i_, g);  // colour name; the content follows
      return;
    }
    if (unwrap_cmds().count(name)) return;  // the following group is parsed as a plain group
    if (text_cmds().count(name)) {
      skip_ws();
      std::string_view g;
      if (!read_group(s_, i_, g)) throw ParseError{ParseStatus::syntax, "\\text without a group"};
      std::string t = norm_text(g);
      if (t == "and" || t == "or" || t == "," || t == "and," || t == ",and") out.push_back({T::Sep, t});
      else if (!t.empty()) out.push_back({T::Text, std::string(g)});
      return;
    }
    if (name == "begin" || name == "end") {
      skip_ws();
      std::string_view g;
      if (!read_group(s_, i_, g)) throw ParseError{ParseStatus::syntax, "\\begin without a group"};
      std::string env(g);
      if (name == "begin" && env == "array") { skip_ws(); std::string_view spec; read_group(s_, i_, spec); }
      out.push_back({name == "begin" ? T::Begin : T::EndEnv, env});
      return;
    }
    if (auto it = cmd_map().find(name); it != cmd_map().end()) {
      out.push_back({it->second.t, it->second.s});
      if (it->second.t == T::LSet || it->second.t == T::LParen || it->second.t == T::LBrack) ++depth;
      if (it->second.t == T::RSet || it->second.t == T::RParen || it->second.t == T::RBrack) --depth;
      return;
    }
    if (name == "dfrac" || name == "tfrac" || name == "cfrac") name = "frac";
    if (name == "dbinom" || name == "tbinom") name = "binom";
    if (name == "lfloor" || name == "rfloor" || name == "lceil" || name == "rceil") {
      out.push_back({T::Cmd, std::string(name)});
      return;
    }
    out.push_back({T::Cmd, std::string(name)});
  }

  void skip_ws() {
    while (i_ < s_.size() && std::isspace((unsigned char)s_[i_])) ++i_;
  }

  void utf8(std::vector<Tok>& out) {
    static const std::pair<const char*, Tok> table[] = {
        {"≤", {T::Op, "<="}}, {"≥", {T::Op, ">="}}, {"≠", {T::Op, "!="}}, {"±", {T::Op, "pm"}},
        {"·", {T::Op, "*"}}, {"×", {T::Op, "*"}}, {"÷", {T::Op, "/"}}, {"π", {T::Cmd, "pi"}},
        {"∞", {T::Cmd, "infty"}}, {"√", {T::Cmd, "sqrt"}}, {"∪", {T::Op, "cup"}}, {"−", {T::Op, "-"}},
        {"–", {T::Op, "-"}}, {"°", {T::Sep, ""}}, {"，", {T::Comma, ","}}, {"²", {T::Num, "^2"}},
        {"³", {T::Num, "^3"}}, {"€", {T::Sep, ""}}, {"£", {T::Sep, ""}}, {"¥", {T::Sep, ""}},
        {"\u00a0", {T::Sep, ""}}, {"。", {T::Sep, ""}}, {"≈", {T::Op, "approx"}}, {"∈", {T::Op, "in"}},
        {"⋅", {T::Op, "*"}}, {"∗", {T::Op, "*"}}, {"：", {T::Colon, ":"}}};
    for (auto& [k, tok] : table) {
      size_t n = std::strlen(k);
      if (s_.substr(i_, n) == k) {
        i_ += n;
        if (tok.t == T::Sep && tok.s.empty()) return;
        if (tok.t == T::Num) {  // superscript digits
          out.push_back({T::Caret, "^"});
          out.push_back({T::Num, tok.s.substr(1)});
          return;
        }
        out.push_back(tok);
        return;
      }
    }
    throw ParseError{ParseStatus::syntax, "non-ASCII text"};
  }

  std::string_view s_;
  const VerifyOptions& opt_;
  size_t i_ = 0;
};

// ---------------------------------------------------------------------------------------------------
class Parser {
 public:
  Parser(std::vector<Tok> toks, const VerifyOptions& opt) : t_(std::move(toks)), opt_(opt) {}

  NP parse_top() {
    NP r = list(true);
    if (cur().t != T::End) throw ParseError{ParseStatus::syntax, "unexpected '" + cur().s + "'"};
    return r;
  }
  bool wordy = false;

 private:
  const Tok& cur() const { return t_[p_]; }
  const Tok& peek(int k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  bool is_op(const char* s) const { return cur().t == T::Op && cur().s == s; }
  void next() { if (p_ + 1 < t_.size()) ++p_; }
  void expect(T t, const char* what) {
    if (cur().t != t) throw ParseError{ParseStatus::syntax, std::string("expected ") + what};
    next();
  }
  std::shared_ptr<Node> mk(K k, std::string s = {}, std::vector<NP> kids = {}) {
    if (++nodes_ > opt_.max_nodes) throw ParseError{ParseStatus::cap, "expression too large"};
    return make(k, std::move(s), std::move(kids));
  }
  struct Depth {
    Parser& p;
    explicit Depth(Parser& pp) : p(pp) {
      if (++p.depth_ > p.opt_.max_depth) throw ParseError{ParseStatus::cap, "nesting too deep"};
    }
    ~Depth() { --p.depth_; }
  };

  bool is_sep_word() const {
    if (cur().t == T::Sep) return true;
    if (cur().t == T::Ident && (cur().s == "and" || cur().s == "or")) return true;
    return false;
  }
  bool at_list_end() const {
    switch (cur().t) {
      case T::End: case T::RParen: case T::RBrack: case T::RBrace: case T::RSet: case T::Amp:
      case T::Newrow: case T::EndEnv:
        return true;
      default: return false;
    }
  }

  // list := rel ((, ; and or \quad) rel)*
  NP list(bool top) {
    Depth d(*this);
    std::vector<NP> items;
    std::vector<size_t> semi_at;  // item indices that follow a ';'
    bool any_sep = false, any_comma = false;
    while (true) {
      while (cur().t == T::Comma || cur().t == T::Semi || is_sep_word()) {
        if (cur().t == T::Semi) semi_at.push_back(items.size());
        if (cur().t == T::Comma) any_comma = true;
        if (cur().t == T::Sep && cur().s == "=>" && !items.empty()) items.clear();  // keep the conclusion
        next();
        any_sep = true;
      }
      if (at_list_end()) break;
      items.push_back(rel());
      if (cur().t == T::Comma || cur().t == T::Semi || is_sep_word()) { any_sep = true; continue; }
      if (at_list_end()) break;
      // Two items side by side without a separator (e.g. "\boxed{1}\boxed{2}" flattened): a list.
      any_sep = true;
    }
    if (items.empty()) throw ParseError{ParseStatus::syntax, "empty"};
    if (items.size() == 1 && !(any_sep && !top && false)) return items[0];
    // "p=5, q=2; p=7, q=2": ';' separates groups, ',' the items of a group -> a list of tuples.
    if (!semi_at.empty() && any_comma) {
      std::vector<NP> groups;
      size_t from = 0;
      semi_at.push_back(items.size());
      for (size_t cut : semi_at) {
        if (cut <= from) continue;
        if (cut - from == 1) groups.push_back(items[from]);
        else {
          auto g = std::make_shared<Node>(*mk(K::Seq));
          g->open = '(';
          g->close = ')';
          g->kids.assign(items.begin() + from, items.begin() + cut);
          groups.push_back(g);
        }
        from = cut;
      }
      items = std::move(groups);
      if (items.size() == 1) return items[0];
    }
    auto n = std::make_shared<Node>(*mk(K::Seq));
    n->open = 'L';
    n->close = 'L';
    n->kids = std::move(items);
    return n;
  }

  static bool is_rel_op(const std::string& s) {
    return s == "=" || s == "<" || s == ">" || s == "<=" || s == ">=" || s == "!=";
  }

  NP rel() {
    Depth d(*this);
    std::vector<NP> kids{setexpr()};
    std::vector<std::string> ops;
    while (cur().t == T::Op && (is_rel_op(cur().s) || cur().s == "approx" || cur().s == "in")) {
      std::string op = cur().s;
      next();
      if (op == "approx") {  // keep what comes before \approx; skip the approximation ("x \approx 11": 11)
        NP rhs = setexpr();
        if (kids.size() == 1 && ops.empty() && (kids[0]->k == K::Sym)) kids[0] = rhs;
        continue;
      }
      if (op == "in") {  // x \in S  ->  S
        NP rhs = setexpr();
        kids.back() = rhs;
        continue;
      }
      ops.push_back(op);
      kids.push_back(setexpr());
    }
    if (ops.empty()) return kids[0];
    auto n = std::make_shared<Node>(*mk(K::Rel));
    n->kids = std::move(kids);
    n->ops = std::move(ops);
    return n;
  }

  NP setexpr() {
    NP a = colon_expr();
    if (is_op("cup")) {
      std::vector<NP> parts{a};
      while (is_op("cup")) {
        next();
        parts.push_back(colon_expr());
      }
      return mk(K::Union, "", std::move(parts));
    }
    if (is_op("cap") || is_op("setminus")) throw ParseError{ParseStatus::syntax, "set algebra"};
    return a;
  }

  // Ratios a:b compare as a/b.
  NP colon_expr() {
    NP a = expr();
    if (cur().t == T::Colon) {
      next();
      NP b = expr();
      auto n = std::make_shared<Node>(*mk(K::Func, "ratio", {a, b}));
      return n;
    }
    return a;
  }

  NP expr() {
    Depth d(*this);
    NP a = term();
    while (cur().t == T::Op && (cur().s == "+" || cur().s == "-" || cur().s == "pm" || cur().s == "mp" ||
                                cur().s == "mod")) {
      std::string op = cur().s;
      next();
      NP b = term();
      if (op == "+") a = flat_add(a, b);
      else if (op == "-") a = flat_add(a, mk(K::Neg, "", {b}));
      else if (op == "mod") a = mk(K::Func, "mod", {a, b});
      else a = mk(K::PM, "", {a, op == "pm" ? b : mk(K::Neg, "", {b})});
    }
    return a;
  }
  // a (+|*) b as one n-ary node: appends b to a copy of a when a already is that node kind.
  NP flat(K kind, NP a, NP b) {
    if (a->k == kind) {
      auto n = std::make_shared<Node>(*a);
      n->kids.push_back(b);
      return n;
    }
    return mk(kind, "", {a, b});
  }
  NP flat_add(NP a, NP b) { return flat(K::Add, std::move(a), std::move(b)); }

  bool starts_primary() const {
    switch (cur().t) {
      case T::Num: case T::LParen: case T::LBrack: case T::LBrace: case T::LSet: case T::Begin: return true;
      case T::Ident: return !(cur().s == "and" || cur().s == "or");
      case T::Cmd: return true;
      case T::Pipe: return abs_depth_ == 0;
      default: return false;
    }
  }

  NP term() {
    Depth d(*this);
    NP a = unary();
    while (true) {
      if (cur().t == T::Op && (cur().s == "*" || cur().s == "/")) {
        std::string op = cur().s;
        next();
        NP b = unary();
        a = op == "*" ? mul(a, b) : mk(K::Div, "", {a, b});
        continue;
      }
      if (cur().t == T::Text) {  // units after a value: 15\mbox{ cm}^2
        std::string t = norm_text(cur().s);
        next();
        if (t == "percent" || t == "%" || t == "pct" || t == "percentage") { a = mk(K::Percent, "", {a}); continue; }
        if (cur().t == T::Caret) { next(); power_operand(); }
        continue;
      }
      if (cur().t == T::Ident && cur().s.size() >= 1 && !functions().count(cur().s) &&
          (cur().s == "percent" || cur().s == "pct" || cur().s == "percentage")) {
        next();
        a = mk(K::Percent, "", {a});
        continue;
      }
      if (cur().t == T::LBrace && peek().t == T::Ident && peek(2).t == T::RBrace && peek().s.size() >= 2 &&
          is_unit_word(peek().s) && a->k != K::Sym) {  // \textbf{meters}
        next(); next(); next();
        continue;
      }
      if (cur().t == T::Ident && cur().s.size() >= 2 && is_unit_word(cur().s) && a->k != K::Sym) {
        next();
        if (cur().t == T::Caret) { next(); power_operand(); }
        continue;
      }
      if (starts_primary()) {
        NP b = unary_noprefix();
        // mixed number: 918\frac{1}{2}
        if (a->k == K::Num && !a->dec && b->k == K::Div && b->s == "frac" && b->kids[0]->k == K::Num &&
            b->kids[1]->k == K::Num)
          a = mk(K::Add, "", {a, b});
        else
          a = mul(a, b);
        continue;
      }
      break;
    }
    return a;
  }
  NP mul(NP a, NP b) { return flat(K::Mul, std::move(a), std::move(b)); }

  NP unary() {
    Depth d(*this);
    if (is_op("-")) { next(); return mk(K::Neg, "", {unary()}); }
    if (is_op("+")) { next(); return unary(); }
    if (is_op("pm")) { next(); return mk(K::PM, "", {mk(K::Num, "0"), unary()}); }
    if (is_op("mp")) { next(); return mk(K::PM, "", {mk(K::Num, "0"), mk(K::Neg, "", {unary()})}); }
    return unary_noprefix();
  }

  NP unary_noprefix() {
    NP b = postfix();
    if (cur().t == T::Caret) {
      next();
      NP e = power_operand();
      return mk(K::Pow, "", {b, e});
    }
    return b;
  }

  NP power_operand() {
    Depth d(*this);
    if (cur().t == T::LBrace) {
      next();
      NP e = list(false);
      expect(T::RBrace, "}");
      return e;
    }
    if (is_op("-")) { next(); return mk(K::Neg, "", {power_operand()}); }
    if (cur().t == T::Num) {  // x^23 in LaTeX is x^2 3; take the whole number for plain text
      NP n = num(cur().s);
      next();
      return n;
    }
    if (cur().t == T::Ident) {
      std::string s = cur().s;
      next();
      if (s.size() > 1) {  // x^ab -> x^a b: keep it simple, treat as one symbol product
        NP r = sym1(s.substr(0, 1));
        return r;
      }
      return sym1(s);
    }
    return postfix();
  }

  NP postfix() {
    NP a = primary();
    while (true) {
      if (cur().t == T::Bang) { next(); a = mk(K::Fact, "", {a}); continue; }
      if (cur().t == T::Percent) { next(); a = mk(K::Percent, "", {a}); continue; }
      if (cur().t == T::Prime) {
        next();
        if (a->k == K::Sym) a = mk(K::Sym, a->s + "'");
        continue;
      }
      if (cur().t == T::Under) {
        next();
        std::string sub = subscript_text();
        if (a->k == K::Sym || a->k == K::Num) a = mk(K::Sym, a->s + "_" + sub);
        else if (a->k == K::Const) a = mk(K::Sym, a->s + "_" + sub);
        else if (a->k == K::Mul && !a->kids.empty() && a->kids.back()->k == K::Sym) {
          auto n = std::make_shared<Node>(*a);
          n->kids.back() = mk(K::Sym, a->kids.back()->s + "_" + sub);
          a = n;
        }
        continue;
      }
      break;
    }
    return a;
  }

  std::string subscript_text() {
    std::string out;
    if (cur().t == T::LBrace) {
      int depth = 0;
      do {
        if (cur().t == T::LBrace) ++depth;
        else if (cur().t == T::RBrace) --depth;
        else out += cur().s;
        if (cur().t == T::End) throw ParseError{ParseStatus::syntax, "unclosed subscript"};
        next();
      } while (depth > 0);
      return out;
    }
    if (cur().t == T::Num || cur().t == T::Ident) {
      out = cur().s;
      if (cur().t == T::Ident && out.size() > 1) {  // x_ab -> x_a b (LaTeX)
        t_[p_].s = out.substr(1);
        return out.substr(0, 1);
      }
      next();
      return out;
    }
    if (cur().t == T::Cmd) { out = cur().s; next(); return out; }
    throw ParseError{ParseStatus::syntax, "bad subscript"};
  }

  NP num(const std::string& s) {
    auto n = std::make_shared<Node>(*mk(K::Num, s));
    n->dec = s.find('.') != std::string::npos;
    return n;
  }
  NP sym1(const std::string& s) {
    if (s == "e") return mk(K::Const, "e");
    if (s == "i") return mk(K::Const, "i");
    return mk(K::Sym, s);
  }

  // Argument of \frac / \sqrt: a brace group, or (malformed operators) one token.
  NP arg() {
    Depth d(*this);
    if (cur().t == T::LBrace) {
      next();
      NP e = list(false);
      expect(T::RBrace, "}");
      return e;
    }
    if (!opt_.malformed_operators) throw ParseError{ParseStatus::syntax, "operator argument without braces"};
    if (cur().t == T::Num) {  // \frac12: one digit each
      std::string s = cur().s;
      if (s.size() > 1 && s.find('.') == std::string::npos) {
        t_[p_].s = s.substr(1);
        return num(s.substr(0, 1));
      }
      next();
      return num(s);
    }
    if (cur().t == T::Ident) {
      std::string s = cur().s;
      if (s.size() > 1) {
        t_[p_].s = s.substr(1);
        return sym1(s.substr(0, 1));
      }
      next();
      return sym1(s);
    }
    if (cur().t == T::Cmd) return primary();
    throw ParseError{ParseStatus::syntax, "missing argument"};
  }

  NP group_in(T close, const char* what) {
    NP e = list(false);
    expect(close, what);
    return e;
  }

  NP func_call(const std::string& name) {
    // Optional power (\sin^2 x) and base (\log_2 8).
    NP pw, base;
    for (int k = 0; k < 2; ++k) {
      if (cur().t == T::Caret) { next(); pw = power_operand(); }
      else if (cur().t == T::Under) {
        next();
        if (cur().t == T::LBrace) { next(); base = list(false); expect(T::RBrace, "}"); }
        else if (cur().t == T::Num) { base = num(cur().s); next(); }
        else base = primary();
      }
    }
    NP a;
    if (cur().t == T::LParen) {
      next();
      a = list(false);
      expect(T::RParen, ")");
    } else if (cur().t == T::LBrace) {
      next();
      a = list(false);
      expect(T::RBrace, "}");
    } else {
      // \sin x, \cos 2x: one implicit product of simple factors.
      a = postfix();
      while (cur().t == T::Num || (cur().t == T::Ident && cur().s != "and" && cur().s != "or") ) {
        if (cur().t == T::Ident && functions().count(cur().s)) break;
        a = mul(a, postfix());
      }
    }
    NP f;
    if (name == "ln" || (name == "log" && !base)) f = mk(K::Func, "log", {a});
    else if (name == "log" || name == "lg") f = mk(K::Func, "log", {a, base ? base : num("10")});
    else if (name == "asin") f = mk(K::Func, "arcsin", {a});
    else if (name == "acos") f = mk(K::Func, "arccos", {a});
    else if (name == "atan") f = mk(K::Func, "arctan", {a});
    else if (name == "cosec") f = mk(K::Func, "csc", {a});
    else if (name == "exp") f = mk(K::Pow, "", {mk(K::Const, "e"), a});
    else if (name == "sqrt") f = mk(K::Pow, "", {a, mk(K::Div, "", {num("1"), num("2")})});
    else if (a->k == K::Seq && a->open == 'L' && (name == "gcd" || name == "lcm" || name == "max" || name == "min"))
      f = mk(K::Func, name, a->kids);
    else f = mk(K::Func, name, {a});
    if (pw) {
      // \sin^{-1} is arcsin.
      if (pw->k == K::Neg && pw->kids[0]->k == K::Num && pw->kids[0]->s == "1" &&
          (name == "sin" || name == "cos" || name == "tan"))
        return mk(K::Func, "arc" + name, {a});
      return mk(K::Pow, "", {f, pw});
    }
    return f;
  }

  NP matrix(const std::string& env) {
    std::vector<std::vector<NP>> rows(1);
    while (cur().t != T::EndEnv && cur().t != T::End) {
      if (cur().t == T::Amp) { next(); continue; }
      if (cur().t == T::Newrow) { next(); rows.emplace_back(); continue; }
      rows.back().push_back(rel());
      if (cur().t != T::Amp && cur().t != T::Newrow && cur().t != T::EndEnv)
        throw ParseError{ParseStatus::syntax, "bad matrix entry"};
    }
    expect(T::EndEnv, "\\end");
    while (!rows.empty() && rows.back().empty()) rows.pop_back();
    if (rows.empty()) throw ParseError{ParseStatus::syntax, "empty matrix"};
    size_t cols = rows[0].size();
    for (auto& r : rows)
      if (r.size() != cols) throw ParseError{ParseStatus::syntax, "ragged matrix"};
    auto n = std::make_shared<Node>(*mk(K::Matrix));
    n->rows = int(rows.size());
    n->cols = int(cols);
    for (auto& r : rows)
      for (auto& e : r) n->kids.push_back(e);
    if (env == "vmatrix" || env == "Vmatrix") return mk(K::Func, "det", {n});
    return n;
  }

  NP ident() {
    std::string w = cur().s;
    next();
    if (functions().count(w)) return func_call(w);
    if (w == "pi") return mk(K::Const, "pi");
    if (w == "infty" || w == "inf" || w == "infinity" || w == "oo") return mk(K::Const, "inf");
    if (w.size() >= 3 && !is_unit_word(w)) wordy = true;
    if (w.size() == 1) return sym1(w);
    // Split a run of letters into a product of single-letter symbols (LaTeX semantics), unless a known
    // function name starts inside it (xsin -> x sin).
    std::vector<NP> f;
    for (size_t k = 0; k < w.size(); ++k) {
      bool fn = false;
      for (auto& fname : functions()) {
        if (fname.size() >= 2 && w.compare(k, fname.size(), fname) == 0 && k + fname.size() == w.size()) {
          f.push_back(func_call(std::string(fname)));
          k = w.size();
          fn = true;
          break;
        }
      }
      if (!fn) f.push_back(sym1(w.substr(k, 1)));
    }
    if (f.size() == 1) return f[0];
    return mk(K::Mul, "", std::move(f));
  }

  NP primary() {
    Depth d(*this);
    const Tok& tk = cur();
    switch (tk.t) {
      case T::Num: { NP n = num(tk.s); next(); return n; }
      case T::Ident: return ident();
      case T::Text: {
        std::string t = norm_text(tk.s);
        next();
        return mk(K::Text, t);
      }
      case T::LParen: case T::LBrack: {
        char open = tk.t == T::LParen ? '(' : '[';
        next();
        NP e = list(false);
        char close;
        if (cur().t == T::RParen) close = ')';
        else if (cur().t == T::RBrack) close = ']';
        else throw ParseError{ParseStatus::syntax, "unclosed bracket"};
        next();
        bool multi = e->k == K::Seq && e->open == 'L';
        if (!multi) {
          if (open == '(' && close == ')') return e;
          if (open == '[' && close == ']') return e;  // [90] is 90
          throw ParseError{ParseStatus::syntax, "mismatched brackets"};
        }
        auto n = std::make_shared<Node>(*e);
        n->open = open;
        n->close = close;
        return n;
      }
      case T::LBrace: {
        next();
        NP e = list(false);
        expect(T::RBrace, "}");
        return e;
      }
      case T::LSet: {
        next();
        if (cur().t == T::RSet) { next(); auto n = std::make_shared<Node>(*mk(K::Seq)); n->open = '{'; n->close = '}'; return n; }
        NP e = list(false);
        expect(T::RSet, "\\}");
        auto n = std::make_shared<Node>(*mk(K::Seq));
        n->open = '{';
        n->close = '}';
        if (e->k == K::Seq && e->open == 'L') n->kids = e->kids;
        else n->kids = {e};
        return n;
      }
      case T::Pipe: {
        next();
        ++abs_depth_;
        NP e = expr();
        --abs_depth_;
        expect(T::Pipe, "|");
        return mk(K::Func, "abs", {e});
      }
      case T::Begin: {
        std::string env = tk.s;
        next();
        if (env.find("matrix") != std::string::npos || env == "array") return matrix(env);
        if (env == "align" || env == "align*" || env == "aligned" || env == "equation" || env == "equation*" ||
            env == "gather" || env == "cases") {
          NP e = list(false);
          expect(T::EndEnv, "\\end");
          return e;
        }
        throw ParseError{ParseStatus::syntax, "unknown environment " + env};
      }
      case T::Cmd: return command();
      default:
        throw ParseError{ParseStatus::syntax, "unexpected '" + tk.s + "'"};
    }
  }

  NP command() {
    std::string c = cur().s;
    next();
    if (c == "frac") {
      NP a = arg();
      NP b = arg();
      auto n = std::make_shared<Node>(*mk(K::Div, "frac", {a, b}));
      return n;
    }
    if (c == "sqrt") {
      NP idx;
      if (cur().t == T::LBrack) {
        next();
        idx = list(false);
        expect(T::RBrack, "]");
      }
      NP a = arg();
      NP e = idx ? mk(K::Div, "", {num("1"), idx}) : mk(K::Div, "", {num("1"), num("2")});
      return mk(K::Pow, "", {a, e});
    }
    if (c == "binom" || c == "choose") {
      NP a = arg();
      NP b = arg();
      return mk(K::Func, "binom", {a, b});
    }
    if (c == "pi") return mk(K::Const, "pi");
    if (c == "infty" || c == "infin") return mk(K::Const, "inf");
    if (c == "emptyset" || c == "varnothing") {
      auto n = std::make_shared<Node>(*mk(K::Seq));
      n->open = '{';
      n->close = '}';
      return n;
    }
    if (c == "lfloor" || c == "lceil") {
      NP e = list(false);
      if (cur().t == T::Cmd && (cur().s == "rfloor" || cur().s == "rceil")) next();
      else throw ParseError{ParseStatus::syntax, "unclosed floor"};
      return mk(K::Func, c == "lfloor" ? "floor" : "ceil", {e});
    }
    if (functions().count(c)) return func_call(c);
    if (c == "dots" || c == "ldots" || c == "cdots" || c == "dotsm" || c == "dotsc" || c == "vdots")
      return mk(K::Sym, "\\dots");
    if (c == "sum" || c == "int" || c == "lim" || c == "prod" || c == "iint" || c == "oint")
      throw ParseError{ParseStatus::syntax, "\\" + c + " is not evaluated"};
    if (c == "overrightarrow" || c == "vec" || c == "hat" || c == "bar" || c == "tilde" || c == "widehat" ||
        c == "overarc" || c == "angle" || c == "triangle" || c == "widetilde") {
      std::string name = "\\" + c;
      if (cur().t == T::LBrace) {
        int depth = 0;
        do {
          if (cur().t == T::LBrace) ++depth;
          else if (cur().t == T::RBrace) --depth;
          else name += cur().s;
          if (cur().t == T::End) throw ParseError{ParseStatus::syntax, "unclosed group"};
          next();
        } while (depth > 0);
      } else if (cur().t == T::Ident || cur().t == T::Num) {
        name += cur().s;
        next();
      }
      return mk(K::Sym, name);
    }
    if (c == "rfloor" || c == "rceil") throw ParseError{ParseStatus::syntax, "stray \\" + c};
    // Greek letters and any other command: a named symbol (identical spellings compare equal).
    return mk(K::Sym, "\\" + c);
  }

  std::vector<Tok> t_;
  const VerifyOptions& opt_;
  size_t p_ = 0;
  int depth_ = 0;
  int nodes_ = 0;
  int abs_depth_ = 0;
};

// Expands every PM node into the two signs (bounded: at most 8 variants).
bool contains_pm(const Node& n) {
  if (n.k == K::PM) return true;
  for (auto& k : n.kids)
    if (contains_pm(*k)) return true;
  return false;
}
NP replace_first_pm(const NP& n, int sign, bool& done) {
  if (done) return n;
  if (n->k == K::PM) {
    done = true;
    const NP& a = n->kids[0];
    const NP& b = n->kids[1];
    NP bb = sign > 0 ? b : make(K::Neg, "", {b});
    if (a->k == K::Num && a->s == "0") return bb;
    return make(K::Add, "", {a, bb});
  }
  bool changed = false;
  std::vector<NP> kids;
  kids.reserve(n->kids.size());
  for (auto& k : n->kids) {
    NP r = replace_first_pm(k, sign, done);
    changed |= r != k;
    kids.push_back(r);
  }
  if (!changed) return n;
  auto c = std::make_shared<Node>(*n);
  c->kids = std::move(kids);
  return c;
}
void expand_pm(const NP& n, std::vector<NP>& out, int budget) {
  if (!contains_pm(*n) || budget <= 0) { out.push_back(n); return; }
  bool d1 = false, d2 = false;
  expand_pm(replace_first_pm(n, +1, d1), out, budget - 1);
  expand_pm(replace_first_pm(n, -1, d2), out, budget - 1);
}
NP expand_pm_items(const NP& n) {
  if (!contains_pm(*n)) return n;
  if (n->k == K::Seq) {
    auto c = std::make_shared<Node>(*n);
    c->kids.clear();
    for (auto& k : n->kids) {
      if (k->k == K::Seq) c->kids.push_back(expand_pm_items(k));
      else expand_pm(k, c->kids, 3);
    }
    return c;
  }
  if (n->k == K::Rel) {  // x = 1 \pm \sqrt 2: a list of assignments
    std::vector<NP> vals;
    expand_pm(n->kids.back(), vals, 3);
    auto l = make(K::Seq);
    auto lm = std::make_shared<Node>(*l);
    lm->open = lm->close = 'L';
    for (auto& v : vals) {
      auto r = std::make_shared<Node>(*n);
      r->kids.back() = v;
      lm->kids.push_back(r);
    }
    return lm;
  }
  std::vector<NP> vals;
  expand_pm(n, vals, 3);
  auto l = std::make_shared<Node>(*make(K::Seq));
  l->open = l->close = 'L';
  l->kids = std::move(vals);
  return l;
}

}  // namespace

Parsed parse_math(std::string_view s, const VerifyOptions& opt) {
  Parsed out;
  try {
    if (s.size() > opt.max_answer_chars) {
      out.status = ParseStatus::cap;
      out.error = "answer too long";
      return out;
    }
    Lexer lx(s, opt);
    auto toks = lx.run();
    Parser p(std::move(toks), opt);
    NP r = p.parse_top();
    out.root = expand_pm_items(r);
    out.wordy = p.wordy;
    out.status = ParseStatus::ok;
  } catch (const ParseError& e) {
    out.status = e.st;
    out.error = e.msg;
  } catch (const std::exception& e) {
    out.status = ParseStatus::syntax;
    out.error = e.what();
  }
  return out;
}

std::string to_string(const Node& n) {
  auto join = [&](const char* sep) {
    std::string r;
    for (size_t i = 0; i < n.kids.size(); ++i) {
      if (i) r += sep;
      r += to_string(*n.kids[i]);
    }
    return r;
  };
  switch (n.k) {
    case K::Num: case K::Sym: case K::Const: return n.s;
    case K::Text: return "\\text{" + n.s + "}";
    case K::Add: return "(" + join(" + ") + ")";
    case K::Mul: return "(" + join("*") + ")";
    case K::Div: return "(" + to_string(*n.kids[0]) + ")/(" + to_string(*n.kids[1]) + ")";
    case K::Pow: return "(" + to_string(*n.kids[0]) + ")^(" + to_string(*n.kids[1]) + ")";
    case K::Neg: return "-(" + to_string(*n.kids[0]) + ")";
    case K::PM: return "(" + to_string(*n.kids[0]) + " pm " + to_string(*n.kids[1]) + ")";
    case K::Func: return n.s + "(" + join(", ") + ")";
    case K::Percent: return to_string(*n.kids[0]) + "%";
    case K::Fact: return "(" + to_string(*n.kids[0]) + ")!";
    case K::Seq:
      if (n.open == 'L') return join(", ");
      if (n.open == '{') return "{" + join(", ") + "}";
      return std::string(1, n.open) + join(", ") + std::string(1, n.close);
    case K::Union: return join(" U ");
    case K::Rel: {
      std::string r = to_string(*n.kids[0]);
      for (size_t i = 0; i < n.ops.size(); ++i) r += " " + n.ops[i] + " " + to_string(*n.kids[i + 1]);
      return r;
    }
    case K::Matrix: {
      std::string r = "[";
      for (int i = 0; i < n.rows; ++i) {
        r += i ? "; " : "";
        for (int j = 0; j < n.cols; ++j) r += (j ? ", " : "") + to_string(*n.kids[i * n.cols + j]);
      }
      return r + "]";
    }
  }
  return "?";
}

}  // namespace rlvr::rewards::detail
