// Prompt templates: turn a problem statement into the text the policy sees. Owns the fixed R1-Zero and
// Qwen-math wordings and raw "{prompt}" strings; chat templates themselves live in model/ and come in
// as a callback. Does not tokenize.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace rlvr::data {

// Wraps one user message in the model's chat template (with the generation prompt appended), e.g.
// "<|im_start|>user\n{msg}<|im_end|>\n<|im_start|>assistant\n". Supplied by the caller (model/).
using ChatFn = std::function<std::string(const std::string& user_msg)>;

// The template names: r1_zero | qwen_math | chat | raw.
const std::vector<std::string>& template_names();

// Renders `prompt` with the named template:
//   r1_zero   : the DeepSeek R1-Zero text, "A conversation between User and Assistant. ... User: {prompt}.
//               Assistant:" (plain text; chat_fn is not used: R1-Zero prompts a base model directly).
//   qwen_math : the user message "{prompt}\nPlease reason step by step, and put your final answer within
//               \boxed{}." passed through chat_fn when one is given, else returned as is.
//   chat      : chat_fn(prompt); ConfigError when chat_fn is empty (set model.chat_template).
//   raw       : template_string with every "{prompt}" replaced by the prompt.
// Unknown names and raw strings without "{prompt}" are ConfigErrors (with the list of names).
std::string render_prompt(const std::string& template_name, const std::string& template_string,
                          const std::string& prompt, const ChatFn& chat_fn = {});

// The same checks without rendering (config validation): name known, raw string has {prompt}, chat
// has a chat function available (`have_chat_fn`).
void check_template(const std::string& template_name, const std::string& template_string, bool have_chat_fn);

}  // namespace rlvr::data
