"""The learning-curve figure places a fine-tuned model after the updates of the models it started from."""
import json

from seqkd.report import Entry, parent_of, updates_before


def manifest(folder, updates, init_from=None):
    folder.mkdir(parents=True)
    lineage = {"init_from": None if init_from is None else {"path": str(init_from), "lineage": {}}}
    (folder / "manifest.json").write_text(json.dumps({"updates": updates, "lineage": lineage}))
    return folder / "best.pt"


def test_fine_tuned_curves_continue_the_parents_updates(tmp_path):
    scratch = manifest(tmp_path / "seq-kd", 2664)
    tuned = manifest(tmp_path / "tuned", 227, init_from=scratch)
    twice = manifest(tmp_path / "twice", 10, init_from=tuned)
    assert updates_before(scratch) == 0
    assert updates_before(tuned) == 2664
    assert updates_before(twice) == 2664 + 227
    assert updates_before(tmp_path / "no-manifest" / "best.pt") == 0


def test_a_fine_tuned_model_is_compared_with_the_entry_it_started_from(tmp_path):
    entries = [Entry("student", name, tmp_path / name / "best.pt", "1x8") for name in ("baseline", "seq-kd")]
    lineage = {"init_from": {"path": str(tmp_path / "seq-kd" / "." / "best.pt"), "lineage": {}}}
    assert parent_of({"lineage": lineage}, entries) == entries[1]
    assert parent_of({"lineage": {"init_from": None}}, entries) is None
    assert parent_of({"lineage": {"init_from": {"path": str(tmp_path / "elsewhere.pt")}}}, entries) is None
