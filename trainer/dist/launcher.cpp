// launch_local_world: the process supervisor behind `rlvr launch` and the multi-process tests. It hosts
// the c10d::TCPStore (port 0 = a free port, no race), forks N ranks with torchrun's environment, forwards
// their output line by line with a rank prefix, and tears everything down on the first failure or on
// SIGINT/SIGTERM. Signals and child exits are read from a signalfd in one poll loop.
#include "trainer/dist/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <set>
#include <thread>

#include <fmt/ranges.h>

#include "common/error.h"
#include "common/log.h"

extern char** environ;

namespace rlvr::dist {

int pick_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  RLVR_CHECK(fd >= 0, "pick_free_port: socket(): {}", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  int err = errno;
  ::close(fd);
  RLVR_CHECK(ok, "pick_free_port: bind(127.0.0.1:0): {}", std::strerror(err));
  return ntohs(a.sin_port);
}

namespace {

using Clock = std::chrono::steady_clock;

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the terminal went away: drop output rather than fail the job
    off += static_cast<size_t>(n);
  }
}

// One child output stream: bytes are split into lines and written with the rank prefix.
struct Stream {
  int fd = -1;       // read end, -1 when closed
  int out_fd = 1;    // where the prefixed lines go
  std::string prefix;
  std::string partial;

  void on_bytes(const char* p, size_t n) {
    partial.append(p, n);
    size_t start = 0;
    std::string out;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      out += prefix;
      out.append(partial, start, nl - start + 1);
    }
    partial.erase(0, start);
    if (partial.size() > 65536) {  // a very long line without newline: flush it anyway
      out += prefix + partial + "\n";
      partial.clear();
    }
    if (!out.empty()) write_all(out_fd, out);
  }
  void flush() {
    if (!partial.empty()) write_all(out_fd, prefix + partial + "\n");
    partial.clear();
  }
  // Reads what is available; returns false at EOF.
  bool pump() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n > 0) {
        on_bytes(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EINTR)) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      flush();
      ::close(fd);
      fd = -1;
      return false;
    }
  }
};

struct Child {
  pid_t pid = -1;
  int rank = 0;
  std::optional<int> status;  // exit code or 128 + signal once reaped
};

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

std::string describe_status(int code) {
  if (code > 128 && code < 128 + 65) return fmt::format("was killed by signal {} ({})", code - 128, strsignal(code - 128));
  return fmt::format("exited with code {}", code);
}

// Restores the signal mask when the launcher returns or throws.
struct MaskGuard {
  sigset_t old;
  explicit MaskGuard(const sigset_t& block) { pthread_sigmask(SIG_BLOCK, &block, &old); }
  ~MaskGuard() { pthread_sigmask(SIG_SETMASK, &old, nullptr); }
};

}  // namespace

