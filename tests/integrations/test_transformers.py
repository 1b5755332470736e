"""``bss_sampler.integrations.transformers``: what the Trainer refuses, in one process, and through
``examples/integrations/transformers_ddp.py`` the order and an exact resume on 2 processes."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("transformers", reason="transformers is not installed")
pytest.importorskip("accelerate", reason="the Trainer needs accelerate")

from _toy import ToyAV, make_any_sampler, make_sampler
from transformers import TrainingArguments
from transformers_ddp import Recorder, RecordingTrainer, ToyAVLabels, ToyHFModel

from bss_sampler import LearnedBalanceSampler
from bss_sampler.integrations.transformers import (
    SAMPLER_FILE,
    BalanceSamplingTrainer,
    trainer_forward,
)

from ..test_sampler_contract import _another_rng
from .oracles import load_records, verify_run

BATCH_SIZE = 4


def _args(out: Path, **overrides: Any) -> TrainingArguments:
    settings: dict[str, Any] = {
        "output_dir": str(out),
        "per_device_train_batch_size": BATCH_SIZE,
        "num_train_epochs": 3,
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        **overrides,
    }
    return TrainingArguments(**settings)


class TwoProcesses(TrainingArguments):
    """Arguments that report 2 processes, as under torchrun (the check reads only this)."""

    @property
    def world_size(self) -> int:
        return 2


def test_trainer_refuses_what_would_change_the_order(tmp_path: Path) -> None:
    dataset = ToyAVLabels(24)
    learned = make_sampler("learned", dataset, global_order=True)

    def trainer(sampler: Any, args: TrainingArguments | None = None, **kwargs: Any) -> Any:
        return BalanceSamplingTrainer(
            model=ToyHFModel(),
            args=args or _args(tmp_path),
            train_dataset=kwargs.pop("train_dataset", dataset),
            bss_sampler=sampler,
        )

    with pytest.raises(ValueError, match="build it with global_order=True .* sharded 2 ways"):
        sharded = make_sampler("learned", dataset, num_replicas=2, rank=0)
        trainer(sharded, TwoProcesses(output_dir=str(tmp_path), use_cpu=True, report_to="none"))
    with pytest.raises(ValueError, match="built for 24 samples, train_dataset has 30"):
        trainer(learned, train_dataset=ToyAVLabels(30))
    growing = make_sampler("heuristic", dataset, global_order=True)  # 6, 14, 19 samples
    with pytest.raises(ValueError, match="fixes the number of steps per epoch .* from 6 to 19"):
        trainer(growing).train()

    (tmp_path / "checkpoint-3").mkdir()  # resume_from_checkpoint=True finds the newest one
    with pytest.raises(FileNotFoundError, match=f"checkpoint-3/{SAMPLER_FILE} does not exist"):
        trainer(learned).train(resume_from_checkpoint=True)


def test_the_scoring_settings_reach_update_scores_and_smv_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 26 item 4: the Trainer could not pass alpha, criteria or train_mode.
    calls: list[dict[str, object]] = []
    original = LearnedBalanceSampler.update_scores

    @functools.wraps(original)
    def spy(self: LearnedBalanceSampler, model: Any, loader: Any, **settings: Any) -> Any:
        calls.append(settings)
        return original(self, model, loader, **settings)

    monkeypatch.setattr(LearnedBalanceSampler, "update_scores", spy)
    dataset = ToyAVLabels(24)
    trainer = BalanceSamplingTrainer(
        model=ToyHFModel(),
        args=_args(tmp_path, num_train_epochs=1),
        train_dataset=dataset,
        bss_sampler=make_sampler("learned", dataset, global_order=True),
        bss_alpha=0.5,
        bss_criteria=("loss",),
        bss_train_mode=True,
    )
    trainer.train()
    assert calls == [
        {
            "alpha": 0.5,
            "criteria": ("loss",),
            "train_mode": True,
            "forward": trainer_forward,
            "progress": False,
        }
    ]
    with pytest.raises(TypeError, match=r"\(beta=0.1\): LearnedBalanceSampler.update_scores takes"):
        BalanceSamplingTrainer(
            model=ToyHFModel(),
            args=_args(tmp_path),
            train_dataset=dataset,
            bss_sampler=make_sampler("learned", dataset, global_order=True),
            bss_settings={"beta": 0.1},
        )
    smv = make_any_sampler("smv", dataset, global_order=True)
    with pytest.raises(ValueError, match=r"bss_sampler=SMVSampler: its epochs hold N samples plus"):
        BalanceSamplingTrainer(
            model=ToyHFModel(), args=_args(tmp_path), train_dataset=dataset, bss_sampler=smv
        )


def _train(out: Path, resume: Path | None = None, **overrides: Any) -> dict[int, list[int]]:
    """2 epochs of 24 samples in batches of 4 (6 steps each) in this process, a checkpoint
    every 2 steps (``checkpoint-8``: epoch 1 after 2 batches); the indices each epoch trained."""
    torch.manual_seed(0)
    dataset = ToyAVLabels(24)
    settings = {"num_train_epochs": 2, "save_strategy": "steps", "save_steps": 2, **overrides}
    trainer = RecordingTrainer(
        model=ToyHFModel(),
        args=_args(out, optim="sgd", learning_rate=0.1, **settings),
        train_dataset=dataset,
        bss_sampler=make_sampler("learned", dataset, global_order=True),
    )
    trainer.epochs = []
    trainer.add_callback(Recorder(trainer, trainer.epochs))
    trainer.train(resume_from_checkpoint=None if resume is None else str(resume))
    return {entry["epoch"]: entry["indices"] for entry in trainer.epochs}


def test_a_resume_inside_an_epoch_into_another_order_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 26 item 2: bss_sampler.pt held the sampler at its epoch's start, and the Trainer
    # skips the batches trained: under a torch whose random numbers give epoch 1 another order,
    # it skipped batches of that order, silently. The file now holds the position and the
    # restore checks the order.
    _train(tmp_path)
    checkpoint = tmp_path / "checkpoint-8"
    saved = torch.load(checkpoint / SAMPLER_FILE, weights_only=True)
    assert saved["epoch"] == 1 and saved["yielded"] == 8 and "order_head" in saved
    _another_rng(monkeypatch)
    with pytest.raises(
        ValueError,
        match=r"saved 8 indices into epoch 1 .* differs .* Through this integration: to train "
        r"epoch 1 again from its start, resume from the checkpoint taken at its start \(step "
        r"6 here\)",
    ):
        _train(tmp_path / "refused", checkpoint)
    again = _train(tmp_path / "again", tmp_path / "checkpoint-6")  # the remedy
    assert sorted(again[1]) == list(range(24))  # the whole epoch, in the new order
    # ignore_data_skip: the Trainer skips nothing, so there is nothing to check
    unskipped = _train(tmp_path / "unskipped", checkpoint, ignore_data_skip=True)
    assert len(set(unskipped[1])) == len(unskipped[1]) == 16  # epoch 1's first 4 batches

    # a file written by 0.2.0 (the sampler at the epoch's start): resumed, with a warning
    old = {k: v for k, v in saved.items() if k not in ("order_head", "torch")}
    torch.save({**old, "yielded": 0}, checkpoint / SAMPLER_FILE)
    with pytest.warns(UserWarning, match=r"start of epoch 1 .* cannot be checked"):
        _train(tmp_path / "old", checkpoint)


def test_ddp_recipe_batches_match_one_process_and_resume_mid_epoch(
    tmp_path: Path, torchrun: Callable[..., object]
) -> None:
    full = tmp_path / "full"
    # 60 samples in batches of 4: 15 batches, dealt to 2 processes as 8 each (the 16th batch
    # repeats the first); checkpoints at steps 10 (epoch 1, after 2 batches), 20 and the end.
    # Then, in the same processes, a new model, sampler and Trainer resume from step 10.
    torchrun(
        "transformers_ddp.py",
        *("--epochs", "3", "--num-samples", "60", "--out", str(full)),
        *("--save-steps", "10", "--then-resume-from", "10"),
    )
    records = verify_run(full, "learned", ToyAV(60), world_size=2, chunk=BATCH_SIZE)
    assert [len(entry["indices"]) for entry in records[0]] == [32, 32, 32]
    scores = [entry["scores"] for entry in records[0]]
    assert scores[0] == scores[1] != scores[2]  # update_every=2: scored before epochs 0 and 2
    assert (full / "checkpoint-10" / SAMPLER_FILE).is_file()

    assert load_records(full / "resumed") == records
    final = torch.load(full / "final-model.pt", weights_only=True)
    again = torch.load(full / "resumed" / "final-model.pt", weights_only=True)
    assert all(torch.equal(final[name], again[name]) for name in final)


def test_a_run_stopped_at_a_random_step_resumes_exactly_in_a_new_process(
    tmp_path: Path, run_recipe: Callable[..., object]
) -> None:
    # One process (the 2-process recipe run above resumes in the same processes): a checkpoint
    # at a random step inside an epoch (6 steps per epoch), resumed by a new process. The
    # Trainer trains only samplers whose epochs all have one length: the learned one here; the
    # growing curriculum and SMV are refused (test_trainer_refuses..., test_the_scoring...).
    step = random.choice([s for s in range(1, 18) if s % 6])
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    common = ["transformers_ddp.py", "--num-samples", "24", "--epochs", "3"]
    run_recipe([*common, "--out", str(full), "--save-steps", str(step)])
    records = load_records(full)
    assert [len(entry["indices"]) for entry in records[0]] == [24, 24, 24]
    run_recipe([*common, "--out", str(resumed), "--resume", str(full / f"checkpoint-{step}")])
    assert load_records(resumed) == records, f"stopped after step {step}"
