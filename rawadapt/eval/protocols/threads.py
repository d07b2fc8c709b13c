"""How many torch threads a benchmark should use on this machine, right now."""

from __future__ import annotations


def auto_threads() -> int:
    """Torch threads for a benchmark: all of torch's default threads if they are really faster
    here and now, else 1 — decided by timing a small convolution step both ways (~1 s).

    On an idle 2-core machine that is 2. On a busy one it is 1: torch's OpenMP threads wait for
    each other at every operation, so with the cores taken by other processes 2 threads can
    train many times SLOWER than 1 thread (docs/training.md has a measurement).
    A load-average rule would lag (it still counts the synth build that just finished).
    """
    import time

    import torch

    n = torch.get_num_threads()
    if n <= 1:
        return 1
    prev = n
    conv = torch.nn.Conv2d(12, 12, 3, padding=1)
    x = torch.randn(8, 12, 64, 64)

    def step_time(threads: int) -> float:
        torch.set_num_threads(threads)
        best = float("inf")
        for _ in range(4):  # best of 4: noise from other processes only ever adds time
            t0 = time.perf_counter()
            conv(x).square().mean().backward()
            best = min(best, time.perf_counter() - t0)
        return best

    try:
        step_time(1), step_time(n)  # warm-up (oneDNN primitives, thread pool)
        one, many = step_time(1), step_time(n)
    finally:
        torch.set_num_threads(prev)
    return n if many < 0.85 * one else 1
