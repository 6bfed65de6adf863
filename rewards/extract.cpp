// Answer extraction (see extract.h). All scans are linear in the scanned text; long completions are
// searched in their tail only (VerifyOptions::scan_tail_chars).
#include "rewards/extract.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace rlvr::rewards::detail {

namespace {

bool is_space(char c) { return std::isspace((unsigned char)c) != 0; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Matches the brace group starting at s[i] == '{'; returns the index past '}' or npos.
size_t match_brace(std::string_view s, size_t i) {
  int depth = 0;
  for (size_t j = i; j < s.size(); ++j) {
    char c = s[j];
    if (c == '\\' && j + 1 < s.size()) { ++j; continue; }
    if (c == '{') ++depth;
    else if (c == '}') {
      if (--depth == 0) return j + 1;
    }
  }
  return std::string_view::npos;
}

struct Box {
  size_t start, end;  // whole "\boxed{...}" span
  std::string content;
};

std::vector<Box> find_boxes(std::string_view s, size_t max_boxes) {
  // Positions of every \boxed / \fbox, then match braces for the last few only (bounded work).
  std::vector<std::pair<size_t, size_t>> pos;  // start, index of '{'
  for (size_t i = s.find('\\'); i != std::string_view::npos; i = s.find('\\', i + 1)) {
    size_t len = 0;
    if (s.compare(i, 6, "\\boxed") == 0) len = 6;
    else if (s.compare(i, 5, "\\fbox") == 0) len = 5;
    else continue;
    size_t j = i + len;
    while (j < s.size() && s[j] == ' ') ++j;
    if (j < s.size() && s[j] == '{') pos.emplace_back(i, j);
  }
  std::vector<Box> out;
  size_t from = pos.size() > max_boxes ? pos.size() - max_boxes : 0;
  size_t limit = std::string_view::npos;  // a box inside a later box is skipped
  for (size_t k = pos.size(); k-- > from;) {
    auto [start, brace] = pos[k];
    if (limit != std::string_view::npos && start >= limit) continue;
    size_t e = match_brace(s, brace);
    if (e == std::string_view::npos) {
      // Unclosed box (truncated completion): take the rest of the text.
      continue;
    }
    out.push_back({start, e, std::string(s.substr(brace + 1, e - brace - 2))});
  }
  std::reverse(out.begin(), out.end());
  // Drop boxes nested in others (keep the outer one).
  std::vector<Box> flat;
  for (auto& b : out) {
    if (!flat.empty() && b.start < flat.back().end) continue;
    flat.push_back(std::move(b));
  }
  return flat;
}

// Whether the text between two boxes only joins them ("and", ",", "\quad", a couple of words).
bool joins_boxes(std::string_view gap) {
  if (gap.size() > 80) return false;
  int words = 0;
  bool in_word = false;
  for (size_t i = 0; i < gap.size(); ++i) {
    char c = gap[i];
    if (c == '\\') {  // skip a command name (\quad, \text, \( ...)
      size_t j = i + 1;
      while (j < gap.size() && std::isalpha((unsigned char)gap[j])) ++j;
      std::string_view name = gap.substr(i + 1, j - i - 1);
      if (name == "boxed" || name == "begin" || name == "end") return false;
      i = (j > i + 1 ? j - 1 : i + 1);  // past the name, or past the escaped character
      in_word = false;
      continue;
    }
    if (std::isalnum((unsigned char)c) || c == '(' || c == ')') {
      if (!in_word) ++words;
      in_word = true;
    } else {
      in_word = false;
      if (c == '\n' && i + 1 < gap.size() && gap[i + 1] == '\n') return false;  // new paragraph
    }
  }
  return words <= 4;
}

bool starts_with_ci(std::string_view s, size_t i, std::string_view p) {
  if (i + p.size() > s.size()) return false;
  for (size_t k = 0; k < p.size(); ++k)
    if (std::tolower((unsigned char)s[i + k]) != std::tolower((unsigned char)p[k])) return false;
  return true;
}

// Text after the last "answer is" style anchor, up to the end of its sentence.
std::optional<std::string> after_answer_anchor(std::string_view s, size_t* pos) {
  static const char* anchors[] = {"final answer is",  "the answer is", "answer is",  "final answer:",
                                  "answer:",          "réponse est",   "réponse :",  "réponse:",
                                  "答案是",           "答案：",        "答案:",      "final answer",
                                  "answer ="};
  // One backward pass: the first position (from the end) where an anchor starts wins; at that position
  // the longest anchor. Case-insensitive for ASCII; the anchors are lowercase.
  size_t best = std::string_view::npos, best_len = 0;
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; };
  for (size_t i = s.size(); i-- > 0 && best == std::string_view::npos;) {
    char c = lower(s[i]);
    if (c != 'f' && c != 't' && c != 'a' && c != 'r' && c != '\xe7') continue;
    for (const char* a : anchors) {
      if (a[0] != c) continue;
      size_t n = std::strlen(a);
      if (i + n > s.size()) continue;
      size_t k = 1;
      while (k < n && lower(s[i + k]) == a[k]) ++k;
      if (k == n && n > best_len) {
        best = i;
        best_len = n;
      }
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  if (pos) *pos = best;
  std::string_view rest = s.substr(best + best_len);
  // "final answer is $9999$, \boxed{1}": the sentence's own answer comes first; a box is cut off only
  // when something with digits precedes it.
  if (size_t bx = rest.find("\\boxed"); bx != std::string_view::npos && bx > 0) {
    bool digits = false;
    for (char c : rest.substr(0, bx)) digits |= (c >= '0' && c <= '9');
    if (digits) rest = rest.substr(0, bx);
  }
  while (!rest.empty() && (is_space(rest.front()) || rest.front() == ':' || rest.front() == '*')) rest.remove_prefix(1);
  // End of the sentence: newline, or ". " / "." at end (not a decimal point).
  size_t end = rest.size();
  int depth = 0;
  bool in_dollar = false;
  for (size_t i = 0; i < rest.size(); ++i) {
    char c = rest[i];
    if (c == '{') ++depth;
    if (c == '}') --depth;
    if (c == '$' && (i == 0 || rest[i - 1] != '\\')) in_dollar = !in_dollar;
    if (c == '\n' && !in_dollar) { end = i; break; }
    if (c == '.' && depth <= 0 && !in_dollar &&
        (i + 1 == rest.size() || is_space(rest[i + 1])) ) { end = i; break; }
  }
  std::string_view seg = trim(rest.substr(0, end));
  if (seg.empty()) return std::nullopt;
  return std::string(seg);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::string normalize_plain_number(std::string_view in) {
  std::string_view s = trim(in);
  if (s.empty() || s.size() > 64) return std::string(in);
  size_t i = 0;
  std::string sign;
  if (s[0] == '-' || s[0] == '+') { sign = s[0] == '-' ? "-" : ""; i = 1; }
  std::string_view body = s.substr(i);
  if (body.empty() || !(is_digit(body[0]) || (body[0] == '.' && body.size() > 1))) return std::string(in);
  for (char c : body)
    if (!(is_digit(c) || c == ',' || c == '.' || c == ' ')) return std::string(in);
  // Groups separated by ',' or ' '.
  std::vector<std::string> groups;
  std::vector<char> seps;
  std::string cur;
  for (char c : body) {
    if (c == ',' || c == ' ') {
      groups.push_back(cur);
      seps.push_back(c);
      cur.clear();
    } else cur += c;
  }
  groups.push_back(cur);
  if (groups.size() == 1) return sign + std::string(body);
  for (auto& g : groups)
    if (g.empty()) return std::string(in);
  // Thousands: first 1-3 digits, then groups of exactly 3 digits (the last may carry a decimal part).
  bool thousands = groups[0].size() <= 3 && groups[0].find('.') == std::string::npos;
  char sep0 = seps[0];
  for (size_t k = 1; k < groups.size() && thousands; ++k) {
    if (seps[k - 1] != sep0) thousands = false;
    std::string g = groups[k];
    size_t dot = g.find('.');
    if (dot != std::string::npos && k + 1 != groups.size()) thousands = false;
    std::string intpart = g.substr(0, dot);
    if (intpart.size() != 3) thousands = false;
    if (dot != std::string::npos && sep0 == ',' && false) thousands = false;
  }
  if (thousands && !(groups.size() == 2 && sep0 == ',' && groups[0] == "0")) {
    std::string r = sign;
    for (auto& g : groups) r += g;
    return r;
  }
  // Decimal comma: exactly two groups, comma-separated, no dots, and not "6,8" (a list): the decimals
  // have 2+ digits or the integer part is 0 ("1,22", "1000,99", "0,111").
  if (groups.size() == 2 && sep0 == ',' && groups[0].find('.') == std::string::npos &&
      groups[1].find('.') == std::string::npos && (groups[1].size() >= 2 || groups[0] == "0"))
    return sign + groups[0] + "." + groups[1];
  return std::string(in);
}

bool final_box_unclosed(std::string_view text) {
  size_t at = std::string_view::npos, len = 0;
  size_t b = text.rfind("\\boxed"), f = text.rfind("\\fbox");
  if (b != std::string_view::npos) at = b, len = 6;
  if (f != std::string_view::npos && (at == std::string_view::npos || f > at)) at = f, len = 5;
  if (at == std::string_view::npos) return false;
  size_t j = at + len;
  while (j < text.size() && text[j] == ' ') ++j;
  if (j >= text.size()) return true;  // "\boxed" at the very end: cut before its brace
  return text[j] == '{' && match_brace(text, j) == std::string_view::npos;
}

std::optional<std::string> last_boxed(std::string_view text) {
  auto boxes = find_boxes(text, 16);
  if (boxes.empty()) return std::nullopt;
  std::vector<std::string> parts{boxes.back().content};
  for (size_t k = boxes.size() - 1; k > 0; --k) {
    std::string_view gap = text.substr(boxes[k - 1].end, boxes[k].start - boxes[k - 1].end);
    if (!joins_boxes(gap)) break;
    parts.push_back(boxes[k - 1].content);
  }
  std::reverse(parts.begin(), parts.end());
  // Identical repeats ("\boxed{5} ... **Final Answer** \boxed{5}") count once.
  std::vector<std::string> uniq;
  for (auto& p : parts)
    if (std::find(uniq.begin(), uniq.end(), p) == uniq.end()) uniq.push_back(p);
  std::string r;
  for (size_t k = 0; k < uniq.size(); ++k) r += (k ? ", " : "") + uniq[k];
  return r;
}

namespace {

struct Item {
  size_t pos;  // position of the item's end in the scanned text
  std::string text;
  size_t start = 0;
};

bool ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Numbers in free text, in order: "1,000.99", "-3", "13/28", "25%"; a number glued to ASCII letters on its
// left ("AZYUK2A") is not an answer.
std::vector<Item> numbers_in(std::string_view s, size_t max_items) {
  std::vector<Item> out;
  size_t i = 0;
  while (i < s.size()) {
    if (!is_digit(s[i]) && !(s[i] == '.' && i + 1 < s.size() && is_digit(s[i + 1]) && (i == 0 || !is_digit(s[i - 1])))) {
      ++i;
      continue;
    }
    size_t b = i;
    size_t e = i;
    while (e < s.size()) {
      if (is_digit(s[e])) { ++e; continue; }
      if ((s[e] == ',' || s[e] == '.') && e + 1 < s.size() && is_digit(s[e + 1])) { ++e; continue; }
      break;
    }
    bool glued = b > 0 && (ascii_alpha(s[b - 1]) || s[b - 1] == '_' || s[b - 1] == '^');
    std::string num(s.substr(b, e - b));
    size_t end = e;
    // fraction a/b
    if (e + 1 < s.size() && s[e] == '/' && is_digit(s[e + 1])) {
      size_t f = e + 1;
      while (f < s.size() && is_digit(s[f])) ++f;
      num += std::string(s.substr(e, f - e));
      end = f;
    } else {
      num = normalize_plain_number(num);
    }
    if (b > 0 && s[b - 1] == '-' && (b < 2 || !is_digit(s[b - 2]))) num = "-" + num;
    size_t a = end;
    while (a < s.size() && s[a] == ' ') ++a;
    if (a < s.size() && s[a] == '%') num += "%";
    if (!glued) {
      out.push_back({end, num, b});
      if (out.size() > max_items) out.erase(out.begin());
    }
    i = end;
  }
  return out;
}

// Bare \frac{..}{..} groups (outside $..$), in order.
std::vector<Item> fracs_in(std::string_view s) {
  std::vector<Item> out;
  for (size_t fp = s.find("frac{"); fp != std::string_view::npos; fp = s.find("frac{", fp + 5)) {
    if (fp == 0 || s[fp - 1] != '\\') continue;
    size_t b = fp - 1;
    if (b >= 2 && (s[b - 1] == 'd' || s[b - 1] == 't') && s[b - 2] == '\\') continue;
    size_t a = fp + 4;
    size_t e1 = match_brace(s, a);
    if (e1 == std::string_view::npos || e1 >= s.size() || s[e1] != '{') continue;
    size_t e2 = match_brace(s, e1);
    if (e2 == std::string_view::npos) continue;
    out.push_back({e2, std::string(s.substr(b, e2 - b)), b});
    if (out.size() > 64) out.erase(out.begin());
  }
  return out;
}

struct Region {
  size_t start, end;
  std::string text;
};

std::vector<Region> math_regions(std::string_view s, size_t max_items) {
  std::vector<Region> out;
  auto push = [&](size_t a, size_t b, std::string_view inner) {
    if (trim(inner).empty()) return;
    out.push_back({a, b, std::string(inner)});
    if (out.size() > max_items) out.erase(out.begin());
  };
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      char d = s[i + 1];
      if (d == '[' || d == '(') {
        const char* close = d == '[' ? "\\]" : "\\)";
        size_t e = s.find(close, i + 2);
        if (e == std::string_view::npos) { i += 2; continue; }
        std::string_view inner = s.substr(i + 2, e - i - 2);
        if (d == '(' && inner.find('\n') != std::string_view::npos) { i += 2; continue; }
        push(i, e + 2, inner);
        i = e + 2;
        continue;
      }
      i += 2;
      continue;
    }
    if (c == '$') {
      bool dbl = i + 1 < s.size() && s[i + 1] == '$';
      size_t from = i + (dbl ? 2 : 1);
      size_t e = from;
      while (true) {
        e = s.find('$', e);
        if (e == std::string_view::npos) break;
        if (e > 0 && s[e - 1] == '\\') { ++e; continue; }
        break;
      }
      if (e == std::string_view::npos) { i = from; continue; }
      std::string_view inner = s.substr(from, e - from);
      size_t next = e + (dbl ? 2 : 1);
      if (!dbl && inner.find('\n') != std::string_view::npos) { i = from; continue; }
      push(i, next, inner);
      i = next;
      continue;
    }
    ++i;
  }
  return out;
}

bool has_digit(std::string_view s) {
  for (char c : s)
    if (is_digit(c)) return true;
  return false;
}

std::string without_dollars(std::string_view s) {
  std::string r;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '$' && (i == 0 || s[i - 1] != '\\')) continue;
    r += s[i];
  }
  return r;
}

}  // namespace