LaunchResult launch_local_world(const LaunchOptions& opts) {
  RLVR_CONFIG_CHECK(opts.nproc >= 1, "launch: --nproc must be >= 1, got {}", opts.nproc);
  RLVR_CONFIG_CHECK(!opts.exe.empty(), "launch: no program to run");
  RLVR_CONFIG_CHECK(opts.master_port >= 0 && opts.master_port <= 65535, "launch: bad port {}", opts.master_port);

  // Block the signals we handle before any thread (the store's) exists, so every thread inherits the mask
  // and they reach the signalfd only.
  sigset_t handled;
  sigemptyset(&handled);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&handled, s);
  MaskGuard mask(handled);
  int sfd = ::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  RLVR_CHECK(sfd >= 0, "launch: signalfd(): {}", std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } sfd_closer{sfd};

  LaunchResult res;
  c10::intrusive_ptr<c10d::TCPStore> store;
  int port = opts.master_port;
  if (opts.host_store) {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = true;
    so.waitWorkers = false;
    so.timeout = std::chrono::seconds(opts.store_timeout_s);
    try {
      store = c10::make_intrusive<c10d::TCPStore>(opts.master_addr, so);
    } catch (const std::exception& e) {
      throw Error(fmt::format("launch: cannot host the TCPStore on port {}: {}", port, e.what()));
    }
    port = store->getPort();
  } else if (port == 0) {
    port = pick_free_port();
  }
  res.master_port = port;

  // Environment shared by all ranks (RANK / LOCAL_RANK added per rank).
  std::vector<std::pair<std::string, std::string>> set_env = {
      {"WORLD_SIZE", std::to_string(opts.nproc)},
      {"LOCAL_WORLD_SIZE", std::to_string(opts.nproc)},
      {"GROUP_RANK", "0"},
      {"MASTER_ADDR", opts.master_addr},
      {"MASTER_PORT", std::to_string(port)},
      {"TORCHELASTIC_USE_AGENT_STORE", opts.host_store ? "True" : "False"},
      {"TORCHELASTIC_RESTART_COUNT", "0"},
  };
  for (const auto& kv : opts.env) set_env.push_back(kv);
  bool has_omp = std::getenv("OMP_NUM_THREADS") != nullptr;
  for (const auto& kv : opts.env) has_omp = has_omp || kv.first == "OMP_NUM_THREADS";
  if (!has_omp) {
    unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    set_env.push_back({"OMP_NUM_THREADS", std::to_string(std::max(1u, hw / static_cast<unsigned>(opts.nproc)))});
  }
  std::set<std::string> overridden;
  for (const auto& kv : set_env) overridden.insert(kv.first);
  overridden.insert("RANK");
  overridden.insert("LOCAL_RANK");
  std::vector<std::string> base_env;
  for (char** e = environ; e && *e; ++e) {
    std::string s(*e);
    auto eq = s.find('=');
    if (eq != std::string::npos && overridden.count(s.substr(0, eq))) continue;
    base_env.push_back(s);
  }
  for (const auto& kv : set_env) base_env.push_back(kv.first + "=" + kv.second);

  std::vector<std::string> argv_s{opts.exe};
  argv_s.insert(argv_s.end(), opts.args.begin(), opts.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  RLVR_CHECK(devnull >= 0, "launch: open(/dev/null): {}", std::strerror(errno));
  FdCloser devnull_closer{devnull};

  log::info("launch: {} ranks of {} (MASTER_ADDR={} MASTER_PORT={}{})", opts.nproc, opts.exe, opts.master_addr,
            port, opts.host_store ? ", store hosted by the launcher" : "");

  std::vector<Child> children(opts.nproc);
  std::vector<Stream> streams;
  pid_t self = ::getpid();
  auto kill_all = [&](int sig) {
    for (auto& c : children) {
      if (c.pid > 0 && !c.status) ::kill(-c.pid, sig);  // the rank's process group (its own children too)
    }
  };

  for (int r = 0; r < opts.nproc; ++r) {
    std::vector<std::string> env_s = base_env;
    env_s.push_back("RANK=" + std::to_string(r));
    env_s.push_back("LOCAL_RANK=" + std::to_string(r));
    std::vector<char*> envp;
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);

    bool piped = r != 0 || opts.prefix_rank0;
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
    if (piped) {
      RLVR_CHECK(::pipe2(out_p, O_CLOEXEC) == 0 && ::pipe2(err_p, O_CLOEXEC) == 0, "launch: pipe2(): {}",
                 std::strerror(errno));
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      int err = errno;
      kill_all(SIGKILL);
      throw Error(fmt::format("launch: fork() for rank {}: {}", r, std::strerror(err)));
    }
    if (pid == 0) {
      // Child: only async-signal-safe calls until execve.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != self) ::_exit(1);
      ::dup2(devnull, 0);
      if (piped) {
        ::dup2(out_p[1], 1);
        ::dup2(err_p[1], 2);
      }
      ::syscall(SYS_close_range, 3u, ~0u, 0u);
      ::pthread_sigmask(SIG_SETMASK, &mask.old, nullptr);
      ::execve(argv[0], argv.data(), envp.data());
      const char msg[] = "rlvr launch: execve failed\n";
      ssize_t ignored = ::write(2, msg, sizeof(msg) - 1);
      (void)ignored;
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    children[r].pid = pid;
    children[r].rank = r;
    if (piped) {
      ::close(out_p[1]);
      ::close(err_p[1]);
      for (auto [fd, out] : {std::pair{out_p[0], 1}, std::pair{err_p[0], 2}}) {
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        Stream s;
        s.fd = fd;
        s.out_fd = out;
        s.prefix = fmt::format("[rank {}] ", r);
        streams.push_back(std::move(s));
      }
    }
  }

  std::optional<Clock::time_point> kill_at;  // SIGKILL the survivors at this time
  int interrupts = 0;
  auto begin_teardown = [&](int sig) {
    kill_all(sig);
    if (!kill_at) kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(opts.grace_s * 1000));
  };
  auto alive = [&] {
    return std::any_of(children.begin(), children.end(), [](const Child& c) { return !c.status; });
  };

  auto start = Clock::now();
  while (alive()) {
    if (opts.max_time_s > 0 && !res.timed_out &&
        Clock::now() - start > std::chrono::milliseconds(static_cast<int64_t>(opts.max_time_s * 1000))) {
      res.timed_out = true;
      if (res.failed_rank < 0 && !res.interrupted) res.exit_code = 124;
      log::error("launch: the job ran past max_time {} s; stopping the ranks", opts.max_time_s);
      begin_teardown(SIGTERM);
    }
    std::vector<pollfd> fds{{sfd, POLLIN, 0}};
    std::vector<Stream*> polled;
    for (auto& s : streams) {
      if (s.fd >= 0) {
        fds.push_back({s.fd, POLLIN, 0});
        polled.push_back(&s);
      }
    }
    int wait_ms = 200;
    if (kill_at) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*kill_at - Clock::now()).count();
      wait_ms = static_cast<int>(std::clamp<int64_t>(left, 0, 200));
    }
    int n = ::poll(fds.data(), fds.size(), wait_ms);
    if (n < 0 && errno != EINTR) throw Error(fmt::format("launch: poll(): {}", std::strerror(errno)));
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) polled[i - 1]->pump();
    }
    // Signals: child exits and user interrupts.
    signalfd_siginfo si;
    while (::read(sfd, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
      int sig = static_cast<int>(si.ssi_signo);
      if (sig == SIGCHLD) continue;  // reaped below
      ++interrupts;
      if (!res.interrupted) {
        res.interrupted = true;
        res.exit_code = 128 + sig;
        log::warn("launch: got {}, forwarding it to the ranks ({} s grace, again to kill now)", strsignal(sig),
                  opts.grace_s);
        begin_teardown(sig == SIGHUP ? SIGTERM : sig);
      } else {
        kill_all(SIGKILL);
      }
    }
    for (auto& c : children) {
      if (c.status) continue;
      int st = 0;
      pid_t p = ::waitpid(c.pid, &st, WNOHANG);
      if (p != c.pid) continue;
      c.status = decode_status(st);
      if (*c.status != 0 && res.failed_rank < 0 && !res.interrupted && !res.timed_out && !kill_at) {
        res.failed_rank = c.rank;
        res.exit_code = *c.status;
        log::error("launch: rank {} (pid {}) {}; stopping the other ranks", c.rank, c.pid, describe_status(*c.status));
        begin_teardown(SIGTERM);
      }
    }
    if (kill_at && Clock::now() >= *kill_at && alive()) {
      log::warn("launch: ranks still alive {} s after SIGTERM, sending SIGKILL", opts.grace_s);
      kill_all(SIGKILL);
      kill_at = Clock::now() + std::chrono::hours(24);  // once
    }
  }
  // Drain what the ranks wrote last (their pipes may stay open if they left background children).
  auto drain_until = Clock::now() + std::chrono::milliseconds(500);
  for (bool open = true; open && Clock::now() < drain_until;) {
    open = false;
    std::vector<pollfd> fds;
    std::vector<Stream*> polled;
    for (auto& s : streams) {
      if (s.fd >= 0) {
        fds.push_back({s.fd, POLLIN, 0});
        polled.push_back(&s);
      }
    }
    if (fds.empty()) break;
    open = true;
    if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) polled[i]->pump();
    }
  }
  for (auto& s : streams) {
    if (s.fd >= 0) {
      s.flush();
      ::close(s.fd);
    }
  }
  for (auto& c : children) res.rank_status.push_back(*c.status);
  if (res.failed_rank >= 0) {
    log::error("launch: failed: rank {} {} (exit statuses by rank: [{}])", res.failed_rank,
               describe_status(res.exit_code), fmt::join(res.rank_status, ", "));
  }
  return res;
}

}  // namespace rlvr::dist
