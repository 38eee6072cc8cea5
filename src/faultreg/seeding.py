"""Seeded random generators, one independent stream per purpose.

Every random draw in faultreg comes from a generator built here from the study's root seed, a
stream name and integer keys (map index, layer index, training seed). Streams never share
state, so adding a fault rate or a method does not shift the numbers of any other draw, and
nothing reads or changes the global numpy or torch generator.
"""

from __future__ import annotations

import numpy as np
import torch

# Fixed integer per stream. Changing one changes every number drawn from that stream.
STREAMS: dict[str, int] = {
    "data_split": 1,
    "train_subsample": 2,
    "fault_map": 3,
    "weight_init": 4,
    "batch_order": 5,
    "dropout": 6,
    "test_subsample": 7,
    "endurance": 8,
    "dropconnect": 9,
    "fault_injection": 10,
    "repair": 11,
}


def seed_sequence(root_seed: int, stream: str, *keys: int) -> np.random.SeedSequence:
    """Return the seed sequence of ``stream`` under ``root_seed`` and integer ``keys``."""
    if stream not in STREAMS:
        raise KeyError(f"unknown random stream {stream!r}; known streams: {sorted(STREAMS)}")
    return np.random.SeedSequence([int(root_seed), STREAMS[stream], *(int(key) for key in keys)])


def numpy_generator(root_seed: int, stream: str, *keys: int) -> np.random.Generator:
    """Return a numpy generator for ``stream`` under ``root_seed`` and ``keys``."""
    return np.random.Generator(np.random.PCG64(seed_sequence(root_seed, stream, *keys)))


def torch_generator(root_seed: int, stream: str, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
    """Return a torch generator on ``device`` for ``stream`` under ``root_seed`` and ``keys``."""
    seed = int(seed_sequence(root_seed, stream, *keys).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator
