// Tokenizer: loads HF tokenizer.json (byte-level BPE) and runs the HF pipeline: added tokens split out of the
// raw text -> normaliser -> pre-tokenizer (Split regex, ByteLevel) -> BPE merges by rank -> post-processor.
// Semantics follow HF `tokenizers` (Rust); PCRE2 stands in for Oniguruma (\s is rewritten to Oniguruma's
// White_Space set). Not here: writing files (tokenizer_writer.cpp), chat templates (chat_template.cpp).
#include "model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "common/fs.h"
#include "model/tokenizer_bytes.h"

namespace rlvr::model {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------------------
// Small helpers

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Rust char::is_whitespace (Unicode White_Space), used for added-token lstrip/rstrip.
bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Word characters for added-token single_word: alphanumeric or '_' (Rust's is_alphanumeric covers the
// Unicode letter and number categories).
bool is_word_char(uint32_t c) {
  if (c < 0x80) return std::isalnum(static_cast<int>(c)) || c == '_';
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

// Previous code point ending at s[end) (invalid bytes count as one code point of value 0xFFFD).
uint32_t last_cp(std::string_view s, size_t end, size_t& len) {
  for (size_t k = 1; k <= 4 && k <= end; ++k) {
    uint32_t cp = 0;
    if (bytes::decode_utf8(s, end - k, cp) == k) {
      len = k;
      return cp;
    }
  }
  len = 1;
  return 0xFFFD;
}

uint32_t next_cp(std::string_view s, size_t i, size_t& len) {
  uint32_t cp = 0;
  len = bytes::decode_utf8(s, i, cp);
  if (len == 0) {
    len = 1;
    return 0xFFFD;
  }
  return cp;
}

// Oniguruma's \s (what HF tokenizers uses) is Unicode White_Space; PCRE2+UCP's \s misses U+0085. Rewrite
// \s and \S into explicit classes so both engines agree.
constexpr const char* kSpaceClassBody =
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}";

std::string rewrite_regex(const std::string& re) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      const char n = re[i + 1];
      if (n == 's') {
        out += in_class ? std::string(kSpaceClassBody) : "[" + std::string(kSpaceClassBody) + "]";
      } else if (n == 'S' && !in_class) {
        out += "[^" + std::string(kSpaceClassBody) + "]";
      } else {
        out += c;
        out += n;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < re.size() && re[i + 1] == '^') out += re[++i];
      if (i + 1 < re.size() && re[i + 1] == ']') out += re[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < re.size() && re[i + 1] == ':') {  // POSIX [:alpha:]
      const size_t e = re.find(":]", i + 2);
      if (e != std::string::npos) {
        out.append(re, i, e + 2 - i);
        i = e + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// PCRE2 regex with "find all" in HF Split/Isolated style.

class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    int err = 0;
    PCRE2_SIZE off = 0;
    const std::string p = rewrite_regex(pattern);
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
    if (code_ == nullptr) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      throw Error(fmt::format("{}: cannot compile regex '{}' at offset {}: {}", where, pattern, off,
                              reinterpret_cast<char*>(buf)));
    }
    // Without JIT support pcre2_match falls back to the interpreter: same results, slower.
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls piece(begin, end) for the gaps and matches of `s` in order (HF SplitDelimiterBehavior::Isolated).
  template <typename F>
  void split_isolated(std::string_view s, F&& piece) const {
    auto& st = thread_state();
    size_t pos = 0, last = 0;
    while (pos < s.size()) {
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, 0, st.md, st.mctx);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0 && rc != 0) break;  // resource limits: the rest becomes one piece (never throws)
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.md);
      const size_t b = ov[0], e = ov[1];
      if (e <= b) {  // empty match: step one code point and search on
        size_t len = 1;
        next_cp(s, b, len);
        pos = b + len;
        continue;
      }
      if (b > last) piece(last, b);
      piece(b, e);
      last = pos = e;
    }
    if (last < s.size()) piece(last, s.size());
  }

 private:
  struct ThreadState {
    pcre2_match_data* md = nullptr;
    pcre2_match_context* mctx = nullptr;
    pcre2_jit_stack* stack = nullptr;
    ThreadState() {
      md = pcre2_match_data_create(1, nullptr);  // the whole match is all we read
      mctx = pcre2_match_context_create(nullptr);
      stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
      pcre2_jit_stack_assign(mctx, nullptr, stack);
    }
    ~ThreadState() {
      pcre2_match_data_free(md);
      pcre2_match_context_free(mctx);
      pcre2_jit_stack_free(stack);
    }
  };
  static ThreadState& thread_state() {
    thread_local ThreadState st;
    return st;
  }

  pcre2_code* code_ = nullptr;
};

