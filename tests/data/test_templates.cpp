// Prompt templates: exact strings.
#include <catch2/catch.hpp>

#include "common/error.h"
#include "data/templates.h"

using namespace rlvr;
using namespace rlvr::data;

TEST_CASE("r1_zero renders the DeepSeek R1-Zero text exactly", "[data]") {
  CHECK(render_prompt("r1_zero", "", "What is 2+3?") ==
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
        "The assistant first thinks about the reasoning process in the mind and then provides the user with "
        "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
        "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
        "</answer>. User: What is 2+3?. Assistant:");
}

TEST_CASE("qwen_math is a user message, wrapped by the chat function when given", "[data]") {
  CHECK(render_prompt("qwen_math", "", "Compute 1+1.") ==
        "Compute 1+1.\nPlease reason step by step, and put your final answer within \\boxed{}.");
  ChatFn chatml = [](const std::string& m) {
    return "<|im_start|>user\n" + m + "<|im_end|>\n<|im_start|>assistant\n";
  };
  CHECK(render_prompt("qwen_math", "", "Compute 1+1.", chatml) ==
        "<|im_start|>user\nCompute 1+1.\nPlease reason step by step, and put your final answer within "
        "\\boxed{}.<|im_end|>\n<|im_start|>assistant\n");
  CHECK(render_prompt("chat", "", "Hi", chatml) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("raw replaces every {prompt}, bad names and strings are config errors", "[data]") {
  CHECK(render_prompt("raw", "{prompt}", "x") == "x");
  CHECK(render_prompt("raw", "Q: {prompt}\nA ({prompt}):", "2+2") == "Q: 2+2\nA (2+2):");
  CHECK_THROWS_AS(render_prompt("raw", "no placeholder", "x"), ConfigError);
  CHECK_THROWS_WITH(render_prompt("r1zero", "", "x"), Catch::Contains("known: [r1_zero, qwen_math, chat, raw]"));
  CHECK_THROWS_WITH(render_prompt("chat", "", "x"), Catch::Contains("model.chat_template"));
  CHECK_NOTHROW(check_template("chat", "", true));
}
