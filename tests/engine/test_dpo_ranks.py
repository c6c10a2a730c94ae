"""The pieces of DPO on several processes that need no process group: each rank's share of the pairs, and the
step totals that ride the all-reduce and come back as the same totals (counts whole again)."""

from __future__ import annotations

from app.engine import _hf
from app.engine.distributed import RankEnv, Ranks


def test_the_ranks_share_pair_indices_by_tokens_each_pair_once_the_same_on_every_rank():
    sizes = {0: 40, 1: 10, 2: 35, 3: 12, 4: 30, 5: 8, 6: 22}
    shares = [Ranks(RankEnv(rank, 3)).share_by(list(sizes), sizes.__getitem__) for rank in range(3)]
    assert sorted(i for share in shares for i in share) == list(sizes)  # every pair on exactly one rank
    loads = [sum(sizes[i] for i in share) for share in shares]
    assert max(loads) - min(loads) <= max(sizes.values())
    assert shares == [Ranks(RankEnv(rank, 3)).share_by(list(sizes), sizes.__getitem__) for rank in range(3)]
    assert Ranks().share_by([3, 1, 2], sizes.__getitem__) == [3, 1, 2]  # one process: all of them, in order


def test_pair_totals_summed_over_ranks_give_the_one_process_means():
    _hf.prepare()
    import torch

    from app.engine.dpo_loss import PairTotals

    whole, parts = PairTotals(), [PairTotals(), PairTotals()]
    rows = [
        (torch.tensor([0.5, 0.7]), torch.tensor([0.2, -0.1]), torch.tensor([0.1, 0.3]), [3, 4], 9),
        (torch.tensor([0.9]), torch.tensor([-0.2]), torch.tensor([0.0]), [2], 5),
        (torch.tensor([0.3, 0.4]), torch.tensor([0.6, 0.1]), torch.tensor([0.1, 0.2]), [5, 1], 8),
    ]
    for n, row in enumerate(rows):
        whole.add(*row)
        parts[n % 2].add(*row)
    summed = [a + b for a, b in zip(parts[0].sums(), parts[1].sums(), strict=True)]
    back = PairTotals.from_sums(summed)
    assert (back.pairs, back.wins, back.correct, back.targets) == (5, 2, 15, 22)
    for key, value in whole.means().items():
        assert abs(back.means()[key] - value) < 1e-6, key
    assert PairTotals.from_sums(whole.sums()) == whole
