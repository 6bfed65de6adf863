// tune_host_allocator: blocks of 4 MiB and more are mapped (and so given back when freed) even after a larger
// block was freed, which without it raises glibc's mmap threshold and sends such blocks to the heaps. (A block
// that fits in free heap space is served from it either way: the threshold decides how the heap grows.)
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "common/host_memory.h"

#if defined(__GLIBC__)
#include <malloc.h>

namespace {
// A block of `bytes` from malloc, and whether glibc mapped it (its mapped bytes, mallinfo2().hblkhd, grew by it).
struct Block {
  void* p = nullptr;
  bool mapped = false;
  explicit Block(size_t bytes) {
    const size_t before = mallinfo2().hblkhd;
    p = std::malloc(bytes);
    asm volatile("" : : "r"(p) : "memory");  // the block escapes: the compiler may not elide malloc/free
    mapped = mallinfo2().hblkhd >= before + bytes;
  }
  ~Block() {
    asm volatile("" : : "r"(p) : "memory");
    std::free(p);
  }
};
}  // namespace

TEST_CASE("tune_host_allocator keeps blocks of 4 MiB and more mapped", "[common]") {
  // Without the tuning: freeing a 24 MiB mapped block raises the threshold to 24 MiB, so a fresh 8 MiB block comes
  // from the heap (the behaviour that fragments a training step). Probed first, before the process tunes.
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) {
    WARN("MALLOC_MMAP_THRESHOLD_ is set, so glibc follows it and tune_host_allocator does nothing: skipped");
    return;
  }
  {
    Block big(24 << 20);
    REQUIRE(big.mapped);
  }
  CHECK_FALSE(Block(8 << 20).mapped);  // what the tuning changes
  malloc_trim(0);  // give the heap's free top back, so the blocks below cannot reuse it
  rlvr::tune_host_allocator();
  {
    Block big(24 << 20);
    CHECK(big.mapped);
  }
  CHECK(Block(8 << 20).mapped);
  CHECK(Block(4 << 20).mapped);
  CHECK_FALSE(Block(1 << 20).mapped);  // below 4 MiB: the heaps, as before
}

TEST_CASE("release_free_host_memory gives back freed heap blocks below a live one", "[common]") {
  // 49 blocks of 1 MiB (below the threshold: the heap), touched; the last one (above the others) kept alive and
  // the 48 below it freed: glibc keeps their pages (free trims only the heap's top) until released.
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) {
    WARN("MALLOC_MMAP_THRESHOLD_ is set: 1 MiB blocks may be mapped, so nothing stays in the heap: skipped");
    return;
  }
  rlvr::tune_host_allocator();
  auto resident_mib = [] {
    std::ifstream f("/proc/self/statm");
    long size = 0, resident = 0;
    f >> size >> resident;
    return static_cast<double>(resident) * 4096.0 / (1 << 20);
  };
  malloc_trim(0);
  const double base = resident_mib();
  std::vector<void*> blocks;
  for (int i = 0; i < 48; ++i) {
    blocks.push_back(std::malloc(1 << 20));
    std::memset(blocks.back(), 1, 1 << 20);
  }
  void* pin = std::malloc(1 << 20);
  std::memset(pin, 1, 1 << 20);
  for (void* p : blocks) {
    asm volatile("" : : "r"(p) : "memory");
    std::free(p);
  }
  const double freed = resident_mib();
  rlvr::release_free_host_memory();
  const double released = resident_mib();
  std::free(pin);
  CAPTURE(base, freed, released);
  CHECK(freed - base >= 40);      // freed, yet still resident
  CHECK(freed - released >= 40);  // given back
}
#endif
