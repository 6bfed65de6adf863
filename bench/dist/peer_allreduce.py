"""torch.distributed (gloo, CPU) all_reduce bandwidth with the same sizes and method as bench_dist:
median over iterations of the slowest rank, after 3 warmup calls. Usage: python peer_allreduce.py --nproc 2"""
import argparse
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def time_it(iters, fn):
    ts = []
    for _ in range(iters):
        dist.barrier()
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    t = torch.tensor([statistics.median(ts)], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def worker(rank, world, port, budget):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    if rank == 0:
        print(f"# torch.distributed all_reduce (sum, float32), gloo, {world} ranks, torch {torch.__version__}, "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
        print(f"{'bytes':<10} {'iters':>10} {'time_us':>12} {'algbw_GB/s':>12} {'busbw_GB/s':>12}")
    nbytes = 1024
    while nbytes <= 64 * 1024 * 1024:
        t = torch.ones(nbytes // 4, dtype=torch.float32)
        for _ in range(3):
            dist.all_reduce(t)
        est = time_it(2, lambda: dist.all_reduce(t))
        iters = int(min(max(budget / max(est, 1e-6), 5), 200))
        it = torch.tensor([iters], dtype=torch.float64)
        dist.all_reduce(it, op=dist.ReduceOp.MIN)
        iters = int(it.item())
        s = time_it(iters, lambda: dist.all_reduce(t))
        alg = nbytes / s / 1e9
        if rank == 0:
            print(f"{nbytes:<10} {iters:>10} {s * 1e6:>12.1f} {alg:>12.3f} {alg * 2 * (world - 1) / world:>12.3f}",
                  flush=True)
        nbytes *= 4
    dist.barrier()
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--budget", type=float, default=0.3)
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(a.nproc, port, a.budget), nprocs=a.nproc)


if __name__ == "__main__":
    main()