std::optional<std::string> last_number(std::string_view s) {
  auto v = numbers_in(s, 4);
  if (v.empty()) return std::nullopt;
  return v.back().text;
}

std::vector<Candidate> pred_candidates(std::string_view text, const VerifyOptions& opt, bool with_tail) {
  std::vector<Candidate> out;
  if (text.size() > opt.scan_tail_chars) text = text.substr(text.size() - opt.scan_tail_chars);
  auto add = [&](std::string s, const char* src, bool anchored) {
    std::string_view t = trim(s);
    if (t.empty()) return;
    for (auto& c : out)
      if (c.text == t && c.anchored == anchored) return;
    out.push_back({std::string(t), src, anchored});
  };
  if (opt.last_bracket) {
    size_t r = text.rfind(']');
    if (r != std::string_view::npos) {
      size_t l = text.rfind('[', r);
      if (l != std::string_view::npos) add(std::string(text.substr(l + 1, r - l - 1)), "bracket", true);
    }
    if (auto n = last_number(text)) add(*n, "last_number", false);
    return out;
  }
  std::optional<std::string> tag;
  if (opt.answer_tag) {
    size_t close = text.rfind("</answer>");
    size_t open = close == std::string_view::npos ? text.rfind("<answer>") : text.rfind("<answer>", close);
    if (open != std::string_view::npos && (close != std::string_view::npos || !opt.strict_extraction)) {
      size_t from = open + 8;
      size_t to = close == std::string_view::npos ? text.size() : close;
      if (to >= from) tag = std::string(text.substr(from, to - from));
    }
  }
  std::string_view scope = text;
  if (tag) scope = *tag;
  std::optional<std::string> boxed;
  size_t boxed_end = 0;
  if (opt.latex && opt.boxed) {
    auto boxes = find_boxes(scope, 16);
    if (!boxes.empty()) {
      boxed = last_boxed(scope);
      boxed_end = boxes.back().end;
    }
  }
  // "answer is" anchor and its sentence.
  size_t anchor_pos = 0;
  std::optional<std::string> anchor;
  if (opt.latex || opt.expr) anchor = after_answer_anchor(scope, &anchor_pos);
  auto add_anchor = [&] {
    if (!anchor) return;
    const std::string& a = *anchor;
    if (opt.latex && opt.boxed)
      if (auto b = last_boxed(a)) add(*b, "answer_is", true);
    // The whole sentence when it is math ("12 and 13"), else its first math item with digits.
    add(without_dollars(a), "answer_is", false);
    std::vector<Item> items;
    if (opt.latex)
      for (auto& r : math_regions(a, 16)) items.push_back({r.end, r.text, r.start});
    if (opt.latex)
      for (auto& f : fracs_in(a)) items.push_back(f);
    if (opt.expr)
      for (auto& n : numbers_in(a, 16)) items.push_back(n);
    // Items inside an earlier item (the digits of a \frac) are not separate answers.
    std::stable_sort(items.begin(), items.end(), [](const Item& x, const Item& y) { return x.start < y.start; });
    std::vector<Item> outer;
    for (auto& it : items)
      if (outer.empty() || it.start >= outer.back().pos) outer.push_back(it);
    items = outer;
    for (auto& it : items)
      if (has_digit(it.text)) { add(it.text, "answer_is", true); break; }
    for (auto& it : items) add(it.text, "answer_is", false);
    add(a, "answer_is", true);
  };
  bool anchor_after_box = anchor && anchor_pos > boxed_end;
  if (boxed && opt.boxed_first && !anchor_after_box) add(*boxed, "boxed", true);
  if (tag && !boxed) add(*tag, "answer_tag", false);
  if (opt.expr) {
    size_t h = scope.rfind("####");
    if (h != std::string_view::npos) {
      std::string_view rest = scope.substr(h + 4);
      size_t nl = rest.find('\n');
      std::string g(rest.substr(0, nl));
      add(normalize_plain_number(g), "gsm8k", true);
    }
  }
  add_anchor();
  if (boxed) add(*boxed, "boxed", true);
  if (tag) add(*tag, "answer_tag", true);
  if (!with_tail) return out;
  if (opt.expr && scope.size() <= 200) add(std::string(scope), "whole", false);
  // Trailing items, latest first: the last math region, the last bare \frac, the last number.
  std::vector<Item> tail;
  if (opt.latex) {
    auto regions = math_regions(scope, 4);
    for (auto it = regions.rbegin(); it != regions.rend(); ++it) tail.push_back({it->end, it->text});
  }
  if (opt.expr) {
    auto fr = fracs_in(scope);
    if (!fr.empty()) tail.push_back(fr.back());
    auto nums = numbers_in(scope, 2);
    if (!nums.empty()) tail.push_back(nums.back());
  }
  std::stable_sort(tail.begin(), tail.end(), [](const Item& x, const Item& y) { return x.pos > y.pos; });
  for (auto& it : tail) add(it.text, "last", false);
  return out;
}

