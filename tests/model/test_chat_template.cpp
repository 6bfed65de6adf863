// Chat template tests: hand-written expected strings for each named template, the raw {prompt} form, errors,
// and parity with transformers' apply_chat_template on the real Qwen3 / Llama 3 tokenizer_config.json files.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "model/chat_template.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using rlvr::model::apply_chat_template;
using rlvr::model::ChatMessage;

TEST_CASE("chatml, qwen2.5, llama3 and none render the documented strings", "[tokenizer][chat]") {
  const std::vector<ChatMessage> user = {{"user", "What is 2+2?"}};
  CHECK(apply_chat_template("chatml", user, true) ==
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  CHECK(apply_chat_template("chatml", user, false) == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n");
  CHECK(apply_chat_template("qwen2.5", user, true) ==
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  const std::vector<ChatMessage> sys = {{"system", "Be brief."}, {"user", "Hi"}};
  CHECK(apply_chat_template("qwen2.5", sys, true) ==
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  CHECK(apply_chat_template("llama3", {{"user", "  hi \n"}}, true) ==
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
  CHECK(apply_chat_template("none", sys, true) == "Be brief.\n\nHi");
  CHECK(apply_chat_template("qwen3-nothink", user, true) ==
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST_CASE("raw templates substitute {prompt} and {system}", "[tokenizer][chat]") {
  CHECK(apply_chat_template("Q: {prompt}\nA:", {{"user", "2+2?"}}, true) == "Q: 2+2?\nA:");
  CHECK(apply_chat_template("[{system}] {prompt}", {{"system", "S"}, {"user", "{system} x"}}, false) ==
        "[S] {system} x");
  CHECK_THROWS_AS(apply_chat_template("{prompt}", {{"system", "S"}, {"user", "x"}}, true), rlvr::ConfigError);
  CHECK_THROWS_AS(apply_chat_template("{prompt}", {{"system", "S"}}, true), rlvr::ConfigError);
}

TEST_CASE("unknown template names and roles are config errors with the menu", "[tokenizer][chat]") {
  CHECK_THROWS_AS(apply_chat_template("chatmll", {{"user", "x"}}, true), rlvr::ConfigError);
  CHECK_THROWS_WITH(apply_chat_template("chatmll", {{"user", "x"}}, true),
                    Catch::Contains("chatml, qwen2.5, qwen3, qwen3-nothink, llama3, none") &&
                        Catch::Contains("{prompt}"));
  CHECK_THROWS_WITH(apply_chat_template("chatml", {{"tool", "x"}}, true), Catch::Contains("'tool'"));
}

TEST_CASE("templates match transformers' apply_chat_template on the real tokenizer configs", "[tokenizer][chat]") {
  const fs::path golden = fs::path(RLVR_BINARY_DIR) / "fixtures" / "tokenizer" / "chat.jsonl";
  if (!fs::exists(golden)) {
    if (fs::exists(fs::path(RLVR_SHARED_DATA) / "tokenizers"))
      FAIL("fixture missing: " << golden.string()
                               << "; run python tests/reference/make_tokenizer.py --out <build>/fixtures");
    WARN("SKIPPED: no fixtures and no shared data");
    return;
  }
  size_t n = 0, chatml_checked = 0;
  rlvr::for_each_line(golden, [&](std::string_view line, size_t lineno) {
    const json r = json::parse(line);
    std::vector<ChatMessage> msgs;
    for (const auto& m : r["messages"]) msgs.push_back({m["role"], m["content"]});
    const bool gen = r["add_generation_prompt"];
    const std::string tmpl = r["template"];
    INFO("line " << lineno << " template " << tmpl << " (" << r["tokenizer"].get<std::string>() << ")");
    CHECK(apply_chat_template(tmpl, msgs, gen) == r["text"].get<std::string>());
    // Plain ChatML equals Qwen3's template whenever the conversation ends with a user turn and no earlier
    // assistant turn carries a <think> block (Qwen3 strips those from history).
    bool think = false;
    for (const auto& m : msgs) think |= m.role == "assistant" && m.content.find("</think>") != std::string::npos;
    if (tmpl == "qwen3" && msgs.back().role == "user" && !think) {
      CHECK(apply_chat_template("chatml", msgs, gen) == r["text"].get<std::string>());
      ++chatml_checked;
    }
    ++n;
  });
  CHECK(n >= 40);
  CHECK(chatml_checked >= 6);
}
