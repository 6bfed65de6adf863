// Chat templates for the model families we support, rendered in C++ (no jinja): ChatML (Qwen), Llama 3
// headers, "none", or a raw template string with {prompt}. Matches transformers' apply_chat_template on the
// real Qwen3 / Llama 3 tokenizer_config.json files for system/user/assistant conversations (no tools).
#pragma once
#include <string>
#include <vector>

namespace rlvr::model {

struct ChatMessage {
  std::string role;     // "system" | "user" | "assistant"
  std::string content;  // the message text, verbatim
};

// Known names: "chatml" (Qwen3 ChatML, no default system prompt), "qwen2.5" (ChatML with Qwen2.5's default
// system prompt when the conversation has none), "qwen3" (ChatML plus Qwen3's empty <think> block on a final
// assistant turn), "qwen3-nothink" (qwen3 + enable_thinking=false generation prompt), "llama3" (Llama 3
// headers with <|begin_of_text|>, contents trimmed), "none" (contents joined with "\n\n").
// Anything containing "{prompt}" is a raw template: {prompt} <- the last user message, {system} <- the system
// message ("" when none); add_generation_prompt is ignored for raw templates.
// Unknown name -> rlvr::ConfigError listing the known names.
std::string apply_chat_template(const std::string& name_or_raw, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt);

// The known template names, in the order listed in errors.
std::vector<std::string> chat_template_names();

}  // namespace rlvr::model
