// Checkpoint I/O: save -> load round trips (single file, shards, bf16), and every kind of broken
// safetensors file or checkpoint gives an rlvr::Error naming the file / tensor (never a crash).
#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "model/causal_lm.h"
#include "model/safetensors.h"
#include "model_fixtures.h"

using namespace rlvr::model;
namespace fs = std::filesystem;

namespace {

// Raw safetensors bytes from a header string and a buffer.
std::string raw_file(const std::string& header, const std::string& buffer) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + buffer;
}

void write_bytes(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const rlvr::Error& e) {
    return e.what();
  }
  return "";
}

void check_same_params(CausalLM& a, CausalLM& b) {
  auto na = a.named_parameters(), nb = b.named_parameters();
  REQUIRE(na.size() == nb.size());
  for (size_t i = 0; i < na.size(); ++i) {
    CHECK(na[i].first == nb[i].first);
    CHECK(at::equal(na[i].second, nb[i].second));
  }
}

}  // namespace

TEST_CASE("save_pretrained -> from_pretrained round trip is exact", "[model]") {
  auto src = model_fixture_dir("qwen2_untied") / "hf";
  auto lm = CausalLM::from_pretrained(src, at::kCPU, at::kFloat);
  auto dir = model_scratch_dir("roundtrip");
  SECTION("one file") {
    lm->save_pretrained(dir / "ckpt");
    CHECK(fs::exists(dir / "ckpt" / "model.safetensors"));
    CHECK_FALSE(fs::exists(dir / "ckpt" / "model.safetensors.index.json"));
    auto back = CausalLM::from_pretrained(dir / "ckpt", at::kCPU, at::kFloat);
    check_same_params(*lm, *back);
    CHECK(back->args().to_json() == lm->args().to_json());
    // Saving over an existing checkpoint replaces it and leaves no temporary directories behind.
    lm->save_pretrained(dir / "ckpt");
    int n = 0;
    for (auto& e : fs::directory_iterator(dir)) (void)e, ++n;
    CHECK(n == 1);
  }
  SECTION("shards with an index") {
    lm->save_pretrained(dir / "ckpt", {}, 20000);
    CHECK(fs::exists(dir / "ckpt" / "model.safetensors.index.json"));
    auto index = nlohmann::json::parse(rlvr::read_file(dir / "ckpt" / "model.safetensors.index.json"));
    CHECK(index["weight_map"].size() == lm->named_parameters().size());
    CHECK(index["weight_map"]["model.layers.0.self_attn.q_proj.weight"].get<std::string>().find("model-000") == 0);
    auto back = CausalLM::from_pretrained(dir / "ckpt", at::kCPU, at::kFloat);
    check_same_params(*lm, *back);
  }
  SECTION("bf16 storage, tokenizer files copied") {
    auto tok = dir / "tok";
    fs::create_directories(tok);
    std::ofstream(tok / "tokenizer.json") << "{}";
    std::ofstream(tok / "tokenizer_config.json") << "{}";
    auto bf = CausalLM::from_pretrained(src, at::kCPU, at::kBFloat16);
    bf->save_pretrained(dir / "ckpt", tok);
    CHECK(fs::exists(dir / "ckpt" / "tokenizer.json"));
    CHECK(fs::exists(dir / "ckpt" / "tokenizer_config.json"));
    SafetensorsFile f(dir / "ckpt" / "model.safetensors");
    CHECK(f.entry("lm_head.weight").dtype == "BF16");
    auto back = CausalLM::from_pretrained(dir / "ckpt", at::kCPU, at::kFloat);
    auto nb = back->named_parameters(), nl = lm->named_parameters();
    for (size_t i = 0; i < nb.size(); ++i)
      CHECK(at::equal(nb[i].second, nl[i].second.to(at::kBFloat16).to(at::kFloat)));
  }
  SECTION("tied models have no lm_head.weight") {
    auto tied = CausalLM::from_pretrained(model_fixture_dir("qwen2_tied") / "hf", at::kCPU, at::kFloat);
    tied->save_pretrained(dir / "ckpt");
    SafetensorsFile f(dir / "ckpt" / "model.safetensors");
    CHECK_FALSE(f.contains("lm_head.weight"));
    CHECK(f.contains("model.embed_tokens.weight"));
  }
  fs::remove_all(dir);
}

