// The host allocator's policy for rlvr's processes.
#pragma once

namespace rlvr {

// glibc's malloc serves blocks below its mmap threshold from its heaps, and that threshold rises (up to 32 MiB)
// each time a larger mapped block is freed. A training step frees many tensors of a few MiB (activations,
// per-layer gradients) in an order that leaves the heaps fragmented, so the process keeps gigabytes it no longer
// uses (2.3 GB of a 7.2 GB peak in bench/logprobs). This fixes the threshold at 4 MiB: larger blocks are mapped
// and given back when freed. A MALLOC_MMAP_THRESHOLD_ set in the environment wins (glibc reads it itself);
// elsewhere than glibc this does nothing. Call it once, first thing in main().
void tune_host_allocator();

// Gives the heaps' free pages back to the system (glibc's malloc_trim). Blocks below the mmap threshold that were
// freed stay resident while anything above them in the heap is alive, however little of the heap is in use: in a
// training step, ~0.1 GB at the step's peak in bench/logprobs. Costs a walk of the free lists and the page faults
// of reusing what it gave back: call it between large phases (once per checkpointed layer in the backward), not
// per tensor. Elsewhere than glibc this does nothing.
void release_free_host_memory();

}  // namespace rlvr
