"""Every run's TensorBoard event files, read back with TensorBoard's own event reader (EventAccumulator):
the scalars equal the store's metrics for the seeded week's runs; the folder follows a rename and goes
with a delete; a resumed run purges what was logged after its checkpoint, so no step appears twice."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from core.runs import record as runs
from core.runs import tblog

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--data",
    "demo",
    "--demo-per-class",
    "6",
    "--demo-size",
    "32",
    "--image-size",
    "32",
    "--batch-size",
    "8",
    "--threads",
    "1",
    "--quiet",
]


def events(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_the_seeded_runs_event_files_hold_the_stores_metrics(seeded_dir, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(seeded_dir))
    done = [r for r in runs.all_runs() if r.status == "done"]
    assert len(done) == 7
    for run in done:
        folder = tblog.existing(run.id, runs.folder(run))
        assert folder is not None and folder.name == tblog.folder_name(run.id, run.name), run.name
        acc = events(folder)
        m = runs.metrics(run.id)
        store = lambda name: [(int(r.step), r.value) for r in m[m["name"] == name].itertuples()]  # noqa: E731
        for tag, name in (
            ("train/loss", "loss"),
            ("val/loss", "val_loss"),
            ("val/top1", "val_top1"),
            ("time/epoch_s", "epoch_s"),
        ):
            got, want = scalars(acc, tag), store(name)
            assert [s for s, _ in got] == [s for s, _ in want] and want, (run.name, tag)
            assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6), (run.name, tag)
        groups = [g["stage"] for g in run.result["info"]["groups"] if g["trainable"]]
        assert {t for t in acc.Tags()["scalars"] if t.startswith("lr/")} == {f"lr/{g}" for g in groups}
        head = scalars(acc, f"lr/{groups[-1]}")  # the head's LR is the store's "lr"
        assert [v for _, v in head] == pytest.approx([v for _, v in store("lr")], rel=1e-6)
        assert scalars(acc, "hparam/best_val_top1")[0][1] == pytest.approx(run.result["best_top1"], rel=1e-6)
        assert acc.PluginTagToContent("hparams")  # TensorBoard's HParams tab reads this run
        config = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
        assert (
            f"| model | {run.config['model']} |" in config
            and f"| recipe | {run.config['recipe']} |" in config
        )


@pytest.mark.slow
def test_the_folder_follows_a_rename_and_goes_with_a_delete(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    out = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            "-m",
            "core.runs",
            "train",
            *TINY,
            "--epochs",
            "1",
            "--name",
            "first / name",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "ARCHSCOPE_DATA_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    run = runs.all_runs()[0]
    before = tblog.existing(run.id, runs.folder(run))
    assert before is not None and before.name == f"{run.id:04d} first name"  # a slash never nests
    steps = scalars(events(before), "train/loss")
    runs.rename(run.id, "baseline, 1 epoch")
    after = tblog.existing(run.id, runs.folder(run))
    assert after.name == f"{run.id:04d} baseline, 1 epoch" and not before.exists()
    assert scalars(events(after), "train/loss") == steps
    runs.delete(run.id)
    assert tblog.existing(run.id, runs.folder(run)) is None and not after.exists()


def next_second() -> None:
    """Event files are read in the order of their names, ``events.out.tfevents.<second>.<host>.<pid>.<n>``,
    and ``n`` counts writers in this process without leading zeros: within one second the 10th writer's
    file sorts before the 9th's. A crash and its resume are seconds apart; in this one process they
    could share a second, and the crash's file then came last and escaped the resume's purge (once in
    the suite, after 9 writers)."""
    time.sleep(1.01 - time.time() % 1)


@pytest.mark.slow
def test_a_resume_never_logs_a_step_twice(tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    from core.finetune.config import TrainConfig
    from core.runs.session import execute

    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    cfg = TrainConfig(
        data="demo",
        demo_per_class=6,
        demo_size=32,
        image_size=32,
        batch_size=8,
        threads=1,
        recipe="finetune_top",
        epochs=1,
    )
    assert execute(cfg) == 0
    run = runs.all_runs()[0]
    folder = tblog.existing(run.id, runs.folder(run))
    last = scalars(events(folder), "train/loss")[-1][0]
    next_second()
    with SummaryWriter(str(folder)) as w:  # what a crash leaves: steps logged after the last checkpoint
        for step in range(last + 1, last + 3):
            w.add_scalar("train/loss", 99.0, step)
    runs.update(run.id, status="cancelled")
    cfg.epochs = 2
    next_second()
    assert execute(cfg, run.id, resume=True) == 0
    loss = scalars(events(folder), "train/loss")
    assert [s for s, _ in loss] == list(range(1, 2 * last + 1)) and 99.0 not in [v for _, v in loss]
    store = runs.metrics(run.id)
    assert [v for _, v in loss] == pytest.approx(list(store[store["name"] == "loss"]["value"]), rel=1e-6)
