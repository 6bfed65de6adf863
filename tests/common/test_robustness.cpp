// Bad input never passes silently and runs never lose data: checked writes (a write the OS refuses is an error
// naming the file, the previous file survives, no temporary is left), one range per numeric config field
// (read with file:line, checked again by validate(), shown by `rlvr config`), configs that yaml-cpp would
// accept silently (duplicates, a second document, a directory), and clipped log messages.
#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/resource.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "common/config_io.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "trainer/config.h"

using namespace rlvr;
namespace fs = std::filesystem;

namespace {

std::string config_error(const std::string& yaml, const std::vector<std::string>& ov = {}) {
  try {
    parse_config(yaml, "configs/x.yaml", ov);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("rlvr_robust_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

size_t entries(const fs::path& d) {
  size_t n = 0;
  for (auto& e : fs::directory_iterator(d)) (void)e, ++n;
  return n;
}

// Files of this process may not grow beyond `bytes` while it lives: the kernel refuses the write (EFBIG) the
// way a full disk refuses it (ENOSPC), without root or a small filesystem. SIGXFSZ is ignored meanwhile.
struct FileSizeLimit {
  rlimit old{};
  explicit FileSizeLimit(rlim_t bytes) {
    ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old);
    rlimit lim = old;
    lim.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() { ::setrlimit(RLIMIT_FSIZE, &old); }
};

// Records the fields that were visited without a range.
struct MissingRanges : ConfigVisitor {
  std::string section;
  std::vector<std::string> missing;
  bool ranged = false;
  using ConfigVisitor::field;
  void on_range(const char*, const Range&) override { ranged = true; }
  void numeric(const char* k) {
    if (!ranged) missing.push_back(section + "." + k);
    ranged = false;
  }
  void field(const char*, bool&, const char*) override {}
  void field(const char* k, int32_t&, const char*) override { numeric(k); }
  void field(const char* k, int64_t&, const char*) override { numeric(k); }
  void field(const char* k, double&, const char*) override { numeric(k); }
  void field(const char*, std::string&, const char*) override {}
  void field(const char*, std::vector<int64_t>&, const char*) override {}
  void field(const char*, std::vector<std::string>&, const char*) override {}
  void field(const char*, StringMap&, const char*) override {}
};

}  // namespace

TEST_CASE("fs: a refused write is an error naming the file and the previous file survives", "[common][fs]") {
  auto d = fresh_dir("atomic");
  write_file_atomic(d / "state.json", "old");
  std::string big(1 << 20, 'x');
  std::string err;
  {
    FileSizeLimit lim(64 * 1024);
    try {
      write_file_atomic(d / "state.json", big);
    } catch (const Error& e) {
      err = e.what();
    }
  }
  CHECK_THAT(err, Catch::Contains((d / "state.json").string()) && Catch::Contains("File too large"));
  CHECK(read_file(d / "state.json") == "old");  // the earlier content is intact
  CHECK(entries(d) == 1);                       // and the temporary is gone
  // Without the limit the same write goes through.
  write_file_atomic(d / "state.json", big);
  CHECK(read_file(d / "state.json").size() == big.size());
  fs::remove_all(d);
}

TEST_CASE("fs: AtomicFile without commit leaves nothing and write never throws", "[common][fs]") {
  auto d = fresh_dir("nocommit");
  {
    AtomicFile f(d / "x.bin");
    CHECK(f.write("abc", 3) == 3);
    CHECK(entries(d) == 1);  // the temporary
  }
  CHECK(entries(d) == 0);
  long pid = 0;
  CHECK(is_temporary_name("optimizer.pt.tmp.1234", &pid));
  CHECK(pid == 1234);
  CHECK_FALSE(is_temporary_name("optimizer.pt"));
  CHECK_FALSE(is_temporary_name("a.tmp.12x"));
  CHECK(process_alive(::getpid()));
  fs::remove_all(d);
}

TEST_CASE("fs: a directory is not read as an empty file", "[common][fs]") {
  auto d = fresh_dir("dir_as_file");
  CHECK_THROWS_WITH(read_file(d), Catch::Contains("is a directory"));
  std::string err;
  try {
    load_config(d.string());
  } catch (const ConfigError& e) {
    err = e.what();
  }
  CHECK_THAT(err, Catch::Contains("cannot read config file") && Catch::Contains("is a directory"));
  fs::remove_all(d);
}

TEST_CASE("metrics: a line the disk refuses is an error and not a silently missing step", "[common][fs]") {
  auto d = fresh_dir("metrics");
  MetricsSink sink(d / "metrics.jsonl");
  sink.write(1, {{"reward/mean", 0.5}});
  MetricMap big;
  for (int i = 0; i < 4000; ++i) big["k" + std::to_string(i)] = i;
  std::string err;
  {
    FileSizeLimit lim(4096);
    try {
      sink.write(2, big);
    } catch (const Error& e) {
      err = e.what();
    }
  }
  CHECK_THAT(err, Catch::Contains("metrics.jsonl") && Catch::Contains("File too large"));
  std::string text = read_file(d / "metrics.jsonl");
  CHECK(text.rfind("{\"step\":1,", 0) == 0);  // the earlier line is intact
  fs::remove_all(d);
}

TEST_CASE("log: a huge message is clipped", "[common][log]") {
  std::string line(20 << 20, 'a');
  auto c = log::clip("bad line: " + line);
  CHECK(c.size() < log::kMaxMessageBytes + 40);
  CHECK_THAT(c, Catch::EndsWith("more bytes]") && Catch::StartsWith("bad line: aaa"));
  CHECK(log::clip("short") == "short");
  // A UTF-8 character is never split.
  std::string u;
  for (int i = 0; i < 1500; ++i) u += "\xc3\xa9";  // U+00E9, 2 bytes each
  auto cu = log::clip(u, 1001);
  CHECK(cu.substr(0, 1000) == u.substr(0, 1000));
  CHECK(cu[1000] == ' ');
}

TEST_CASE("config: every numeric field declares its range", "[config][ranges]") {
  Config c;
  MissingRanges m;
  auto run = [&](const char* name, auto& s) { m.section = name; s.visit(m); };
  run("run", c.run);
  run("model", c.model);
  run("data", c.data);
  run("rollout", c.rollout);
  run("algorithm", c.algorithm);
  run("optim", c.optim);
  run("train", c.train);
  run("distributed", c.distributed);
  run("logging", c.logging);
  INFO("fields without a range (add one as the 4th argument of field() in trainer/config.h)");
  CHECK(m.missing == std::vector<std::string>{});
}

TEST_CASE("config: harmful values are refused with the key, the range and the line", "[config][ranges]") {
  CHECK_THAT(config_error("optim:\n  lr: .inf\n"),
             Catch::Contains("optim.lr must be a finite number, got '.inf' (configs/x.yaml:2)"));
  CHECK_THAT(config_error("rollout:\n  temperature: .inf\n"), Catch::Contains("rollout.temperature must be a finite"));
  CHECK_THAT(config_error("rollout:\n  temperature: .nan\n"), Catch::Contains("rollout.temperature must be a finite"));
  CHECK_THAT(config_error("run:\n  threads: 100000\n"),
             Catch::Contains("run.threads must be an integer in [0, 1024], got '100000' (configs/x.yaml:2)"));
  // 1e9 fits int32 but G x prompts would not; 1e12 does not fit int32 at all (the message gives the range).
  CHECK_THAT(config_error("rollout:\n  group_size: 1000000000\n"),
             Catch::Contains("rollout.group_size must be an integer in [2, 4096], got '1000000000'"));
  CHECK_THAT(config_error("train:\n  steps: 1e12\n"),
             Catch::Contains("train.steps must be an integer in [0, 100000000], got '1e12' (configs/x.yaml:2)"));
  CHECK_THAT(config_error("train:\n  steps: 2.5\n"), Catch::Contains("train.steps must be an integer, got '2.5'"));
  CHECK_THAT(config_error("", {"optim.lr=.inf"}), Catch::Contains("optim.lr must be a finite number"));
  CHECK_THAT(config_error("", {"algorithm.clip_ratio_c=0.5"}),
             Catch::Contains("algorithm.clip_ratio_c must be 0 or in (1, 1000000], got '0.5'"));
  // Within range: integral numbers in any notation are integers.
  CHECK(parse_config("train:\n  steps: 1e3\n", "x.yaml").train.steps == 1000);
  CHECK(parse_config("", "x.yaml", {"algorithm.clip_ratio_c=3"}).algorithm.clip_ratio_c == 3.0);
  // The product of two in-range fields is checked too (it is counted in 32 bits).
  CHECK_THAT(config_error("rollout: {group_size: 4096}\ntrain: {prompts_per_step: 1048576}\n"),
             Catch::Contains("completions per step; at most 16777216"));
}

TEST_CASE("config: validate() applies the same ranges to a config built in code", "[config][ranges]") {
  Config c;
  validate(c);
  c.optim.lr = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(validate(c), Catch::Contains("optim.lr must be a finite number, got inf"));
  c = Config{};
  c.rollout.group_size = 1;
  CHECK_THROWS_WITH(validate(c), Catch::Contains("rollout.group_size must be in [2, 4096], got 1"));
}

TEST_CASE("config: rlvr config shows each field's range", "[config][ranges]") {
  auto y = to_yaml(Config{});
  CHECK_THAT(y, Catch::Contains("lr: 1e-06  # peak learning rate; in (0, 1]"));
  CHECK_THAT(y, Catch::Contains("group_size: 8  # G, completions per prompt (TRL num_generations, verl rollout.n); "
                                "in [2, 4096]"));
  // The output reads back to the same config.
  CHECK(to_yaml(parse_config(y, "resolved.yaml")) == y);
}

TEST_CASE("config: what yaml-cpp would drop silently is an error", "[config]") {
  CHECK_THAT(config_error("optim:\n  lr: 1e-5\n  lr: 1e-3\n"),
             Catch::Contains("duplicate key 'optim.lr' (configs/x.yaml:3; first at configs/x.yaml:2)"));
  CHECK_THAT(config_error("optim:\n  lr: 1e-5\ntrain:\n  steps: 3\noptim:\n  lr: 1e-3\n"),
             Catch::Contains("duplicate key 'optim' (configs/x.yaml:5; first at configs/x.yaml:1)"));
  CHECK_THAT(config_error("rewards:\n  - name: math_accuracy\n    args: {a: 1, a: 2}\n"),
             Catch::Contains("duplicate key 'rewards[0].args.a'"));
  CHECK_THAT(config_error("optim:\n  lr: 1e-5\n---\noptim:\n  lr: 1e-3\n"),
             Catch::Contains("a second YAML document"));
  CHECK(config_error("optim:\n  lr: 1e-5\n---\n").empty());  // an empty trailing document is harmless
  CHECK_THAT(config_error("run:\n  name: \"\"\n"), Catch::Contains("run.name must be a relative name"));
  CHECK_THAT(config_error("run:\n  name: ../up\n"), Catch::Contains("run.name must be a relative name"));
  CHECK(config_error("run:\n  name: \"\"\n  output_dir: /tmp/x\n").empty());  // output_dir given: name unused
  // A YAML error inside an override names the override (and is a config error, exit 2).
  CHECK_THAT(config_error("", {"rollout.stop=[a, b"}),
             Catch::Contains("override 'rollout.stop=[a, b': YAML syntax error in '[a, b'"));
}