TEST_CASE("corrupt safetensors files give errors naming file and tensor", "[model]") {
  auto dir = model_scratch_dir("corrupt");
  auto p = dir / "x.safetensors";
  const std::string buf(16, '\1');  // 4 F32 values
  const std::string good = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  write_bytes(p, raw_file(good, buf));
  CHECK(SafetensorsFile(p).load("a").sizes() == at::IntArrayRef({2, 2}));

  auto expect = [&](const std::string& bytes, const std::string& needle) {
    write_bytes(p, bytes);
    auto msg = error_of([&] { SafetensorsFile f(p); });
    INFO("error: '" << msg << "', wanted '" << needle << "'");
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find(needle) != std::string::npos);
  };
  expect("abc", "truncated");                                             // shorter than the length field
  expect(raw_file(good, buf).substr(0, 20), "truncated");                  // header cut
  expect(raw_file(good, buf).substr(0, 8 + good.size() + 10), "out of range");  // buffer cut
  expect(std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "exceeds");  // oversized header length
  expect(raw_file("{\"a\":", buf), "not valid JSON");
  expect(raw_file("[1,2]", ""), "not a JSON object");
  expect(raw_file(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", std::string(12, '\0')),
         "'a' has 12 bytes");                                               // wrong byte size for shape x dtype
  expect(raw_file(R"({"a":{"dtype":"F64","shape":[2,2],"data_offsets":[0,16]}})", buf), "'a' has 16 bytes");
  expect(raw_file(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", "xx"), "unknown dtype");
  expect(raw_file(R"({"a":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}})", buf), "'a'");
  expect(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                  std::string(12, '\0')),
         "overlapping");
  expect(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", buf), "cover");  // trailing bytes
  expect(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", buf), "expected 0");  // gap
  expect(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})", buf), "data_offsets");
  expect(raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", buf), "'a' lacks");
  expect(raw_file(R"({"__metadata__":{"k":1}})", ""), "__metadata__");
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint with missing, unexpected or misshapen tensors is an error", "[model]") {
  auto src = model_fixture_dir("qwen2_tied") / "hf";
  auto dir = model_scratch_dir("ckpt_errors");
  fs::copy_file(src / "config.json", dir / "config.json");
  SafetensorsFile f(src / "model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> all;
  for (auto& [n, e] : f.entries()) all.emplace_back(n, f.load(n)), (void)e;
  auto with = [&](std::vector<std::pair<std::string, at::Tensor>> ts) {
    write_safetensors(dir / "model.safetensors", ts);
    return error_of([&] { CausalLM::from_pretrained(dir, at::kCPU, at::kFloat); });
  };
  CHECK(with(all).empty());  // the unmodified copy loads

  auto missing = all;
  missing.erase(std::find_if(missing.begin(), missing.end(),
                             [](auto& x) { return x.first == "model.layers.1.mlp.up_proj.weight"; }));
  CHECK(with(missing).find("lacks tensor 'model.layers.1.mlp.up_proj.weight'") != std::string::npos);

  auto extra = all;
  extra.emplace_back("model.layers.7.mlp.up_proj.weight", at::zeros({2}));
  CHECK(with(extra).find("unexpected tensor 'model.layers.7.mlp.up_proj.weight'") != std::string::npos);

  auto wrong = all;
  for (auto& [n, t] : wrong)
    if (n == "model.norm.weight") t = at::zeros({3});
  auto msg = with(wrong);
  CHECK(msg.find("'model.norm.weight' has shape [3]") != std::string::npos);
  CHECK(msg.find("model.safetensors") != std::string::npos);

  // Sharded: the index names a file that does not hold the tensor.
  write_safetensors(dir / "model.safetensors", all);
  fs::rename(dir / "model.safetensors", dir / "model-00001-of-00001.safetensors");
  nlohmann::json idx;
  idx["weight_map"] = nlohmann::json::object();
  for (auto& [n, t] : all) idx["weight_map"][n] = "model-00001-of-00001.safetensors", (void)t;
  idx["weight_map"]["model.ghost.weight"] = "model-00001-of-00001.safetensors";
  std::ofstream(dir / "model.safetensors.index.json") << idx.dump();
  auto e1 = error_of([&] { CausalLM::from_pretrained(dir, at::kCPU, at::kFloat); });
  CHECK(e1.find("model.ghost.weight") != std::string::npos);
  idx["weight_map"].erase("model.ghost.weight");
  idx["weight_map"]["model.norm.weight"] = "../evil.safetensors";
  std::ofstream(dir / "model.safetensors.index.json") << idx.dump();
  auto e2 = error_of([&] { CausalLM::from_pretrained(dir, at::kCPU, at::kFloat); });
  CHECK(e2.find("not a plain file name") != std::string::npos);
  fs::remove_all(dir);
}