// GPT-2's pre-tokenization regex, used by ByteLevel with use_regex=true.
constexpr const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string regex_quote(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}-/").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// The loaded tokenizer.

namespace tok_detail {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
};

// Leftmost-longest matcher over a set of added tokens (a byte trie; HF uses Aho-Corasick LeftmostLongest).
class AddedMatcher {
 public:
  void add(const std::string& s, int32_t token_index) {
    if (s.empty()) return;
    int32_t node = 0;
    for (unsigned char c : s) {
      first_[s[0] & 0xFF] = true;
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | c;
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        terminal_.push_back(-1);
        it = edges_.emplace(key, static_cast<int32_t>(terminal_.size() - 1)).first;
      }
      node = it->second;
    }
    if (terminal_[node] < 0) terminal_[node] = token_index;
  }
  bool empty() const { return edges_.empty(); }
  // Longest token starting at s[i]: returns its token index and sets len, or -1.
  int32_t match_at(std::string_view s, size_t i, size_t& len) const {
    if (!first_[static_cast<unsigned char>(s[i])]) return -1;
    int32_t node = 0, best = -1;
    for (size_t k = i; k < s.size(); ++k) {
      auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(s[k]));
      if (it == edges_.end()) break;
      node = it->second;
      if (terminal_[node] >= 0) {
        best = terminal_[node];
        len = k + 1 - i;
      }
    }
    return best;
  }

 private:
  std::unordered_map<uint64_t, int32_t> edges_;
  std::vector<int32_t> terminal_{-1};  // node -> token index; node 0 is the root
  std::array<bool, 256> first_{};
};

struct PreStep {
  enum class Kind { split_regex, byte_level } kind = Kind::byte_level;
  std::shared_ptr<Regex> regex;  // split_regex; byte_level with use_regex
  bool add_prefix_space = false;
};

struct PostEntry {
  bool is_sequence = false;   // the input ids ($A)
  std::vector<int32_t> ids;   // a special token's ids
};

}  // namespace tok_detail

using namespace tok_detail;

struct Tokenizer::Impl {
  fs::path file;
  // BPE model
  std::vector<std::string> vocab_r;  // id -> token (BPE vocab)
  StringMap vocab;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // (a << 32 | b) -> (rank, merged id)
  std::array<int32_t, 256> byte_id{};  // byte -> id of its single-character token (-1: none)
  bool ignore_merges = false;
  // Added tokens
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, int32_t> added_by_id;  // id -> index in `added`
  StringMap added_by_content;                         // content -> id
  AddedMatcher raw_matcher, normalized_matcher;
  // Pipeline
  enum class Norm { none, nfc, nfkc } norm = Norm::none;
  std::vector<PreStep> pre;
  std::vector<PostEntry> post;  // empty: add_special_tokens adds nothing
  // Decode: id -> bytes after the ByteLevel inverse; special flags.
  std::vector<std::string> id_bytes;
  std::vector<uint8_t> id_known, id_special;
  // tokenizer_config / generation_config
  std::vector<int64_t> eos;
  std::optional<int64_t> pad, bos;
  std::string chat_template;
  int64_t n_vocab = 0;

  // Word cache: raw piece bytes -> ids; sharded locks so encode_batch threads rarely contend.
  static constexpr size_t kShards = 64, kShardCapacity = 4096, kMaxCachedLen = 128;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  mutable std::array<Shard, kShards> cache;

