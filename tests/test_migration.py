"""Issue 26, items 2 and 5: old checkpoints load as the CHANGELOG promises, a state whose order
cannot be checked says so, and every remedy a message names is a call that works (each is run
here as the message spells it).
"""

from __future__ import annotations

import inspect
import re
import warnings
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from bss_sampler import HeuristicCurriculumSampler, LearnedBalanceSampler, score_dataset

from .conftest import PairDataset
from .readme_loop import TinyModel, roundtrip
from .sampler_cases import BSS_SAMPLERS, SAMPLERS, make, scored

N = 20


def _as_written_by_0_1_0(state: dict[str, Any], **config: Any) -> dict[str, Any]:
    """``state`` in bss-sampler 0.1.0's format (``samplers.py`` at 0.1.0: ``state_dict`` and
    ``_config``): version 1, no ``scores_epoch``/``next_scores``/order head, no seed in the
    config but the scoring settings, a pacing callable by its ``__qualname__``."""
    dropped = ("scores_epoch", "next_scores", "order_head", "torch")
    old = {k: v for k, v in state.items() if k not in dropped}
    old["version"] = 1
    settings = {"alpha": 0.2, "criteria": "similarity,loss"}
    kept = {k: v for k, v in state["config"].items() if k != "seed"}
    unsharded = {"num_replicas": -1, "rank": -1}  # what 0.1.0 wrote for num_replicas=None
    old["config"] = {**kept, **settings, **unsharded, **config}
    return old


def _started(sampler: Any, taken: int) -> Any:
    sampler.set_epoch(2)
    iterator = iter(sampler)
    head = [next(iterator) for _ in range(taken)]
    return head, iterator


