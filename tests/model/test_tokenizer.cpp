// Tokenizer tests: hand-built toy tokenizer.json files (merge order, added-token splitting, invalid bytes),
// the built-in byte-level writer, and parity with HF tokenizers 0.23.2 on the real Qwen3 / Llama 3 files
// (golden ids from tests/reference/make_tokenizer.py).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "model/tokenizer.h"
#include "model/tokenizer_bytes.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using rlvr::model::Tokenizer;
using Ids = std::vector<int64_t>;

namespace {

const fs::path kFixtures = fs::path(RLVR_BINARY_DIR) / "fixtures" / "tokenizer";
const fs::path kTokenizers = fs::path(RLVR_SHARED_DATA) / "tokenizers";
const char* kMakeCmd = "python tests/reference/make_tokenizer.py --out <build>/fixtures (scripts/test.sh does it)";

fs::path temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / fmt::format("rlvr_tok_{}_{}", name, ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A toy byte-level BPE file: the byte tokens for `chars` (ASCII) plus `extra` vocab entries and merges.
std::string byte_char(unsigned char b) {
  std::string s;
  rlvr::model::bytes::append_utf8(s, rlvr::model::bytes::byte_to_codepoint()[b]);
  return s;
}

Tokenizer toy(const json& merges, const std::vector<std::string>& extra, const json& added = json::array(),
              const json& normalizer = nullptr) {
  json vocab = json::object();
  int id = 0;
  for (unsigned char c : std::string("abcxyz <>[]LR"))
    vocab[byte_char(c)] = id++;
  for (const auto& e : extra) vocab[e] = id++;
  json j = {{"version", "1.0"},
            {"added_tokens", added},
            {"normalizer", normalizer},
            {"pre_tokenizer",
             {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"}, {"pattern", {{"Regex", " ?[a-z]+| ?[^a-z ]+|\\s+"}}}, {"behavior", "Isolated"},
                 {"invert", false}},
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  auto dir = temp_dir("toy");
  rlvr::write_file_atomic(dir / "tokenizer.json", j.dump());
  auto t = Tokenizer::from_file(dir);
  fs::remove_all(dir);
  return t;
}

Ids ids_of(const Tokenizer& t, const std::vector<std::string>& toks) {
  Ids out;
  for (const auto& s : toks) {
    auto id = t.token_to_id(s);
    REQUIRE(id.has_value());
    out.push_back(*id);
  }
  return out;
}

std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> out;
  rlvr::for_each_line(p, [&](std::string_view line, size_t) { out.push_back(json::parse(line)); });
  return out;
}

bool have_real(const std::string& name) {
  if (!fs::exists(kTokenizers / name / "tokenizer.json")) {
    WARN("SKIPPED: " << (kTokenizers / name).string() << " is absent (real-tokenizer test needs /work/shared/data)");
    return false;
  }
  return true;
}

Ids as_ids(const json& j) { return j.get<Ids>(); }

}  // namespace

TEST_CASE("BPE applies merges by rank, lowest first, leftmost on ties", "[tokenizer]") {
  const std::string sp = byte_char(' ');
  // Rank order decides: "b c" before "a b" gives a|bc -> abc through "a bc".
  auto t1 = toy(json::array({"b c", "a b", "a bc", "ab c"}), {"bc", "ab", "abc"});
  CHECK(t1.encode("abc") == ids_of(t1, {"abc"}));
  CHECK(t1.encode("ab") == ids_of(t1, {"ab"}));
  // Same merges in the [a, b] pair format give the same result.
  auto t2 = toy(json::array({json::array({"b", "c"}), json::array({"a", "b"}), json::array({"a", "bc"})}),
                {"bc", "ab", "abc"});
  CHECK(t2.encode("abc") == ids_of(t2, {"abc"}));
  // "a b" first: ab|c, and no "ab c" merge means it stops there.
  auto t3 = toy(json::array({"a b", "b c", "a bc"}), {"ab", "bc", "abc"});
  CHECK(t3.encode("abc") == ids_of(t3, {"ab", "c"}));
  // Ties go to the leftmost pair: "aaa" with "a a" -> aa|a.
  auto t4 = toy(json::array({"a a"}), {"aa"});
  CHECK(t4.encode("aaa") == ids_of(t4, {"aa", "a"}));
  CHECK(t4.encode("aaaa") == ids_of(t4, {"aa", "aa"}));
  // The long-word path (heap) agrees with the short-word path: 61 symbols.
  std::string long_a(61, 'a');
  Ids expect;
  for (int i = 0; i < 30; ++i) expect.push_back(*t4.token_to_id("aa"));
  expect.push_back(*t4.token_to_id("a"));
  CHECK(t4.encode(long_a) == expect);
  // Hand-derived on the long path with two ranks: "abab..." (80 symbols) with "a b" then "ab ab".
  auto t5 = toy(json::array({"a b", "ab ab"}), {"ab", "abab"});
  std::string abab;
  for (int i = 0; i < 40; ++i) abab += "ab";
  Ids e5(20, *t5.token_to_id("abab"));
  CHECK(t5.encode(abab) == e5);
  // Pre-tokenizer pieces are merged separately: " ab" is its own piece.
  CHECK(t3.encode("ab ab") == Ids{*t3.token_to_id("ab"), *t3.token_to_id(sp), *t3.token_to_id("ab")});
  CHECK(t3.decode(t3.encode("ab abc  x")) == "ab abc  x");
}

TEST_CASE("merges in the wrong format or with unknown tokens are errors naming the file", "[tokenizer]") {
  CHECK_THROWS_WITH(toy(json::array({"a b c"}), {}), Catch::Contains("tokenizer.json") && Catch::Contains("merge 0"));
  CHECK_THROWS_WITH(toy(json::array({"a q"}), {}), Catch::Contains("missing from the vocab"));
}

TEST_CASE("added tokens are split out first, longest match, with lstrip/rstrip", "[tokenizer]") {
  auto tok = [](int id, const char* s, bool special, bool lstrip = false, bool rstrip = false) {
    return json{{"id", id},         {"content", s},       {"single_word", false}, {"lstrip", lstrip},
                {"rstrip", rstrip}, {"normalized", false}, {"special", special}};
  };
  json added = json::array({tok(100, "<x>", true), tok(101, "<xy>", true), tok(102, "[L]", false, true, false),
                            tok(103, "[R]", false, false, true)});
  auto t = toy(json::array(), {}, added);
  auto b = [&](char c) { return *t.token_to_id(byte_char(static_cast<unsigned char>(c))); };
  CHECK(t.encode("a<xy>b") == Ids{b('a'), 101, b('b')});
  CHECK(t.encode("<x><xy><x") == Ids{100, 101, b('<'), b('x')});
  // lstrip eats the spaces before, rstrip the spaces after.
  CHECK(t.encode("a   [L]b") == Ids{b('a'), 102, b('b')});
  CHECK(t.encode("a[R]   b") == Ids{b('a'), 103, b('b')});
  // Specials are found inside words and adjacent to each other.
  CHECK(t.encode("ab<x>c") == Ids{b('a'), b('b'), 100, b('c')});
  // Decode: tokens appear verbatim; skip_special drops special ones only.
  const Ids ids = t.encode("a<x>[L]b");
  CHECK(t.decode(ids) == "a<x>[L]b");
  CHECK(t.decode(ids, true) == "a[L]b");
  CHECK(t.is_special(100));
  CHECK_FALSE(t.is_special(102));
  CHECK(t.id_to_token(101) == "<xy>");
  CHECK(t.vocab_size() == 104);
}

TEST_CASE("NFC normaliser composes text but not added tokens", "[tokenizer]") {
  json added = json::array({json{{"id", 100}, {"content", "<x>"}, {"normalized", false}, {"special", true}}});
  const std::vector<std::string> extra = {byte_char('e'), byte_char(0xC3), byte_char(0xA9), byte_char(0xCC),
                                          byte_char(0x81)};
  auto nfc = toy(json::array(), extra, added, json{{"type", "NFC"}});
  auto raw = toy(json::array(), extra, added);
  auto b = [&](const Tokenizer& t, unsigned char c) { return *t.token_to_id(byte_char(c)); };
  // e + U+0301 (65 CC 81) -> U+00E9 (C3 A9) under NFC; untouched without a normaliser.
  CHECK(nfc.encode("e\xCC\x81<x>") == Ids{b(nfc, 0xC3), b(nfc, 0xA9), 100});
  CHECK(raw.encode("e\xCC\x81<x>") == Ids{b(raw, 'e'), b(raw, 0xCC), b(raw, 0x81), 100});
  // Invalid bytes next to decomposed text: the valid run is composed, the bad byte kept.
  CHECK(nfc.encode("e\xCC\x81\xFF").size() == 2);  // C3 A9; 0xFF has no token in this toy vocab
}

TEST_CASE("invalid UTF-8 input never throws: bytes are encoded as byte tokens", "[tokenizer]") {
  auto dir = temp_dir("bl");
  Tokenizer::write_byte_level(dir);
  auto t = Tokenizer::from_file(dir);
  const std::string bad = "\xFF\xFE" "ab\xE4\xB8 \xC0\xAF" "c<|im_end|>\xF0\x9F\x98";
  const Ids ids = t.encode(bad);
  CHECK(ids == Ids{0xFF, 0xFE, 'a', 'b', 0xE4, 0xB8, ' ', 0xC0, 0xAF, 'c', 258, 0xF0, 0x9F, 0x98});
  // Each maximal invalid subsequence decodes to one U+FFFD (E4 B8 is one truncated sequence; C0 and AF are two).
  CHECK(t.decode(ids) ==
        "\xEF\xBF\xBD\xEF\xBF\xBD" "ab\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD" "c<|im_end|>\xEF\xBF\xBD");
  CHECK(t.decode(ids, true) ==
        "\xEF\xBF\xBD\xEF\xBF\xBD" "ab\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD" "c\xEF\xBF\xBD");
  // Unknown and negative ids are skipped (the model's vocab is padded past the tokenizer's).
  CHECK(t.decode(Ids{'h', 999999, -1, 'i', 259}) == "hi");
  if (have_real("qwen3")) {
    auto q = Tokenizer::from_file(kTokenizers / "qwen3");
    for (const std::string& s : {bad, std::string("\x80"), std::string("caf\xC3"), std::string("\xED\xA0\x80x")}) {
      const Ids qi = q.encode(s);
      CHECK(q.decode(qi) == rlvr::model::bytes::utf8_lossy(s));
    }
    // NFC applies to the valid runs around an invalid byte: e + U+0301 -> U+00E9; the lone U+0301 stays.
    CHECK(q.decode(q.encode("e\xCC\x81\xFF\xCC\x81")) == "\xC3\xA9\xEF\xBF\xBD\xCC\x81");
  }
  fs::remove_all(dir);
}

TEST_CASE("write_byte_level writes the documented files and HF reads the same JSON", "[tokenizer]") {
  auto dir = temp_dir("bl2");
  Tokenizer::write_byte_level(dir);
  auto t = Tokenizer::from_file(dir / "tokenizer.json");
  CHECK(t.vocab_size() == 259);
  CHECK(t.eos_ids() == Ids{258});
  CHECK(t.pad_id() == std::optional<int64_t>(256));
  CHECK_FALSE(t.bos_id().has_value());
  CHECK(t.token_to_id("<|im_start|>") == std::optional<int64_t>(257));
  CHECK(t.encode("hi <|im_start|>") == Ids{'h', 'i', ' ', 257});
  CHECK(t.encode("é") == Ids{0xC3, 0xA9});
  CHECK_FALSE(t.chat_template_source().empty());
  CHECK_THROWS_AS(Tokenizer::write_byte_level(dir, {"<a>"}, "<b>", ""), rlvr::ConfigError);
  if (fs::exists(kFixtures / "bytelevel" / "tokenizer.json")) {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
      INFO(f);
      CHECK(json::parse(rlvr::read_file(dir / f)) == json::parse(rlvr::read_file(kFixtures / "bytelevel" / f)));
    }
  } else if (fs::exists(kTokenizers)) {
    FAIL("fixtures missing: " << kFixtures.string() << "; run " << kMakeCmd);
  }
  fs::remove_all(dir);
}

TEST_CASE("missing or corrupt tokenizer files are errors naming the file", "[tokenizer]") {
  auto dir = temp_dir("bad");
  CHECK_THROWS_WITH(Tokenizer::from_file(dir), Catch::Contains((dir / "tokenizer.json").string()));
  rlvr::write_file_atomic(dir / "tokenizer.json", "{\"model\": {\"vocab\": ");
  CHECK_THROWS_WITH(Tokenizer::from_file(dir), Catch::Contains("tokenizer.json") && Catch::Contains("JSON"));
  rlvr::write_file_atomic(dir / "tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  CHECK_THROWS_WITH(Tokenizer::from_file(dir), Catch::Contains("Unigram"));
  Tokenizer::write_byte_level(dir);
  rlvr::write_file_atomic(dir / "tokenizer_config.json", "{oops");
  CHECK_THROWS_WITH(Tokenizer::from_file(dir), Catch::Contains("tokenizer_config.json"));
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------------------
// Parity with HF tokenizers on the real files.

namespace {

void check_encode_parity(const std::string& name, const fs::path& dir) {
  const fs::path golden = kFixtures / ("encode_" + name + ".jsonl");
  if (!fs::exists(golden)) FAIL("fixture missing: " << golden.string() << "; run " << kMakeCmd);
  auto t = Tokenizer::from_file(dir);
  const auto recs = read_jsonl(golden);
  REQUIRE(recs.size() > 3000);
  size_t bad = 0, bad_special = 0, bad_decode = 0, bad_roundtrip = 0;
  std::vector<std::string> texts;
  for (const auto& r : recs) {
    const std::string text = r["text"];
    texts.push_back(text);
    const Ids ids = t.encode(text);
    if (ids != as_ids(r["ids"]) && bad++ < 5) {
      UNSCOPED_INFO(name << " mismatch on " << json(text).dump() << "\n ours " << json(ids).dump() << "\n   hf "
                         << r["ids"].dump());
    }
    bad_special += t.encode(text, true) != as_ids(r["ids_special"]);
    bad_decode += t.decode(as_ids(r["ids"])) != r["decoded"].get<std::string>();
    bad_roundtrip += t.decode(ids) != r["nfc"].get<std::string>();
  }
  CHECK(bad == 0);
  CHECK(bad_special == 0);
  CHECK(bad_decode == 0);
  CHECK(bad_roundtrip == 0);
  // encode_batch returns the same ids in the same order.
  const auto batch = t.encode_batch(texts, false, 2);
  size_t bad_batch = 0;
  for (size_t i = 0; i < recs.size(); ++i) bad_batch += batch[i] != as_ids(recs[i]["ids"]);
  CHECK(bad_batch == 0);

  const fs::path dgold = kFixtures / ("decode_" + name + ".jsonl");
  REQUIRE(fs::exists(dgold));
  size_t bad_dec = 0, bad_skip = 0, n = 0;
  for (const auto& r : read_jsonl(dgold)) {
    const Ids ids = as_ids(r["ids"]);
    ++n;
    if (t.decode(ids) != r["text"].get<std::string>() && bad_dec++ < 5)
      UNSCOPED_INFO(name << " decode mismatch on " << r["ids"].dump() << "\n ours " << json(t.decode(ids)).dump()
                         << "\n   hf " << r["text"].dump());
    bad_skip += t.decode(ids, true) != r["text_skip"].get<std::string>();
  }
  CHECK(n > 300);
  CHECK(bad_dec == 0);
  CHECK(bad_skip == 0);
}

}  // namespace

TEST_CASE("Qwen3 tokenizer matches HF tokenizers on the tricky corpus and MATH/GSM8K", "[tokenizer]") {
  if (!have_real("qwen3")) return;
  check_encode_parity("qwen3", kTokenizers / "qwen3");
  auto t = Tokenizer::from_file(kTokenizers / "qwen3");
  CHECK(t.vocab_size() == 151669);
  CHECK(t.eos_ids() == Ids{151645});
  CHECK(t.pad_id() == std::optional<int64_t>(151643));
  CHECK_FALSE(t.bos_id().has_value());
}

TEST_CASE("Llama 3 tokenizer matches HF tokenizers on the tricky corpus and MATH/GSM8K", "[tokenizer]") {
  if (!have_real("llama3")) return;
  check_encode_parity("llama3", kTokenizers / "llama3");
  auto t = Tokenizer::from_file(kTokenizers / "llama3" / "tokenizer.json");
  CHECK(t.vocab_size() == 128256);
  CHECK(t.eos_ids() == Ids{128001});
  CHECK(t.bos_id() == std::optional<int64_t>(128000));
}

TEST_CASE("built-in byte-level tokenizer matches HF tokenizers and AutoTokenizer", "[tokenizer]") {
  if (!fs::exists(kFixtures / "bytelevel")) {
    if (fs::exists(kTokenizers)) FAIL("fixtures missing: " << kFixtures.string() << "; run " << kMakeCmd);
    WARN("SKIPPED: no fixtures and no shared data");
    return;
  }
  auto dir = temp_dir("bl3");
  Tokenizer::write_byte_level(dir);  // ours, not the Python copy: the test is that ours matches HF's ids
  check_encode_parity("bytelevel", dir);
  fs::remove_all(dir);
}

TEST_CASE("random bytes and huge inputs never throw and Llama 3 round-trips them through decode", "[tokenizer]") {
  if (!have_real("llama3") || !have_real("qwen3")) return;
  auto l = Tokenizer::from_file(kTokenizers / "llama3");
  auto q = Tokenizer::from_file(kTokenizers / "qwen3");
  // Bytes biased towards UTF-8 lead/continuation bytes, whitespace and special-token fragments.
  const std::vector<std::string> atoms = {"a", "Z", "7", " ", "\n", "\r", "\t", "'s", "\xC3", "\xA9", "\xE4\xB8",
                                          "\xAD", "\xF0\x9F", "\x98\x80", "\xFF", "\xCC\x81", "\xC2\x85", "<|",
                                          "|>", "<|eot_id|>", "<|im_end|>", "\xE3\x80\x80", "\\frac", "{", "}"};
  uint64_t state = 12345;
  auto rnd = [&](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  size_t bad_roundtrip = 0;
  for (int k = 0; k < 2000; ++k) {
    std::string s;
    const auto len = rnd(40);
    for (uint64_t i = 0; i < len; ++i) s += atoms[rnd(atoms.size())];
    Ids li, qi;
    REQUIRE_NOTHROW(li = l.encode(s, true));
    REQUIRE_NOTHROW(qi = q.encode(s, true));
    // No normaliser in Llama 3: decode(encode(x)) is x with invalid bytes replaced.
    bad_roundtrip += l.decode(li) != rlvr::model::bytes::utf8_lossy(s);
    REQUIRE_NOTHROW(q.decode(qi, true));
  }
  CHECK(bad_roundtrip == 0);
  // One huge word, a huge run of spaces, and a huge digit string (long-word BPE path, regex backtracking).
  for (const std::string& s : {std::string(200000, 'a'), std::string(200000, ' '), std::string(100000, '7'),
                               std::string(50000, '\xFF')}) {
    Ids qi, li;
    REQUIRE_NOTHROW(qi = q.encode(s));
    REQUIRE_NOTHROW(li = l.encode(s));
    CHECK(l.decode(li) == rlvr::model::bytes::utf8_lossy(s));
    CHECK(q.decode(qi) == rlvr::model::bytes::utf8_lossy(s));
  }
}
