// Tokenizer: HF `tokenizer.json` byte-level BPE (Qwen2/Qwen3, Llama 3, GPT-2 style files) with added/special
// tokens, the NFC normaliser, Split-regex pre-tokenizers (PCRE2, JIT), merges by rank, and decode.
// It does not do SentencePiece/Unigram/WordPiece models, byte_fallback, BPE dropout, truncation or padding.
// No LibTorch here: ids are plain int64_t so the data pipeline can tokenize without a GPU build.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rlvr::model {

class Tokenizer {
 public:
  // `path` is a tokenizer.json file or a directory holding one. tokenizer_config.json (and
  // generation_config.json for extra EOS ids) are read from the same directory when present.
  // Missing or corrupt files, or unsupported components, throw rlvr::Error naming the file.
  static Tokenizer from_file(const std::filesystem::path& path);

  // Writes tokenizer.json + tokenizer_config.json for the built-in byte-level tokenizer: ids 0..255 are the
  // 256 bytes (GPT-2 byte->unicode alphabet), no merges, then `special_tokens` as added special tokens
  // (ids 256, 257, ...). HF `tokenizers` and `transformers.AutoTokenizer` load the directory and produce the
  // same ids. eos/pad must be among special_tokens (empty string: none). The config carries a ChatML template.
  static void write_byte_level(const std::filesystem::path& dir,
                               const std::vector<std::string>& special_tokens = {"<|endoftext|>", "<|im_start|>",
                                                                                 "<|im_end|>"},
                               const std::string& eos_token = "<|im_end|>",
                               const std::string& pad_token = "<|endoftext|>");

  // Text -> ids, as HF `tokenizers` Tokenizer.encode(text, add_special_tokens). add_special_tokens applies the
  // file's post_processor (TemplateProcessing: e.g. a BOS); ByteLevel/absent post-processors add nothing.
  // Never throws on any input: invalid UTF-8 bytes are not normalised and are encoded as their byte tokens.
  // Thread-safe (the word cache is internally locked).
  std::vector<int64_t> encode(std::string_view text, bool add_special_tokens = false) const;

  // encode() over many texts on `num_threads` threads (0: hardware concurrency); order is preserved.
  std::vector<std::vector<int64_t>> encode_batch(const std::vector<std::string>& texts,
                                                 bool add_special_tokens = false, int num_threads = 0) const;

  // Ids -> text, as HF `tokenizers` decode: ByteLevel inverse, then UTF-8 with U+FFFD for each maximal invalid
  // subsequence. Unknown ids (e.g. the model's padded vocab rows) are skipped. skip_special drops tokens whose
  // added-token entry says special=true. No clean_up_tokenization_spaces.
  std::string decode(std::span<const int64_t> ids, bool skip_special = false) const;

  // Largest id + 1 over the BPE vocab and the added tokens (HF get_vocab_size(with_added_tokens=True) when ids
  // are contiguous). The model's embedding may be larger.
  int64_t vocab_size() const;
  std::optional<int64_t> token_to_id(std::string_view token) const;  // vocab or added token, exact string
  std::string id_to_token(int64_t id) const;                         // "" for an unknown id
  bool is_special(int64_t id) const;                                 // an added token with special=true

  // EOS ids: tokenizer_config.json eos_token, then generation_config.json eos_token_id entries (deduplicated).
  std::vector<int64_t> eos_ids() const;
  std::optional<int64_t> pad_id() const;  // tokenizer_config.json pad_token
  std::optional<int64_t> bos_id() const;  // tokenizer_config.json bos_token
  // The jinja chat_template string from tokenizer_config.json ("" when absent); informational only.
  const std::string& chat_template_source() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;  // immutable after load; copies share it
};

}  // namespace rlvr::model