def _quiet(load: Any, state: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(state)


# -- item 2: a mid-epoch state without an order head --------------------------------------------
@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("version", [1, 2])
def test_a_mid_epoch_state_without_its_order_head_warns_and_names_the_remedy(cls, version):
    sampler = scored(cls, N, lambda0=1.0)
    head, rest = _started(sampler, 3)
    state = {**sampler.state_dict(), "version": version}
    del state["order_head"], state["torch"]
    fresh = make(cls, N, lambda0=1.0)
    with pytest.warns(UserWarning) as caught:
        fresh.load_state_dict(roundtrip(state))
    message = str(caught[0].message)
    assert re.search(r"3 indices into epoch 2 .* its order cannot be checked", message)
    assert "repeats some samples and never yields others" in message
    assert head + list(fresh) == head + list(rest)  # it still resumes (same torch here)
    # the remedy it names: the epoch again from its start, without a warning
    assert "train epoch 2 again from its start (load the state with its 'yielded' set to 0)" in (
        message
    )
    again = make(cls, N, lambda0=1.0)
    _quiet(again.load_state_dict, {**state, "yielded": 0})
    assert list(again) == sampler.epoch_indices().tolist()


@pytest.mark.parametrize("cls", SAMPLERS)
def test_states_that_can_be_checked_or_need_no_check_load_silently(cls):
    sampler = scored(cls, N, lambda0=1.0)
    between = sampler.state_dict()  # epoch 0 not started
    _started(sampler, 3)
    inside = sampler.state_dict()
    old_between = {**between, "version": 1}
    for state in (between, inside, old_between):
        _quiet(make(cls, N, lambda0=1.0).load_state_dict, roundtrip(state))


# -- item 5: 0.1.0's heuristic state with a pacing callable ---------------------------------------
def pace(t: int) -> float:
    return min(1.0, 0.25 + 0.25 * t)


def other_pace(t: int) -> float:
    return min(1.0, 0.5 + 0.25 * t)


def test_a_0_1_0_state_with_a_pacing_callable_loads_and_resumes_exactly():
    sampler = HeuristicCurriculumSampler(range(N), pacing=pace, seed=3)
    sampler.set_scores(torch.rand(N, generator=torch.Generator().manual_seed(1)))
    between = _as_written_by_0_1_0(sampler.state_dict(), pacing="pace")
    head, rest = _started(sampler, 2)
    inside = _as_written_by_0_1_0(sampler.state_dict(), pacing="pace")
    for state in (between, inside):
        fresh = HeuristicCurriculumSampler(range(N), pacing=pace, seed=3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fresh.load_state_dict(roundtrip(state))
        said = [str(w.message) for w in caught]
        assert any("pacing callable it recorded by its name, 'pace'" in m for m in said)
        assert any("cannot be checked" in m for m in said) == (state is inside)  # item 2
        if state is inside:
            assert list(fresh) == list(rest)
        else:
            fresh.set_epoch(2)
            assert list(fresh) == head + list(sampler.epoch_indices()[2:].tolist())
        # the remedy it names: save it again, and that state loads without a warning
        _quiet(
            HeuristicCurriculumSampler(range(N), pacing=pace, seed=3).load_state_dict,
            fresh.state_dict(),
        )


def _remedy_sampler(message: str) -> HeuristicCurriculumSampler:
    """The sampler the message says to build: ``pacing='...'``, or the function it names."""
    named = re.search(r"build the sampler with pacing='(\w+)'", message)
    if named:
        return HeuristicCurriculumSampler(range(N), pacing=named.group(1))
    function = re.search(r"a pacing callable named '(\w+)'", message)
    assert function and "build the sampler with the pacing function it was saved with" in message
    return HeuristicCurriculumSampler(range(N), pacing=globals()[function.group(1)])


@pytest.mark.parametrize(
    ("saved", "built"),
    [("pace", other_pace), ("root", pace), ("pace", "root"), ("linear", "root")],
)
def test_a_0_1_0_pacing_mismatch_names_both_and_its_remedy_works(saved, built):
    sampler = HeuristicCurriculumSampler(range(N), pacing=pace if saved == "pace" else saved)
    sampler.set_scores(torch.rand(N))
    state = _as_written_by_0_1_0(sampler.state_dict(), pacing=saved)
    with pytest.raises(ValueError, match="state_dict was saved with") as error:
        HeuristicCurriculumSampler(range(N), pacing=built).load_state_dict(state)
    message = str(error.value)
    assert "callable:" not in message and len(message) < 300  # no 128-number fingerprint
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'pace': the name-only warning above
        _remedy_sampler(message).load_state_dict(state)


# -- item 5: 0.1.0's scoring settings -----------------------------------------------------------
def _score_loader() -> DataLoader[Any]:
    return DataLoader(PairDataset(n=N), batch_size=8)


def _spelled_call(message: str, opening: str) -> str:
    """The call the message spells from ``opening`` to the bracket that closes it."""
    start = message.index(opening)
    depth, end = 0, start
    while depth or end == start or message[end - 1] != ")":  # to the bracket closing the call
        depth += {"(": 1, ")": -1}.get(message[end], 0)
        end += 1
    return message[start:end]


def _run_remedy(message: str, sampler: Any) -> torch.Tensor:
    """Evaluate the ``sampler.update_scores(model, loader, ...)`` call the message spells."""
    call = (
        _spelled_call(message, "sampler.update_scores(model, loader, ")[:-1] + ", progress=False)"
    )
    scope = {"sampler": sampler, "model": TinyModel(), "loader": _score_loader()}
    return eval(call, {}, scope)


def _run_integration_remedies(message: str, cls: type) -> None:
    """The integrations' calls the message spells work and score as its ``update_scores`` call:
    Lightning's callback runs its pass with them, the ``Trainer`` takes its keywords."""
    torch.manual_seed(0)
    want = _run_remedy(message, make(cls, N))
    lightning = pytest.importorskip("bss_sampler.integrations.lightning")
    from bss_sampler.integrations._common import valuation_pass

    callback = eval(_spelled_call(message, "BalanceSamplingCallback("), vars(lightning))
    sampler = make(cls, N)
    run = valuation_pass(sampler, callback.settings, owner="BalanceSamplingCallback")
    torch.manual_seed(0)
    assert torch.equal(run(TinyModel(), _score_loader()), want)
    transformers = pytest.importorskip("bss_sampler.integrations.transformers")
    keywords = _spelled_call(message, "BalanceSamplingTrainer(..., ")
    given = eval("dict(" + keywords.removeprefix("BalanceSamplingTrainer(..., "), {})
    signature = inspect.signature(transformers.BalanceSamplingTrainer.__init__)
    signature.bind_partial(None, **given)  # each keyword is one of the Trainer's
    assert {key.removeprefix("bss_") for key in given} == set(callback.settings) - {
        key for key, value in callback.settings.items() if value is None
    }


@pytest.mark.parametrize("cls", BSS_SAMPLERS)
def test_0_1_0_default_criteria_in_another_order_are_the_default(cls):
    state = _as_written_by_0_1_0(scored(cls, N).state_dict(), criteria="loss,similarity")
    _quiet(make(cls, N).load_state_dict, state)


@pytest.mark.parametrize("cls", BSS_SAMPLERS)
@pytest.mark.parametrize(
    ("saved", "criteria", "alpha"),
    [
        ({"criteria": "loss"}, ("loss",), 0.2),
        ({"criteria": "similarity"}, ("similarity",), 0.2),
        ({"criteria": "loss,similarity", "alpha": 0.5}, ("similarity", "loss"), 0.5),
        ({"alpha": 0.7, "criteria": "similarity,loss"}, ("similarity", "loss"), 0.7),
    ],
)
def test_the_update_scores_call_a_0_1_0_state_suggests_works(cls, saved, criteria, alpha):
    state = _as_written_by_0_1_0(scored(cls, N).state_dict(), **saved)
    sampler = make(cls, N)
    with pytest.warns(UserWarning, match=r"sampler\.update_scores\(model, loader, ") as caught:
        sampler.load_state_dict(state)
    message = str(caught[0].message)
    torch.manual_seed(0)
    got = _run_remedy(message, make(cls, N))
    torch.manual_seed(0)
    model = TinyModel()
    want = score_dataset(model, _score_loader(), N, alpha=alpha, criteria=criteria, progress=False)
    assert torch.equal(got, want)


@pytest.mark.parametrize(
    "removed",
    [{"alpha": 0.5}, {"criteria": ("loss",)}, {"criteria": "loss,similarity", "alpha": 0.3}],
)
def test_the_update_scores_call_a_constructor_suggests_works(removed):
    with pytest.raises(TypeError) as error:
        LearnedBalanceSampler(range(N), **removed)
    _run_remedy(str(error.value), LearnedBalanceSampler(range(N)))


@pytest.mark.parametrize("cls", BSS_SAMPLERS)
@pytest.mark.parametrize(
    "removed",
    [{"alpha": 0.5}, {"criteria": ("loss",)}, {"criteria": "loss,similarity", "alpha": 0.3}],
)
def test_the_integration_calls_a_constructor_and_a_0_1_0_state_suggest_work(cls, removed):
    # Issue 26 item 4: users of Lightning or the Trainer never call update_scores; the messages
    # sent them there only.
    with pytest.raises(TypeError) as error:
        cls(range(N), **removed)
    _run_integration_remedies(str(error.value), cls)
    state = _as_written_by_0_1_0(scored(cls, N).state_dict(), **removed)
    with pytest.warns(UserWarning, match=r"sampler\.update_scores\(model, loader, ") as caught:
        make(cls, N).load_state_dict(state)
    _run_integration_remedies(str(caught[0].message), cls)


def test_criteria_spelled_as_a_checkpoint_writes_them_are_accepted():
    """The spelling 0.1.0 suggested, ``criteria='loss,similarity'``, is a call that works."""
    sampler = LearnedBalanceSampler(range(N))
    torch.manual_seed(0)
    got = sampler.update_scores(TinyModel(), _score_loader(), criteria="loss,similarity")
    torch.manual_seed(0)
    want = score_dataset(TinyModel(), _score_loader(), N, progress=False)
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match=r"criteria must be .* got 'loss,loss'"):
        sampler.update_scores(TinyModel(), _score_loader(), criteria="loss,loss")
