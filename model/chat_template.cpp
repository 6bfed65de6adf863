// Chat templates rendered in C++ for the families we support (no jinja interpreter). Each mirrors the jinja
// template in the family's tokenizer_config.json for system/user/assistant messages; tool calls are not
// supported. tests/reference/make_tokenizer.py renders the real templates with transformers as goldens.
#include "model/chat_template.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <functional>
#include <map>

#include "common/error.h"

namespace rlvr::model {

namespace {

constexpr const char* kQwen25DefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

// Python str.isspace() (what jinja's trim / str.strip use) for the code points that matter: ASCII + Unicode
// White_Space + the information separators \x1c-\x1f.
size_t space_len_at(const std::string& s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if ((b >= 0x09 && b <= 0x0D) || b == 0x20 || (b >= 0x1C && b <= 0x1F)) return 1;
  auto starts = [&](const char* u) { return s.compare(i, std::char_traits<char>::length(u), u) == 0; };
  for (const char* u : {"\xC2\x85", "\xC2\xA0"})
    if (starts(u)) return 2;
  for (const char* u : {"\xE1\x9A\x80", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE3\x80\x80"})
    if (starts(u)) return 3;
  if (b == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80) {
    const auto c = static_cast<unsigned char>(s[i + 2]);
    if (c >= 0x80 && c <= 0x8A) return 3;  // U+2000..U+200A
  }
  return 0;
}

std::string py_strip(const std::string& s) {
  size_t b = 0;
  while (b < s.size()) {
    const size_t n = space_len_at(s, b);
    if (n == 0) break;
    b += n;
  }
  // Scan forward remembering the end of the last non-space code point (UTF-8 safe).
  size_t e = b, i = b;
  while (i < s.size()) {
    const size_t n = space_len_at(s, i);
    if (n > 0) {
      i += n;
    } else {
      ++i;
      while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
      e = i;
    }
  }
  return s.substr(b, e - b);
}

std::string lstrip_nl(const std::string& s) {
  const size_t b = s.find_first_not_of('\n');
  return b == std::string::npos ? "" : s.substr(b);
}
std::string rstrip_nl(const std::string& s) {
  const size_t e = s.find_last_not_of('\n');
  return e == std::string::npos ? "" : s.substr(0, e + 1);
}

void check_roles(const std::vector<ChatMessage>& msgs) {
  for (size_t i = 0; i < msgs.size(); ++i) {
    const auto& r = msgs[i].role;
    RLVR_CONFIG_CHECK(r == "system" || r == "user" || r == "assistant",
                      "chat message {} has role '{}'; supported roles: system, user, assistant", i, r);
  }
}

std::string render_chatml(const std::vector<ChatMessage>& msgs, bool gen, const char* default_system) {
  std::string out;
  if (default_system != nullptr && (msgs.empty() || msgs[0].role != "system"))
    out += fmt::format("<|im_start|>system\n{}<|im_end|>\n", default_system);
  for (const auto& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

// Qwen3's template: assistant turns have "<think>...</think>" split off; turns after the last user query keep
// (or get an empty) think block; earlier ones lose it.
std::string render_qwen3(const std::vector<ChatMessage>& msgs, bool gen, bool no_think) {
  const auto n = static_cast<int64_t>(msgs.size());
  int64_t last_query = n - 1;
  for (int64_t i = n - 1; i >= 0; --i) {
    const auto& c = msgs[i].content;
    const bool tool_response = c.starts_with("<tool_response>") && c.ends_with("</tool_response>");
    if (msgs[i].role == "user" && !tool_response) {
      last_query = i;
      break;
    }
  }
  std::string out;
  for (int64_t i = 0; i < n; ++i) {
    const auto& m = msgs[i];
    if (m.role != "assistant") {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      continue;
    }
    std::string content = m.content, reasoning;
    if (const size_t close = content.find("</think>"); close != std::string::npos) {
      const size_t last_close = content.rfind("</think>");
      std::string before = rstrip_nl(content.substr(0, close));
      if (const size_t open = before.rfind("<think>"); open != std::string::npos) before = before.substr(open + 7);
      reasoning = lstrip_nl(before);
      content = lstrip_nl(content.substr(last_close + 8));
    }
    if (i > last_query && (i == n - 1 || !reasoning.empty())) {
      out += "<|im_start|>assistant\n<think>\n" + rstrip_nl(lstrip_nl(reasoning)) + "\n</think>\n\n" +
             lstrip_nl(content);
    } else {
      out += "<|im_start|>assistant\n" + content;
    }
    out += "<|im_end|>\n";
  }
  if (gen) {
    out += "<|im_start|>assistant\n";
    if (no_think) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

std::string render_llama3(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string out = "<|begin_of_text|>";
  for (const auto& m : msgs)
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + py_strip(m.content) + "<|eot_id|>";
  if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_none(const std::vector<ChatMessage>& msgs) {
  std::string out;
  for (size_t i = 0; i < msgs.size(); ++i) out += (i ? "\n\n" : "") + msgs[i].content;
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

std::string render_raw(const std::string& tmpl, const std::vector<ChatMessage>& msgs) {
  std::string prompt, system;
  bool have_user = false;
  for (const auto& m : msgs) {
    if (m.role == "user") {
      prompt = m.content;
      have_user = true;
    } else if (m.role == "system") {
      system = m.content;
    }
  }
  RLVR_CONFIG_CHECK(have_user, "raw chat template needs a user message for {{prompt}}; got {} messages",
                    msgs.size());
  RLVR_CONFIG_CHECK(system.empty() || tmpl.find("{system}") != std::string::npos,
                    "raw chat template has no {{system}} placeholder but the conversation has a system message");
  // Substitute {system} first so a prompt containing "{system}" stays verbatim.
  return replace_all(replace_all(tmpl, "{system}", system), "{prompt}", prompt);
}

using Renderer = std::function<std::string(const std::vector<ChatMessage>&, bool)>;

const std::vector<std::pair<std::string, Renderer>>& registry() {
  static const std::vector<std::pair<std::string, Renderer>> r = {
      {"chatml", [](const auto& m, bool g) { return render_chatml(m, g, nullptr); }},
      {"qwen2.5", [](const auto& m, bool g) { return render_chatml(m, g, kQwen25DefaultSystem); }},
      {"qwen3", [](const auto& m, bool g) { return render_qwen3(m, g, false); }},
      {"qwen3-nothink", [](const auto& m, bool g) { return render_qwen3(m, g, true); }},
      {"llama3", [](const auto& m, bool g) { return render_llama3(m, g); }},
      {"none", [](const auto& m, bool) { return render_none(m); }},
  };
  return r;
}

}  // namespace

std::vector<std::string> chat_template_names() {
  std::vector<std::string> names;
  for (const auto& [n, r] : registry()) names.push_back(n);
  return names;
}

std::string apply_chat_template(const std::string& name_or_raw, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  check_roles(messages);
  if (name_or_raw.find("{prompt}") != std::string::npos) return render_raw(name_or_raw, messages);
  for (const auto& [n, r] : registry())
    if (n == name_or_raw) return r(messages, add_generation_prompt);
  throw ConfigError(fmt::format("unknown chat template '{}'; known: [{}], or a raw template containing {{prompt}}",
                                name_or_raw, fmt::join(chat_template_names(), ", ")));
}

}  // namespace rlvr::model