  void encode_into(std::string_view text, std::vector<int64_t>& out) const;
  void encode_segment(std::string_view seg, std::vector<int64_t>& out) const;  // normalised text, no added tokens
  void encode_piece(std::string_view piece, std::vector<int64_t>& out) const;
  void bpe(std::string_view piece, std::vector<int32_t>& ids) const;
  std::string normalize(std::string_view s) const;
  template <typename F>
  void split_added(std::string_view s, const AddedMatcher& m, F&& emit) const;
};

// Splits `s` by the added tokens of matcher `m` (HF AddedVocabulary::find_matches): emit(token_id or -1,
// begin, end). lstrip/rstrip widen the token over neighbouring whitespace; single_word needs word boundaries.
template <typename F>
void Tokenizer::Impl::split_added(std::string_view s, const AddedMatcher& m, F&& emit) const {
  if (m.empty()) {
    if (!s.empty()) emit(-1, 0, s.size());
    return;
  }
  size_t start_offset = 0, i = 0;
  while (i < s.size()) {
    size_t len = 0;
    const int32_t ti = m.match_at(s, i, len);
    if (ti < 0) {
      ++i;
      continue;
    }
    const AddedToken& t = added[ti];
    size_t start = i, stop = i + len;
    if (t.single_word) {
      size_t l = 0;
      const bool start_ok = start == 0 || !is_word_char(last_cp(s, start, l));
      const bool stop_ok = stop == s.size() || !is_word_char(next_cp(s, stop, l));
      if (!start_ok || !stop_ok) {
        i += len;  // HF moves on to the next non-overlapping match
        continue;
      }
    }
    if (t.lstrip) {
      size_t ns = start, l = 0;
      while (ns > 0 && is_white_space(last_cp(s, ns, l))) ns -= l;
      start = std::max(ns, start_offset);
    }
    if (t.rstrip) {
      size_t l = 0;
      while (stop < s.size() && is_white_space(next_cp(s, stop, l))) stop += l;
    }
    if (start_offset < start) emit(-1, start_offset, start);
    emit(t.id, start, stop);
    start_offset = i = stop;
  }
  if (start_offset < s.size()) emit(-1, start_offset, s.size());
}

std::string Tokenizer::Impl::normalize(std::string_view s) const {
  if (norm == Norm::none) return std::string(s);
  bool ascii = true;
  for (char c : s) ascii &= static_cast<unsigned char>(c) < 0x80;
  if (ascii) return std::string(s);
  const int opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE | (norm == Norm::nfkc ? UTF8PROC_COMPAT : 0);
  std::string out;
  out.reserve(s.size());
  // Normalise maximal valid UTF-8 runs; invalid bytes pass through untouched.
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    uint32_t cp = 0;
    size_t n = 0;
    while (j < s.size() && (n = bytes::decode_utf8(s, j, cp)) > 0) j += n;
    if (j > i) {
      utf8proc_uint8_t* dst = nullptr;
      const auto len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                    static_cast<utf8proc_ssize_t>(j - i), &dst,
                                    static_cast<utf8proc_option_t>(opts));
      if (len >= 0 && dst != nullptr) {
        out.append(reinterpret_cast<char*>(dst), static_cast<size_t>(len));
      } else {
        out.append(s.substr(i, j - i));
      }
      std::free(dst);
    }
    if (j < s.size()) out += s[j++];  // one invalid byte
    i = j;
  }
  return out;
}