std::optional<char> gold_letter(std::string_view g) {
  std::string s;
  for (size_t i = 0; i < g.size(); ++i) {
    char c = g[i];
    if (c == '\\') {  // drop \text, \mathrm, \textbf, \boxed
      size_t j = i + 1;
      while (j < g.size() && std::isalpha((unsigned char)g[j])) ++j;
      i = j - 1;
      continue;
    }
    if (c == '{' || c == '}' || c == '(' || c == ')' || c == '$' || is_space(c) || c == '.') continue;
    s += c;
  }
  if (s.size() == 1 && s[0] >= 'A' && s[0] <= 'Z') return s[0];
  return std::nullopt;
}

std::optional<char> extract_letter(std::string_view t, bool gold) {
  t = trim(t);
  if (t.empty()) return std::nullopt;
  if (auto g = gold_letter(t)) return g;
  auto standalone = [&](size_t i) {
    char c = t[i];
    if (!(c >= 'A' && c <= 'Z')) return false;
    bool left = i == 0 || !std::isalpha((unsigned char)t[i - 1]);
    bool right = i + 1 == t.size() || !std::isalpha((unsigned char)t[i + 1]);
    if (i > 0 && t[i - 1] == '\\') return false;
    return left && right;
  };
  // 1. after an anchor: "answer is C", "answer: (D)", "réponse est C"
  static const char* anchors[] = {"answer is", "answer:", "answer :", "réponse est", "réponse :", "réponse:",
                                  "答案是", "答案：", "答案:", "option", "choice"};
  size_t best = std::string_view::npos, blen = 0;
  for (const char* a : anchors) {
    size_t n = std::strlen(a);
    for (size_t i = t.size() >= n ? t.size() - n + 1 : 0; i-- > 0;)
      if (starts_with_ci(t, i, a)) {
        if (best == std::string_view::npos || i > best) { best = i; blen = n; }
        break;
      }
  }
  if (best != std::string_view::npos) {
    for (size_t i = best + blen; i < t.size() && i < best + blen + 24; ++i) {
      if (standalone(i)) return t[i];
      if (std::isalpha((unsigned char)t[i]) && !(i + 1 < t.size() && !std::isalpha((unsigned char)t[i + 1]))) {
        // a word: keep looking past "for sure", "the", ...
      }
    }
  }
  // 2. a letter at the very start followed by punctuation, space, ')' or non-ASCII: "D. it can't be A"
  {
    size_t i = 0;
    if (t[0] == '(' || t[0] == '[') i = 1;
    if (i < t.size() && standalone(i) && (i + 1 == t.size() || !std::isalnum((unsigned char)t[i + 1]))) {
      char nx = i + 1 < t.size() ? t[i + 1] : ' ';
      if (nx == '.' || nx == ')' || nx == ']' || nx == ':' || nx == ',' || is_space(nx) || (unsigned char)nx >= 0x80)
        if (!(nx == ' ' && t[i] == 'I')) return t[i];
    }
  }
  // 3. "(C)" anywhere (the last one)
  for (size_t i = t.size(); i-- > 2;) {
    if (t[i] == ')' && t[i - 2] == '(' && t[i - 1] >= 'A' && t[i - 1] <= 'Z') return t[i - 1];
  }
  // 4. the last standalone capital (not "I") in a sentence of several words
  int words = 0;
  for (size_t i = 0; i < t.size(); ++i)
    if (is_space(t[i])) ++words;
  if (words >= 2 || gold) {
    for (size_t i = t.size(); i-- > 0;)
      if (standalone(i) && t[i] != 'I') return t[i];
  }
  return std::nullopt;
}

}  // namespace rlvr::rewards::detail
