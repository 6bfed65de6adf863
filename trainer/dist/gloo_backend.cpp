// The only translation unit that includes c10d/ProcessGroupGloo.hpp (and so Debian's libgloo-dev headers,
// older than the Gloo inside libtorch_cpu). It only creates the backend and returns it as c10d::Backend:
// every later call is a virtual call into libtorch's own code. Rules that keep this ODR-safe
// (docs/dist.md): no GlooStore, no gloo:: inline function is called here, no gloo library is linked;
// ProcessGroupGloo's size does not depend on Gloo's types (they only appear behind shared_ptr).
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <cstdlib>
#include <string>

#include "common/error.h"
#include "trainer/dist/detail.h"

namespace rlvr::dist::detail {

bool gloo_available() { return true; }

namespace {

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    if (e > b) out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

}  // namespace

c10::intrusive_ptr<c10d::Backend> create_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                                      int world_size, std::chrono::milliseconds timeout,
                                                      const std::string& master_addr) {
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  // Which interface the Gloo TCP transport binds: GLOO_SOCKET_IFNAME (as torch.distributed), else the
  // loopback when the job is on one machine (MASTER_ADDR is a loopback address), else this host's name.
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  try {
    if (ifname != nullptr && *ifname != '\0') {
      for (const auto& name : split_commas(ifname)) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      }
    } else if (is_loopback(master_addr)) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
  } catch (const std::exception& e) {
    throw Error(fmt::format("gloo: cannot create the TCP transport device (GLOO_SOCKET_IFNAME='{}', "
                            "MASTER_ADDR='{}'): {}",
                            ifname ? ifname : "", master_addr, short_what(e)));
  }
  opts->threads = 2;
  // Connects the full mesh through `store` (bounded by the store's and the options' timeout).
  auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, opts);
  return c10::static_intrusive_pointer_cast<c10d::Backend>(pg);
}

}  // namespace rlvr::dist::detail
