// Internal to trainer/dist: the backend factories behind make_communicator(). Each backend lives in its
// own translation unit so that Gloo's (Debian) headers and NCCL's headers stay confined to one file.
#pragma once
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "trainer/dist/communicator.h"

namespace rlvr::dist::detail {

// gloo_backend.cpp (no_gloo.cpp when Debian's libgloo-dev headers were absent at build time):
// a c10d::ProcessGroupGloo over `store`, as the generic c10d::Backend. Throws rlvr::Error.
bool gloo_available();
c10::intrusive_ptr<c10d::Backend> create_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                                      int world_size, std::chrono::milliseconds timeout,
                                                      const std::string& master_addr);

// c10d_backend.cpp: a Communicator over any c10d::Backend (gloo today).
std::unique_ptr<Communicator> make_c10d_communicator(c10::intrusive_ptr<c10d::Store> store,
                                                     c10::intrusive_ptr<c10d::Backend> backend,
                                                     const WorldInfo& world, std::chrono::milliseconds timeout,
                                                     std::string name);

// nccl_backend.cpp (no_nccl.cpp in CPU-only builds): raw NCCL on cuda:<device_index> (-1: LOCAL_RANK, or
// 0 when the process sees a single GPU), unique id exchanged through `store`.
bool nccl_available();
std::unique_ptr<Communicator> make_nccl_communicator(c10::intrusive_ptr<c10d::Store> store, const WorldInfo& world,
                                                     int device_index, std::chrono::milliseconds timeout);

// "what(): message" of a c10 / std exception without the C++ backtrace c10 appends.
std::string short_what(const std::exception& e);

}  // namespace rlvr::dist::detail
