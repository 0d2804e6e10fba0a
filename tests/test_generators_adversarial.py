"""The [VAR] adversarial family for FCFS and shortest-first (``adversarial_fcfs_sf``)."""

from __future__ import annotations

import numpy as np
import pytest

from fluidopt.deployment import unit_deployment
from fluidopt.errors import InputError
from fluidopt.executor.engine import simulate
from fluidopt.generators import adversarial_fcfs_sf


def test_structure_fats_first_then_thins():
    w, cap = adversarial_fcfs_sf(9, n_fat=3, n_thin=9)
    assert cap == 9 and len(w) == 12
    assert (w.arrival == 0).all()
    # fats: prompt C − 1 = 8, output 1 (peak exactly C); thins: prompt 1, output 2 (peak 3)
    assert w.prompt.tolist() == [8] * 3 + [1] * 9
    assert w.output.tolist() == [1] * 3 + [2] * 9
    assert list(w.type) == ["fat"] * 3 + ["thin"] * 9
    assert w.id.tolist() == list(range(12))  # fats first in FCFS (arrival, id) order
    assert w.peak_footprint.max() == 9
    assert w.meta["capacity"] == 9 and w.meta["n_fat"] == 3 and w.meta["n_thin"] == 9


@pytest.mark.parametrize(("capacity", "fats"), [(4, 2), (16, 4), (17, 5), (100, 10), (101, 11)])
def test_default_counts_are_ceil_sqrt_c_fats_and_c_thins(capacity, fats):
    w, _ = adversarial_fcfs_sf(capacity)
    assert w.meta["n_fat"] == fats and w.meta["n_thin"] == capacity
    assert (w.type == "fat").sum() == fats


@pytest.mark.parametrize(
    ("args", "field"),
    [((3,), "capacity"), ((True,), "capacity"), ((9.0,), "capacity"), ((9,), None)],
)
def test_bad_capacity(args, field):
    if field is None:
        adversarial_fcfs_sf(*args)  # 9 is fine
        return
    with pytest.raises(InputError) as exc:
        adversarial_fcfs_sf(*args)
    assert exc.value.field == field


def test_bad_counts():
    with pytest.raises(InputError) as exc:
        adversarial_fcfs_sf(9, n_fat=-1)
    assert exc.value.field == "n_fat"
    with pytest.raises(InputError):
        adversarial_fcfs_sf(9, n_fat=0, n_thin=0)


def tct(policy: str, capacity: int, **counts: int) -> tuple[float, int]:
    w, cap = adversarial_fcfs_sf(capacity, **counts)
    s = simulate(w, unit_deployment(cap), policy).summary()
    assert s["unfinished"] == 0
    return s["tct"], s["evictions"]


def test_hand_worked_c9_mcsf_serves_fats_first():
    """C = 9, 3 fats, 9 thins, MC-SF (true lengths).

    Fats (o = 1) sort first and each fills C, so they run alone at epochs 0, 1, 2:
    c = 1, 2, 3 (Σ 6). Thins from epoch 3: k started together peak at 3k ≤ 9, so 3 per
    batch; a batch blocks the next until it completes (at its last round the residents
    hold 9). Batches complete at 5, 7, 9: Σ 3·(5 + 7 + 9) = 63. Total 69.
    """
    assert tct("mc-sf", 9, n_fat=3, n_thin=9) == (69.0, 0)


def test_hand_worked_c9_sorted_f_serves_thins_first():
    """Same instance, Sorted-F.

    Batches over requests sorted by output: each fat alone (two fats exceed C), F = 1/1;
    thins: prefixes of up to 3 are feasible, F(k) = 2k/k², smallest at k = 3 (2/3). Run
    in ascending F: three thin batches complete at 2, 4, 6 (Σ 3·12 = 36), then the fats
    at 7, 8, 9 (Σ 24). Total 60 < 69.
    """
    assert tct("sorted-f", 9, n_fat=3, n_thin=9) == (60.0, 0)


def test_hand_worked_c9_fcfs_serves_fats_first_and_evicts():
    """Same instance, FCFS (no look-ahead; projected usage s + 1 per admission).

    Fats one per epoch (c = 1, 2, 3). Epoch 3: thins admitted while the projected
    usage fits, 4 × (1 + 1) = 8 ≤ 9. Epoch 4 they would hold 4 × 3 = 12 > 9: the most
    recently admitted (ties: larger id) is evicted, the other 3 complete at 5. The same
    happens at epoch 5 (c = 7), and the last 3 complete at 9. Σ = 6 + 3·(5 + 7 + 9) = 69,
    with 2 evictions.
    """
    assert tct("fcfs", 9, n_fat=3, n_thin=9) == (69.0, 2)


def test_ratio_grows_with_capacity():
    """The family's point: FCFS / SF lose more as C grows (defaults ⌈√C⌉ fats, C thins)."""
    ratios = []
    for cap in (16, 64, 256):
        sf, _ = tct("mc-sf", cap)
        best, _ = tct("sorted-f", cap)
        ratios.append(sf / best)
    assert ratios[0] > 1.0
    assert np.all(np.diff(ratios) > 0)
    # √C doubles from 16 to 64 to 256; the ratio should grow substantially, not by a hair
    assert ratios[2] > 1.5 * ratios[0]
