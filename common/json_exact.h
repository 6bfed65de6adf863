// JSON parsing that keeps integers exact: nlohmann reads an integer literal that does not fit 64 bits as a
// double, so 18446744073709551617 and its neighbour 18446744073709551616 would become the same number. Where a
// value is an answer to verify, such a literal is kept as its digits (a JSON string) instead.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace rlvr {

namespace detail {
struct ExactNumbersSax : nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
  using Base = nlohmann::detail::json_sax_dom_parser<nlohmann::json>;
  using Base::Base;
  bool number_float(double val, const std::string& text) {
    if (text.find_first_of(".eE") == std::string::npos) {  // an integer literal beyond 64 bits
      std::string digits = text;
      return Base::string(digits);
    }
    return Base::number_float(val, text);
  }
};
}  // namespace detail

// Like nlohmann::json::parse(text) (throws nlohmann::json::parse_error), but an integer literal outside the
// 64-bit range becomes a string holding its exact digits.
inline nlohmann::json parse_json_exact(std::string_view text) {
  nlohmann::json out;
  detail::ExactNumbersSax sax(out, /*allow_exceptions=*/true);
  nlohmann::json::sax_parse(text, &sax);
  return out;
}

}  // namespace rlvr
