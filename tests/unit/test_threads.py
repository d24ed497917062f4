"""torch's process-wide thread count is set for a block and put back (birdcall._threads, fit, run_inference)."""

from __future__ import annotations

import torch

from birdcall._threads import keeps_torch_threads, torch_threads


def _other_count() -> int:
    return 1 if torch.get_num_threads() != 1 else 2


def test_torch_threads_sets_the_count_inside_and_restores_it_after_an_error():
    before, inside = torch.get_num_threads(), _other_count()
    try:
        with torch_threads(inside):
            assert torch.get_num_threads() == inside
            raise KeyError("boom")
    except KeyError:
        pass
    assert torch.get_num_threads() == before


def test_torch_threads_none_changes_nothing():
    before = torch.get_num_threads()
    with torch_threads(None):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before


def test_keeps_torch_threads_puts_back_what_the_function_set():
    before, other = torch.get_num_threads(), _other_count()

    @keeps_torch_threads
    def scorer_setting_threads():
        torch.set_num_threads(other)
        return torch.get_num_threads()

    assert scorer_setting_threads() == other
    assert torch.get_num_threads() == before
