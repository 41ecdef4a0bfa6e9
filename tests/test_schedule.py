"""The learning-rate schedule, worked by hand: which epoch ends halve the rate under each rule."""
from pipeline import presets
from seqkd.config import TrainConfig, build
from seqkd.schedule import LrState, after_epoch, decay_rule
from seqkd.train import Trainer, train
from tests.conftest import tiny_train_config


def rates(rule: str, ppls: list[float], *, bleu_improved: list[bool] | None = None, decay_start: int = 0) -> list:
    """The rate in force after each epoch end, starting at 1.0 with decay factor 0.5."""
    state, out = LrState(1.0), []
    for epoch, ppl in enumerate(ppls, 1):
        improved = bleu_improved[epoch - 1] if bleu_improved else True
        state = after_epoch(state, rule=rule, decay_start=decay_start, lr_decay=0.5, epoch=epoch, valid_ppl=ppl,
                            improved=improved)
        out.append(state.lr)
    return out


def test_the_ppl_rule_halves_from_the_first_worse_epoch_and_every_epoch_after():
    # epoch 3 is worse than epoch 2 (9.5 > 9.0): halve there, and at every epoch end after, even when ppl improves
    assert rates("ppl", [10.0, 9.0, 9.5, 8.0, 7.0]) == [1.0, 1.0, 0.5, 0.25, 0.125]


def test_decay_start_halves_at_the_end_of_that_epoch_and_every_one_after_under_any_rule():
    for rule in ("ppl", "bleu", "none"):
        assert rates(rule, [10.0, 9.0, 8.0, 7.0], decay_start=3) == [1.0, 1.0, 0.5, 0.25], rule


def test_the_bleu_rule_halves_only_after_epochs_without_a_better_bleu():
    # a rising perplexity alone changes nothing; epochs 2 and 4 brought no better BLEU
    assert rates("bleu", [10.0, 12.0, 14.0, 16.0], bleu_improved=[True, False, True, False]) == [1.0, 0.5, 0.5, 0.25]


def test_no_rule_keeps_the_rate_whatever_the_perplexity_does():
    assert rates("none", [10.0, 20.0, 30.0]) == [1.0, 1.0, 1.0]


def test_auto_means_ppl_with_sgd_and_none_with_adam():
    assert decay_rule("auto", "sgd") == "ppl" and decay_rule("auto", "adam") == "none"
    assert decay_rule("bleu", "adam") == "bleu" and decay_rule("ppl", "adam") == "ppl"


def epoch_ends(trainer: Trainer, ppls: list[float]) -> list[float]:
    """Feed the trainer validation results at epoch ends; the optimizer's rate after each."""
    out = []
    for ppl in ppls:
        trainer.after_validation({"valid_ppl": ppl, "valid_bleu": 1.0}, epoch_end=True)
        trainer.state.epoch += 1
        out.append(trainer.optimizer.param_groups[0]["lr"])
    return out


def test_an_adam_preset_student_keeps_its_rate_while_its_reference_perplexity_rises(tiny_data, tmp_path):
    """A preset that switches student.yaml (the paper's SGD recipe) to Adam, as the CPU presets do: a Seq-KD
    student's perplexity on the references rises as it learns the teacher's mode, and that must not halve its
    rate."""
    cfg = build(TrainConfig, [presets.base_config("student"),
                              ({"optimizer": "adam", "lr": 0.003, "data_dir": str(tiny_data),
                                "out_dir": str(tmp_path / "adam"), "device": "cpu",
                                "model": {"hidden": 16, "emb": 16}}, "preset")])
    assert cfg.optimizer == "adam"
    (tmp_path / "adam").mkdir()
    assert epoch_ends(Trainer(cfg), [10.0, 11.0, 12.0, 13.0]) == [cfg.lr] * 4


def test_an_sgd_student_halves_its_rate_once_its_perplexity_rises(tiny_data, tmp_path):
    cfg = tiny_train_config(tiny_data, tmp_path, optimizer="sgd", lr=1.0, decay_start=0)
    tmp_path.mkdir(exist_ok=True)
    assert cfg.decay_on == "auto"
    assert epoch_ends(Trainer(cfg), [10.0, 11.0, 9.0]) == [1.0, 0.5, 0.25]


def test_without_validation_bleu_best_pt_keeps_the_best_perplexity(tiny_data, tmp_path):
    cfg = tiny_train_config(tiny_data, tmp_path, epochs=3, valid_bleu=False, patience=2)
    manifest = train(cfg)
    assert (tmp_path / "best.pt").exists()
    assert manifest["best"]["valid_bleu"] is None and manifest["best"]["valid_ppl"] < 1e6
    assert manifest["epochs_done"] >= 2  # patience counts validations without a better perplexity
