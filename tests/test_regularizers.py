"""DropConnect, fault injection and the SGD update, against hand values and closed forms."""

import math

import pytest
import torch
from scipy import stats

from faultreg.chip import CrossbarChip, StorageSettings
from faultreg.crossbar import CellFormat, apply_stuck_masks
from faultreg.models import MLP, initialize_weights
from faultreg.regularizers import DropConnect, FaultInjection, bernoulli_positions
from faultreg.training import MomentumSGD


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def binomial_bounds(trials: int, probability: float, tail: float = 1e-6) -> tuple[int, int]:
    """Counts outside these bounds have probability below 2 * tail under Binomial(trials, p)."""
    return int(stats.binom.ppf(tail, trials, probability)), int(stats.binom.isf(tail, trials, probability))


def test_bernoulli_positions_edge_cases():
    assert bernoulli_positions(10, 0.0, generator()).tolist() == []
    assert bernoulli_positions(5, 1.0, generator()).tolist() == [0, 1, 2, 3, 4]
    assert bernoulli_positions(0, 0.5, generator()).tolist() == []
    with pytest.raises(ValueError, match="outside"):
        bernoulli_positions(10, 1.5, generator())


def test_bernoulli_positions_are_distinct_sorted_and_in_range():
    positions = bernoulli_positions(100_000, 0.3, generator(1))
    assert torch.all(positions[1:] > positions[:-1])
    assert int(positions.min()) >= 0
    assert int(positions.max()) < 100_000


def test_bernoulli_positions_count_is_binomial():
    total, probability = 200_000, 0.05
    low, high = binomial_bounds(total, probability)
    count = bernoulli_positions(total, probability, generator(2)).numel()
    assert low <= count <= high


def test_every_index_is_hit_with_probability_p():
    # Index 0 and the last index are the edge cases of the gap construction.
    total, probability, draws = 7, 0.2, 20_000
    hits = torch.zeros(total)
    source = generator(3)
    for _ in range(draws):
        hits[bernoulli_positions(total, probability, source)] += 1
    low, high = binomial_bounds(draws, probability)
    assert all(low <= int(count) <= high for count in hits), hits


def test_dropconnect_keep_scale_values_and_rate():
    weight = torch.zeros(300, 200)
    scale = DropConnect(0.3, generator(4)).keep_scale(weight)
    values = torch.unique(scale).tolist()
    assert len(values) == 2
    assert values[0] == 0.0
    assert values[1] == pytest.approx(1 / 0.7)
    kept_weights = int(torch.count_nonzero(scale))
    low, high = binomial_bounds(weight.numel(), 0.7)
    assert low <= kept_weights <= high
    # Inverted scaling keeps the expected weight: E[mask / (1 - p)] = 1.
    assert float(scale.mean()) == pytest.approx(1.0, abs=0.02)


def test_dropconnect_rejects_probability_one():
    with pytest.raises(ValueError, match="outside"):
        DropConnect(1.0, generator())


def test_injected_faults_keep_real_stuck_cells(monkeypatch):
    # 4-bit weights in two 2-bit cells, sign-magnitude (one group). Written code 6 = 0b01_10.
    cell_format = CellFormat(4, 2, "sign_magnitude")
    injection = FaultInjection(0.5, 1.0, cell_format, generator())
    # Real chip: the high cell is SA0 (clears bits 0b1100). Injected: both cells SA1.
    real_and, real_or = torch.tensor([[0b0011]], dtype=torch.int32), torch.tensor([[0]], dtype=torch.int32)
    injected = (torch.tensor([[0b1111]], dtype=torch.int32), torch.tensor([[0b1111]], dtype=torch.int32))
    monkeypatch.setattr(injection, "draw_masks", lambda shape, device: injected)
    and_mask, or_mask = injection.combine((1,), torch.device("cpu"), real_and, real_or)
    code = apply_stuck_masks(torch.tensor([[6]], dtype=torch.int32), and_mask, or_mask)
    # High cell stays SA0 (reads 0), low cell is injected SA1 (reads 3): code 0b00_11 = 3.
    assert int(code) == 3


def test_injected_sa0_does_not_clear_real_sa1(monkeypatch):
    cell_format = CellFormat(4, 2, "sign_magnitude")
    injection = FaultInjection(0.5, 0.0, cell_format, generator())
    real_and, real_or = torch.tensor([[0b1111]], dtype=torch.int32), torch.tensor([[0b1100]], dtype=torch.int32)
    injected = (torch.tensor([[0b0000]], dtype=torch.int32), torch.tensor([[0]], dtype=torch.int32))
    monkeypatch.setattr(injection, "draw_masks", lambda shape, device: injected)
    and_mask, or_mask = injection.combine((1,), torch.device("cpu"), real_and, real_or)
    code = apply_stuck_masks(torch.tensor([[6]], dtype=torch.int32), and_mask, or_mask)
    # Real SA1 in the high cell (reads 3), injected SA0 in the low cell (reads 0): 0b11_00 = 12.
    assert int(code) == 12


