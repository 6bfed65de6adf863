// Tokenizer::write_byte_level: the built-in tokenizer for the small built-in model, written as HF files
// (tokenizer.json + tokenizer_config.json) so HF tokenizers / transformers load the same thing we do.
// tests/reference/make_tokenizer.py writes the identical JSON independently; the tests compare the two.
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "model/tokenizer.h"
#include "model/tokenizer_bytes.h"

namespace rlvr::model {

namespace {

// ChatML as a jinja template (the same text our "chatml" template renders).
constexpr const char* kChatmlJinja =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

}  // namespace

void Tokenizer::write_byte_level(const std::filesystem::path& dir, const std::vector<std::string>& special_tokens,
                                 const std::string& eos_token, const std::string& pad_token) {
  using ojson = nlohmann::ordered_json;
  auto has = [&](const std::string& s) {
    return std::find(special_tokens.begin(), special_tokens.end(), s) != special_tokens.end();
  };
  for (size_t i = 0; i < special_tokens.size(); ++i) {
    RLVR_CONFIG_CHECK(!special_tokens[i].empty(), "special token {} is empty", i);
    for (size_t k = 0; k < i; ++k)
      RLVR_CONFIG_CHECK(special_tokens[k] != special_tokens[i], "special token '{}' listed twice", special_tokens[i]);
  }
  RLVR_CONFIG_CHECK(eos_token.empty() || has(eos_token), "eos_token '{}' is not among the special tokens",
                    eos_token);
  RLVR_CONFIG_CHECK(pad_token.empty() || has(pad_token), "pad_token '{}' is not among the special tokens",
                    pad_token);

  ojson vocab = ojson::object();
  const auto& b2c = bytes::byte_to_codepoint();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    bytes::append_utf8(s, b2c[b]);
    vocab[s] = b;
  }
  ojson added = ojson::array();
  ojson added_decoder = ojson::object();
  for (size_t i = 0; i < special_tokens.size(); ++i) {
    const int id = 256 + static_cast<int>(i);
    added.push_back({{"id", id},
                     {"content", special_tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
    added_decoder[std::to_string(id)] = {{"content", special_tokens[i]}, {"lstrip", false}, {"normalized", false},
                                         {"rstrip", false},           {"single_word", false}, {"special", true}};
  }
  auto byte_level = [](bool trim_offsets, bool use_regex) {
    return ojson{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", trim_offsets},
                 {"use_regex", use_regex}};
  };
  ojson tok = {{"version", "1.0"},
               {"truncation", nullptr},
               {"padding", nullptr},
               {"added_tokens", added},
               {"normalizer", nullptr},
               {"pre_tokenizer", byte_level(true, true)},
               {"post_processor", byte_level(false, false)},
               {"decoder", byte_level(true, true)},
               {"model",
                {{"type", "BPE"},
                 {"dropout", nullptr},
                 {"unk_token", nullptr},
                 {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr},
                 {"fuse_unk", false},
                 {"byte_fallback", false},
                 {"ignore_merges", false},
                 {"vocab", vocab},
                 {"merges", ojson::array()}}}};

  auto tok_or_null = [](const std::string& s) { return s.empty() ? ojson(nullptr) : ojson(s); };
  ojson cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
               {"added_tokens_decoder", added_decoder},
               {"bos_token", nullptr},
               {"eos_token", tok_or_null(eos_token)},
               {"pad_token", tok_or_null(pad_token)},
               {"unk_token", nullptr},
               {"add_bos_token", false},
               {"add_eos_token", false},
               {"clean_up_tokenization_spaces", false},
               {"model_max_length", 1048576}};
  if (has("<|im_start|>") && has("<|im_end|>")) cfg["chat_template"] = kChatmlJinja;

  write_file_atomic(dir / "tokenizer.json", tok.dump(2) + "\n");
  write_file_atomic(dir / "tokenizer_config.json", cfg.dump(2) + "\n");
}

}  // namespace rlvr::model