// BPE merges on one pre-tokenized piece (raw bytes). Mirrors HF Word::merge_all: repeatedly merge the pair
// with the lowest rank, leftmost first.
void Tokenizer::Impl::bpe(std::string_view piece, std::vector<int32_t>& ids) const {
  ids.clear();
  if (ignore_merges) {
    std::string mapped;
    const auto& b2c = bytes::byte_to_codepoint();
    for (char c : piece) bytes::append_utf8(mapped, b2c[static_cast<unsigned char>(c)]);
    if (auto it = vocab.find(std::string_view(mapped)); it != vocab.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  for (char c : piece) {
    const int32_t id = byte_id[static_cast<unsigned char>(c)];
    if (id >= 0) ids.push_back(id);  // no unk token in byte-level files: HF drops unknown symbols
  }
  if (ids.size() < 2 || merges.empty()) return;
  auto lookup = [&](int32_t a, int32_t b) -> const std::pair<int32_t, int32_t>* {
    auto it = merges.find((static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b));
    return it == merges.end() ? nullptr : &it->second;
  };
  if (ids.size() <= 48) {
    // Short words: rescan for the best pair each round (cheaper than a heap at this size).
    while (ids.size() > 1) {
      int32_t best_rank = INT32_MAX, best_id = -1;
      size_t best_pos = 0;
      for (size_t k = 0; k + 1 < ids.size(); ++k) {
        const auto* m = lookup(ids[k], ids[k + 1]);
        if (m != nullptr && m->first < best_rank) {
          best_rank = m->first;
          best_id = m->second;
          best_pos = k;
        }
      }
      if (best_id < 0) break;
      ids[best_pos] = best_id;
      ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best_pos) + 1);
    }
    return;
  }
  // Long words: a linked list of symbols and a min-heap of (rank, position), as HF does.
  const size_t n = ids.size();
  std::vector<int32_t> prev(n), next(n);
  std::vector<uint8_t> alive(n, 1);
  for (size_t k = 0; k < n; ++k) {
    prev[k] = static_cast<int32_t>(k) - 1;
    next[k] = k + 1 < n ? static_cast<int32_t>(k + 1) : -1;
  }
  struct Cand {
    int32_t rank, pos, new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  for (size_t k = 0; k + 1 < n; ++k)
    if (const auto* m = lookup(ids[k], ids[k + 1])) heap.push({m->first, static_cast<int32_t>(k), m->second});
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    if (!alive[c.pos] || next[c.pos] < 0) continue;
    const int32_t r = next[c.pos];
    const auto* m = lookup(ids[c.pos], ids[r]);
    if (m == nullptr || m->second != c.new_id) continue;  // stale entry
    ids[c.pos] = c.new_id;
    alive[r] = 0;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    if (prev[c.pos] >= 0) {
      const int32_t p = prev[c.pos];
      if (const auto* mp = lookup(ids[p], ids[c.pos])) heap.push({mp->first, p, mp->second});
    }
    if (next[c.pos] >= 0) {
      if (const auto* mn = lookup(ids[c.pos], ids[next[c.pos]])) heap.push({mn->first, c.pos, mn->second});
    }
  }
  size_t w = 0;
  for (int32_t k = 0; k >= 0; k = next[k]) ids[w++] = ids[k];
  ids.resize(w);
}