@pytest.mark.parametrize("encoding", ["differential", "offset"])
def test_injected_cell_rates_match_rate_and_share(encoding):
    cell_format = CellFormat(16, 2, encoding)
    rate, share = 0.1, 0.8
    injection = FaultInjection(rate, share, cell_format, generator(5))
    shape = (64, 50)
    and_mask, or_mask = injection.draw_masks(shape, torch.device("cpu"))
    assert and_mask.shape == (cell_format.groups, *shape)
    cells = cell_format.groups * math.prod(shape)
    for position in range(cell_format.slices):
        bits = cell_format.slice_mask(position)
        sa0 = int(torch.count_nonzero((and_mask & bits) == 0))
        sa1 = int(torch.count_nonzero((or_mask & bits) == bits))
        low0, high0 = binomial_bounds(cells, rate * (1 - share))
        low1, high1 = binomial_bounds(cells, rate * share)
        assert low0 <= sa0 <= high0, (position, sa0)
        assert low1 <= sa1 <= high1, (position, sa1)
        # A cell is never both SA0 and SA1.
        assert int(torch.count_nonzero(((and_mask & bits) == 0) & ((or_mask & bits) != 0))) == 0


def test_chip_perturbs_only_in_training_mode():
    model = MLP([8])
    initialize_weights(model, generator(6))
    storage = StorageSettings(CellFormat(16, 2, "differential"), "fixed", 1.0)
    chip = CrossbarChip(model, storage)
    images = torch.rand(4, 1, 28, 28, generator=generator(7))
    chip.eval()
    clean = chip(images)
    chip.dropconnect = DropConnect(0.5, generator(8))
    chip.fault_injection = FaultInjection(0.2, 0.8, storage.cell_format, generator(9))
    chip.eval()
    assert torch.equal(chip(images), clean)
    chip.train()
    assert not torch.allclose(chip(images), clean)


def test_dropconnect_gradient_reaches_kept_weights_only():
    model = MLP([3])
    initialize_weights(model, generator(10))
    storage = StorageSettings(CellFormat(16, 2, "differential"), "fixed", 4.0)
    chip = CrossbarChip(model, storage)
    chip.dropconnect = DropConnect(0.5, generator(11))
    chip.train()
    chip(torch.rand(2, 1, 28, 28, generator=generator(12))).sum().backward()
    replay = DropConnect(0.5, generator(11))
    for name, module in [("layers.1", chip.model.layers[1]), ("layers.4", chip.model.layers[4])]:
        scale = replay.keep_scale(module.weight)
        dropped = scale == 0
        assert torch.all(module.weight.grad[dropped] == 0), name


def test_momentum_sgd_matches_hand_update():
    # w = 1, gradient of 0.5 * w**2 is w; lr 0.1, momentum 0.9, weight decay 0.1.
    weight = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = MomentumSGD([weight], learning_rate=0.1, momentum=0.9, weight_decay=0.1)
    expected_weight, velocity = 1.0, 0.0
    for _ in range(3):
        optimizer.zero_grad()
        (0.5 * weight**2).sum().backward()
        optimizer.step()
        gradient = expected_weight + 0.1 * expected_weight
        velocity = 0.9 * velocity + gradient
        expected_weight -= 0.1 * velocity
    assert float(weight.detach()) == pytest.approx(expected_weight, rel=1e-6)
    # First step by hand: g = 1.1, v = 1.1, w = 1 - 0.11 = 0.89.
    check = torch.nn.Parameter(torch.tensor([1.0]))
    single = MomentumSGD([check], learning_rate=0.1, momentum=0.9, weight_decay=0.1)
    (0.5 * check**2).sum().backward()
    single.step()
    assert float(check.detach()) == pytest.approx(0.89)


def test_momentum_sgd_matches_torch_sgd():
    torch_weight = torch.nn.Parameter(torch.linspace(-1, 1, 12).reshape(3, 4))
    our_weight = torch.nn.Parameter(torch_weight.detach().clone())
    reference = torch.optim.SGD([torch_weight], lr=0.05, momentum=0.9, weight_decay=5e-4)
    ours = MomentumSGD([our_weight], learning_rate=0.05, momentum=0.9, weight_decay=5e-4)
    target = torch.arange(12.0).reshape(3, 4)
    for _ in range(5):
        for weight, optimizer in ((torch_weight, reference), (our_weight, ours)):
            optimizer.zero_grad()
            ((weight - target) ** 2).sum().backward()
            optimizer.step()
    assert torch.allclose(torch_weight, our_weight, atol=1e-6)
