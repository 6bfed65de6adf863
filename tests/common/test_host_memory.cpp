// tune_host_allocator: blocks of 4 MiB and more are mapped (and so given back when freed) even after a larger
// block was freed, which without it raises glibc's mmap threshold and sends such blocks to the heaps. (A block
// that fits in free heap space is served from it either way: the threshold decides how the heap grows.)
#include <catch2/catch.hpp>

#include <cstdlib>

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
#endif