void Tokenizer::Impl::encode_piece(std::string_view piece, std::vector<int64_t>& out) const {
  if (piece.empty()) return;
  if (piece.size() == 1) {  // single bytes are their byte token, merges or not
    const int32_t id = byte_id[static_cast<unsigned char>(piece[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  const bool cacheable = piece.size() <= kMaxCachedLen;
  Shard* shard = nullptr;
  if (cacheable) {
    shard = &cache[StringHash{}(piece) % kShards];
    std::lock_guard<std::mutex> lock(shard->mu);
    if (auto it = shard->map.find(piece); it != shard->map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  thread_local std::vector<int32_t> ids;
  bpe(piece, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(shard->mu);
    if (shard->map.size() >= kShardCapacity) shard->map.clear();
    shard->map.emplace(std::string(piece), ids);
  }
}

// Pre-tokenizes one normalised segment (no added tokens inside) and BPE-encodes each piece.
void Tokenizer::Impl::encode_segment(std::string_view seg, std::vector<int64_t>& out) const {
  // Each step refines the piece list; pieces are views into `seg` or into `owned` (after a prefix space).
  std::vector<std::string_view> pieces{seg}, next_pieces;
  std::vector<std::unique_ptr<std::string>> owned;
  for (const PreStep& step : pre) {
    next_pieces.clear();
    for (std::string_view p : pieces) {
      if (step.kind == PreStep::Kind::byte_level && step.add_prefix_space && (p.empty() || p[0] != ' ')) {
        owned.push_back(std::make_unique<std::string>(" " + std::string(p)));
        p = *owned.back();
      }
      if (step.regex) {
        step.regex->split_isolated(p, [&](size_t b, size_t e) { next_pieces.push_back(p.substr(b, e - b)); });
      } else {
        next_pieces.push_back(p);
      }
    }
    pieces.swap(next_pieces);
  }
  for (std::string_view p : pieces) encode_piece(p, out);
}

void Tokenizer::Impl::encode_into(std::string_view text, std::vector<int64_t>& out) const {
  // 1. added tokens with normalized=false are matched on the raw text.
  split_added(text, raw_matcher, [&](int32_t id, size_t b, size_t e) {
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    const std::string_view seg = text.substr(b, e - b);
    // 2. normalise, then 3. added tokens with normalized=true on the normalised text.
    if (norm == Norm::none && normalized_matcher.empty()) {
      encode_segment(seg, out);
      return;
    }
    const std::string ns = normalize(seg);
    const std::string_view nv = ns;
    split_added(nv, normalized_matcher, [&](int32_t id2, size_t b2, size_t e2) {
      if (id2 >= 0) {
        out.push_back(id2);
      } else {
        encode_segment(nv.substr(b2, e2 - b2), out);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Loading

namespace {

bool json_bool(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : def;
}

std::optional<std::string> token_string(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return std::nullopt;
}

void parse_normalizer(const json& j, Tokenizer::Impl& t, const std::string& where) {
  if (j.is_null()) return;
  const std::string type = j.value("type", "");
  if (type == "NFC") {
    t.norm = Tokenizer::Impl::Norm::nfc;
  } else if (type == "NFKC") {
    t.norm = Tokenizer::Impl::Norm::nfkc;
  } else if (type == "Sequence") {
    for (const auto& n : j.at("normalizers")) parse_normalizer(n, t, where);
  } else {
    throw Error(fmt::format("{}: unsupported normalizer type '{}' (supported: NFC, NFKC, Sequence, null)", where,
                            type));
  }
}

void parse_pre_tokenizer(const json& j, Tokenizer::Impl& t, const std::string& where) {
  if (j.is_null()) return;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    for (const auto& p : j.at("pretokenizers")) parse_pre_tokenizer(p, t, where);
  } else if (type == "Split") {
    const std::string behavior = j.value("behavior", "");
    if (behavior != "Isolated" || json_bool(j, "invert", false))
      throw Error(fmt::format("{}: unsupported Split behavior '{}' (invert={}); supported: Isolated", where, behavior,
                              json_bool(j, "invert", false)));
    const json& pat = j.at("pattern");
    std::string re;
    if (pat.contains("Regex")) {
      re = pat["Regex"].get<std::string>();
    } else if (pat.contains("String")) {
      re = regex_quote(pat["String"].get<std::string>());
    } else {
      throw Error(fmt::format("{}: Split pattern has neither Regex nor String", where));
    }
    PreStep s;
    s.kind = PreStep::Kind::split_regex;
    s.regex = std::make_shared<Regex>(re, where);
    t.pre.push_back(std::move(s));
  } else if (type == "ByteLevel") {
    PreStep s;
    s.kind = PreStep::Kind::byte_level;
    s.add_prefix_space = json_bool(j, "add_prefix_space", false);
    if (json_bool(j, "use_regex", true)) s.regex = std::make_shared<Regex>(kGpt2Regex, where);
    t.pre.push_back(std::move(s));
  } else {
    throw Error(fmt::format("{}: unsupported pre_tokenizer type '{}' (supported: Split, ByteLevel, Sequence)",
                            where, type));
  }
}

void parse_post_processor(const json& j, Tokenizer::Impl& t, const std::string& where) {
  if (j.is_null()) return;
  const std::string type = j.value("type", "");
  if (type == "ByteLevel") return;  // offsets only
  if (type == "Sequence") {
    for (const auto& p : j.at("processors")) parse_post_processor(p, t, where);
    return;
  }
  if (type == "TemplateProcessing") {
    t.post.clear();
    for (const auto& e : j.at("single")) {
      PostEntry pe;
      if (e.contains("Sequence")) {
        pe.is_sequence = true;
      } else if (e.contains("SpecialToken")) {
        const std::string name = e["SpecialToken"].at("id").get<std::string>();
        const json& sp = j.at("special_tokens").at(name);
        for (const auto& id : sp.at("ids")) pe.ids.push_back(id.get<int32_t>());
      } else {
        throw Error(fmt::format("{}: TemplateProcessing entry {} not understood", where, e.dump()));
      }
      t.post.push_back(std::move(pe));
    }
    return;
  }
  throw Error(fmt::format("{}: unsupported post_processor type '{}' (supported: TemplateProcessing, ByteLevel, "
                          "Sequence, null)",
                          where, type));
}

bool has_byte_level(const json& j) {
  if (j.is_null()) return false;
  if (j.value("type", "") == "ByteLevel") return true;
  for (const char* k : {"pretokenizers", "decoders"})
    if (j.contains(k))
      for (const auto& p : j[k])
        if (has_byte_level(p)) return true;
  return false;
}

void load_model(const json& m, Tokenizer::Impl& t, const std::string& where) {
  const std::string type = m.value("type", "BPE");
  RLVR_CHECK(type == "BPE", "{}: unsupported model type '{}' (only byte-level BPE)", where, type);
  RLVR_CHECK(!json_bool(m, "byte_fallback", false), "{}: byte_fallback BPE is not supported", where);
  RLVR_CHECK(!m.contains("dropout") || m["dropout"].is_null() || m["dropout"].get<double>() == 0.0,
             "{}: BPE dropout is not supported", where);
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const bool empty = !m.contains(k) || m[k].is_null() || m[k].get<std::string>().empty();
    RLVR_CHECK(empty, "{}: BPE {} is not supported", where, k);
  }
  t.ignore_merges = json_bool(m, "ignore_merges", false);
  const json& vocab = m.at("vocab");
  RLVR_CHECK(vocab.is_object(), "{}: model.vocab is not an object", where);
  t.vocab.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int64_t id = it.value().get<int64_t>();
    RLVR_CHECK(id >= 0 && id < (1LL << 30), "{}: vocab id {} for '{}' out of range", where, id, it.key());
    if (static_cast<size_t>(id) >= t.vocab_r.size()) t.vocab_r.resize(id + 1);
    t.vocab_r[id] = it.key();
    t.vocab.emplace(it.key(), static_cast<int32_t>(id));
  }
  const auto& b2c = bytes::byte_to_codepoint();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    bytes::append_utf8(s, b2c[b]);
    auto it = t.vocab.find(s);
    t.byte_id[b] = it == t.vocab.end() ? -1 : it->second;
  }
  const json& merges = m.at("merges");
  t.merges.reserve(merges.size());
  int32_t rank = 0;
  for (const auto& mj : merges) {
    std::string a, b;
    if (mj.is_string()) {
      const std::string s = mj.get<std::string>();
      const size_t sp = s.find(' ');
      RLVR_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos,
                 "{}: merge {} '{}' is not 'a b'", where, rank, s);
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else {
      RLVR_CHECK(mj.is_array() && mj.size() == 2, "{}: merge {} is not a pair: {}", where, rank, mj.dump());
      a = mj[0].get<std::string>();
      b = mj[1].get<std::string>();
    }
    const auto ia = t.vocab.find(a), ib = t.vocab.find(b), iab = t.vocab.find(a + b);
    RLVR_CHECK(ia != t.vocab.end() && ib != t.vocab.end() && iab != t.vocab.end(),
               "{}: merge {} ('{}', '{}') uses a token missing from the vocab", where, rank, a, b);
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(ia->second)) << 32) |
                         static_cast<uint32_t>(ib->second);
    t.merges.emplace(key, std::make_pair(rank, iab->second));  // first (lowest rank) wins, as in HF
    ++rank;
  }
}

void load_config(const fs::path& dir, Tokenizer::Impl& t, const Tokenizer& tok) {
  const fs::path cfg = dir / "tokenizer_config.json";
  if (fs::exists(cfg)) {
    json c;
    try {
      c = json::parse(read_file(cfg));
    } catch (const json::exception& e) {
      throw Error(fmt::format("{}: not valid JSON: {}", cfg.string(), e.what()));
    }
    auto id_of = [&](const char* key) -> std::optional<int64_t> {
      if (!c.contains(key)) return std::nullopt;
      auto s = token_string(c[key]);
      if (!s) return std::nullopt;
      return tok.token_to_id(*s);
    };
    if (auto e = id_of("eos_token")) t.eos.push_back(*e);
    t.pad = id_of("pad_token");
    t.bos = id_of("bos_token");
    if (c.contains("chat_template") && c["chat_template"].is_string()) t.chat_template = c["chat_template"];
  }
  const fs::path gen = dir / "generation_config.json";
  if (fs::exists(gen)) {
    try {
      const json g = json::parse(read_file(gen));
      std::vector<int64_t> ids;
      if (g.contains("eos_token_id")) {
        if (g["eos_token_id"].is_number_integer()) ids.push_back(g["eos_token_id"].get<int64_t>());
        if (g["eos_token_id"].is_array())
          for (const auto& v : g["eos_token_id"]) ids.push_back(v.get<int64_t>());
      }
      for (int64_t id : ids)
        if (std::find(t.eos.begin(), t.eos.end(), id) == t.eos.end()) t.eos.push_back(id);
    } catch (const json::exception& e) {
      throw Error(fmt::format("{}: not valid: {}", gen.string(), e.what()));
    }
  }
}

}  // namespace

Tokenizer Tokenizer::from_file(const fs::path& path) {
  fs::path file = path;
  if (fs::is_directory(path)) file = path / "tokenizer.json";
  RLVR_CHECK(fs::exists(file), "tokenizer file '{}' does not exist", file.string());
  const std::string where = file.string();
  json j;
  try {
    j = json::parse(read_file(file));
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", where, e.what()));
  }
  auto impl = std::make_shared<Impl>();
  Impl& t = *impl;
  t.file = file;
  try {
    RLVR_CHECK(j.is_object() && j.contains("model"), "{}: no 'model' section", where);
    load_model(j.at("model"), t, where);
    RLVR_CHECK(has_byte_level(j.value("pre_tokenizer", json())) || has_byte_level(j.value("decoder", json())),
               "{}: only byte-level BPE tokenizers are supported (no ByteLevel pre_tokenizer or decoder)", where);
    parse_normalizer(j.value("normalizer", json()), t, where);
    parse_pre_tokenizer(j.value("pre_tokenizer", json()), t, where);
    parse_post_processor(j.value("post_processor", json()), t, where);
    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
      for (const auto& a : j["added_tokens"]) {
        AddedToken at;
        at.id = a.at("id").get<int32_t>();
        at.content = a.at("content").get<std::string>();
        at.special = json_bool(a, "special", false);
        at.normalized = json_bool(a, "normalized", !at.special);
        at.lstrip = json_bool(a, "lstrip", false);
        at.rstrip = json_bool(a, "rstrip", false);
        at.single_word = json_bool(a, "single_word", false);
        RLVR_CHECK(at.id >= 0, "{}: added token '{}' has negative id {}", where, at.content, at.id);
        const auto idx = static_cast<int32_t>(t.added.size());
        t.added_by_id[at.id] = idx;
        t.added_by_content[at.content] = at.id;
        // Normalised tokens are matched after normalisation (HF normalises the token content too).
        if (at.normalized) {
          t.normalized_matcher.add(t.norm == Impl::Norm::none ? at.content : t.normalize(at.content), idx);
        } else {
          t.raw_matcher.add(at.content, idx);
        }
        t.added.push_back(std::move(at));
      }
    }
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: malformed tokenizer.json: {}", where, e.what()));
  }
  // Id tables for decode.
  int64_t n = static_cast<int64_t>(t.vocab_r.size());
  for (const auto& a : t.added) n = std::max<int64_t>(n, a.id + 1);
  t.n_vocab = n;
  t.id_bytes.assign(n, {});
  t.id_known.assign(n, 0);
  t.id_special.assign(n, 0);
  auto to_bytes = [](const std::string& tok) {
    // ByteLevel inverse: every char must be in the alphabet, else the token's own UTF-8 is used (HF).
    std::string out;
    size_t i = 0;
    while (i < tok.size()) {
      uint32_t cp = 0;
      const size_t len = bytes::decode_utf8(tok, i, cp);
      const int b = len ? bytes::byte_of_codepoint(cp) : -1;
      if (b < 0) return tok;
      out += static_cast<char>(b);
      i += len;
    }
    return out;
  };
  for (size_t id = 0; id < t.vocab_r.size(); ++id) {
    if (t.vocab_r[id].empty()) continue;
    t.id_bytes[id] = to_bytes(t.vocab_r[id]);
    t.id_known[id] = 1;
  }
  for (const auto& a : t.added) {
    t.id_bytes[a.id] = to_bytes(a.content);
    t.id_known[a.id] = 1;
    t.id_special[a.id] = a.special;
  }
  Tokenizer tok(impl);
  load_config(file.parent_path(), t, tok);
  return tok;
}

// ---------------------------------------------------------------------------------------------------------
// Public API

std::vector<int64_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int64_t> out;
  out.reserve(text.size() / 3 + 4);
  if (!add_special_tokens || impl_->post.empty()) {
    impl_->encode_into(text, out);
    return out;
  }
  for (const PostEntry& e : impl_->post) {
    if (e.is_sequence) {
      impl_->encode_into(text, out);
    } else {
      out.insert(out.end(), e.ids.begin(), e.ids.end());
    }
  }
  return out;
}

std::vector<std::vector<int64_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                                          bool add_special_tokens, int num_threads) const {
  std::vector<std::vector<int64_t>> out(texts.size());
  int n = num_threads > 0 ? num_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n = std::min<int>(n, static_cast<int>(texts.size()));
  if (n <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], add_special_tokens);
    return out;
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < texts.size();) out[i] = encode(texts[i], add_special_tokens);
  };
  std::vector<std::thread> pool;
  for (int k = 0; k < n; ++k) pool.emplace_back(work);
  for (auto& th : pool) th.join();
  return out;
}

