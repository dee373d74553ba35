"""The training exports go straight into TRL's trainers: one optimisation step each on a tiny randomly
initialised Llama on the CPU, with the file loaded by `datasets` exactly as exported (provenance
columns included). Proof that the files are consumable, not a test of training quality."""

import math

import pytest
from datasets import load_dataset

from tests.generation.tiny_model import tiny_model_build

from .export_helpers import export_path, instruction_project
from .test_export_formats import run_export

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(tiny_model_build(tmp_path_factory.mktemp("tiny-llama-trl")))


@pytest.fixture
def exported(admin_user, make_user, tmp_path):
    project, _ = instruction_project(admin_user, make_user)

    def load(format, file_type="jsonl"):
        export = run_export(project, admin_user, format, file_type)
        kind = "json" if file_type == "jsonl" else "parquet"
        return load_dataset(
            kind, data_files=str(export_path(export)), split="train", cache_dir=str(tmp_path / "c")
        )

    return load


def train_args(config_class, tmp_path, **extra):
    return config_class(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        report_to="none",
        max_steps=1,
        per_device_train_batch_size=2,
        logging_steps=1,
        save_strategy="no",
        dataloader_num_workers=0,
        max_length=96,
        seed=0,
        **extra,
    )


def assert_trained(trainer):
    result = trainer.train()
    assert result.global_step == 1
    assert math.isfinite(result.training_loss)


@pytest.mark.parametrize(("format", "file_type"), [("sft", "jsonl"), ("sft_messages", "parquet")])
def test_sft_export_trains_with_sfttrainer(format, file_type, exported, tiny_model, tmp_path):
    from trl import SFTConfig, SFTTrainer

    dataset = exported(format, file_type)
    assert_trained(SFTTrainer(model=tiny_model, args=train_args(SFTConfig, tmp_path), train_dataset=dataset))


@pytest.mark.parametrize(("format", "file_type"), [("dpo", "jsonl"), ("dpo_messages", "parquet")])
def test_dpo_export_trains_with_dpotrainer(format, file_type, exported, tiny_model, tmp_path):
    from trl import DPOConfig, DPOTrainer

    dataset = exported(format, file_type)
    assert_trained(DPOTrainer(model=tiny_model, args=train_args(DPOConfig, tmp_path), train_dataset=dataset))


def test_kto_export_trains_with_ktotrainer(exported, tiny_model, tmp_path):
    from trl import KTOConfig, KTOTrainer

    dataset = exported("kto", "parquet")
    assert sorted(set(dataset["label"])) == [False, True]
    assert_trained(KTOTrainer(model=tiny_model, args=train_args(KTOConfig, tmp_path), train_dataset=dataset))


def test_reward_export_trains_with_rewardtrainer(exported, tiny_model, tmp_path):
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    dataset = exported("reward")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1)
    assert_trained(RewardTrainer(model=model, args=train_args(RewardConfig, tmp_path), train_dataset=dataset))
