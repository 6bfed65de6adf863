// Built instead of nccl_backend.cpp when LibTorch is linked without CUDA (no nvcc at configure time).
#include "common/error.h"
#include "trainer/dist/detail.h"

namespace rlvr::dist::detail {

bool nccl_available() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(c10::intrusive_ptr<c10d::Store>, const WorldInfo&, int,
                                                     std::chrono::milliseconds) {
  throw Error("distributed.backend nccl: this rlvr was built without CUDA (configure with nvcc on PATH)");
}

}  // namespace rlvr::dist::detail
