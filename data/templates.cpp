// Prompt templates (see templates.h).
#include "data/templates.h"

#include <fmt/format.h>

#include "common/error.h"

namespace rlvr::data {
namespace {

constexpr const char* kR1ZeroPrefix =
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>. User: ";
constexpr const char* kR1ZeroSuffix = ". Assistant:";
constexpr const char* kQwenMathSuffix = "\nPlease reason step by step, and put your final answer within \\boxed{}.";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

}  // namespace

const std::vector<std::string>& template_names() {
  static const std::vector<std::string> names = {"r1_zero", "qwen_math", "chat", "raw"};
  return names;
}

void check_template(const std::string& name, const std::string& template_string, bool have_chat_fn) {
  bool known = false;
  for (const auto& n : template_names()) known |= n == name;
  RLVR_CONFIG_CHECK(known, "unknown data.template '{}'; known: [{}]", name, fmt::join(template_names(), ", "));
  if (name == "raw")
    RLVR_CONFIG_CHECK(template_string.find("{prompt}") != std::string::npos,
                      "data.template_string must contain {{prompt}}, got '{}'", template_string);
  if (name == "chat")
    RLVR_CONFIG_CHECK(have_chat_fn,
                      "data.template = chat needs the model's chat template (model.chat_template is 'none' "
                      "and the tokenizer has none)");
}

std::string render_prompt(const std::string& name, const std::string& template_string, const std::string& prompt,
                          const ChatFn& chat_fn) {
  check_template(name, template_string, static_cast<bool>(chat_fn));
  if (name == "r1_zero") return kR1ZeroPrefix + prompt + kR1ZeroSuffix;
  if (name == "qwen_math") {
    std::string msg = prompt + kQwenMathSuffix;
    return chat_fn ? chat_fn(msg) : msg;
  }
  if (name == "chat") return chat_fn(prompt);
  return replace_all(template_string, "{prompt}", prompt);  // raw
}

}  // namespace rlvr::data