std::string Tokenizer::decode(std::span<const int64_t> ids, bool skip_special) const {
  const Impl& t = *impl_;
  std::string raw;
  raw.reserve(ids.size() * 4);
  for (int64_t id : ids) {
    if (id < 0 || id >= t.n_vocab || !t.id_known[id]) continue;
    if (skip_special && t.id_special[id]) continue;
    raw += t.id_bytes[id];
  }
  return bytes::utf8_lossy(raw);
}

int64_t Tokenizer::vocab_size() const { return impl_->n_vocab; }

std::optional<int64_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) return it->second;
  if (auto it = impl_->vocab.find(token); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(int64_t id) const {
  if (auto it = impl_->added_by_id.find(static_cast<int32_t>(id)); id >= 0 && it != impl_->added_by_id.end())
    return impl_->added[it->second].content;
  if (id >= 0 && static_cast<size_t>(id) < impl_->vocab_r.size()) return impl_->vocab_r[id];
  return "";
}

bool Tokenizer::is_special(int64_t id) const {
  return id >= 0 && id < impl_->n_vocab && impl_->id_special[id];
}

std::vector<int64_t> Tokenizer::eos_ids() const { return impl_->eos; }
std::optional<int64_t> Tokenizer::pad_id() const { return impl_->pad; }
std::optional<int64_t> Tokenizer::bos_id() const { return impl_->bos; }
const std::string& Tokenizer::chat_template_source() const { return impl_->chat_template; }

}  // namespace rlvr::model
