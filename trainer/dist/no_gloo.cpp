// Built instead of gloo_backend.cpp when Debian's libgloo-dev headers were missing at configure time.
#include "common/error.h"
#include "trainer/dist/detail.h"

namespace rlvr::dist::detail {

bool gloo_available() { return false; }

c10::intrusive_ptr<c10d::Backend> create_gloo_backend(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                                      std::chrono::milliseconds, const std::string&) {
  throw Error("distributed.backend gloo: this rlvr was built without Gloo headers "
              "(apt-get install libgloo-dev, then reconfigure)");
}

}  // namespace rlvr::dist::detail
