"""Weights sources (the offline ImageNet weights really classify a photo) and the recipes' freezing and
LRs."""

from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

from core.data.images import load_resized
from core.finetune import recipes
from core.finetune.config import RECIPES
from core.finetune.weights import WeightsError, create, load_into, offline_state_dict, read_state_dict

CAT = Path(__file__).resolve().parents[2] / "assets" / "chelsea_cat.png"
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_offline_weights_are_imagenet_trained():
    model = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    report = load_into(model, offline_state_dict(), "offline")
    assert report.loaded == 296 and not report.missing and not report.mismatched
    x = torch.from_numpy(load_resized(CAT, 224)).float().div(255)
    x = (x - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor([0.229, 0.224, 0.225])[
        :, None, None
    ]
    with torch.no_grad():
        probs = model(x[None]).softmax(-1)[0]
    top = int(probs.argmax())
    names = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
    assert top in CAT_CLASSES, names[top]
    assert "cat" in names[top] or names[top] == "tabby"
    assert probs[list(CAT_CLASSES)].sum() > 0.8


def test_random_init_does_not_classify_the_cat():
    """The same photo through random weights: the cat classes get about their 5/1000 share (the pretrained
    network gives them over 0.8), whatever the seed. The top class's own probability was a flaky
    measure."""
    x = torch.from_numpy(load_resized(CAT, 224)).float()[None] / 255
    for seed in range(3):
        torch.manual_seed(seed)
        model = timm.create_model("efficientnet_lite0", pretrained=False).eval()
        with torch.no_grad():
            probs = model(x).softmax(-1)[0]
        assert probs[list(CAT_CLASSES)].sum() < 0.05


def test_local_file_reports_missing_unexpected_and_mismatched(tmp_path):
    src = timm.create_model("resnet18", pretrained=False, num_classes=10).state_dict()
    src["extra.weight"] = torch.zeros(3)
    save_file(src, str(tmp_path / "w.safetensors"))
    model, report = create("resnet18", str(tmp_path / "w.safetensors"), num_classes=4)
    assert ("fc.weight", (10, 512), (4, 512)) in report.mismatched
    assert "extra.weight" in report.unexpected and set(report.missing) == {"fc.weight", "fc.bias"}
    torch.save({"state_dict": src}, tmp_path / "w.pt")
    assert len(read_state_dict(tmp_path / "w.pt")) == len(src)


def test_wrong_checkpoint_and_bad_files_get_clear_messages(tmp_path):
    save_file({"not.a.key": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightsError, match="provides 0 of the 60 backbone weight tensors"):
        create("resnet18", str(tmp_path / "other.safetensors"), 3)
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="not a readable state_dict"):
        read_state_dict(tmp_path / "junk.pt")
    with pytest.raises(WeightsError, match="offline weights exist only for efficientnet_lite0"):
        create("resnet18", "offline", 3)


def test_hub_offline_fails_clearly(monkeypatch):
    monkeypatch.setattr("core.finetune.weights.hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(WeightsError, match="offline.*--weights offline"):
        create("resnet50", "hub", 10)


def trainable_by_stage(model, groups):
    params = dict(model.named_parameters())
    return {g.name: sum(params[n].numel() for n in g.params if params[n].requires_grad) for g in groups}


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "resnet18"])
def test_each_recipe_freezes_exactly_what_it_says(arch):
    model = timm.create_model(arch, pretrained=False, num_classes=5)
    head = sum(p.numel() for p in model.get_classifier().parameters())
    total = sum(p.numel() for p in model.parameters())
    for recipe in RECIPES:
        groups = recipes.plan(model, recipe, 1e-3, freeze_stages=2)
        recipes.apply(model, groups, 0.01)
        counts = trainable_by_stage(model, groups)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if recipe == "linear_probe":
            assert trainable == head and counts["head (new classifier)"] == head
        elif recipe == "finetune_top":
            frozen = [g for g in groups[:3]]
            assert [g.name for g in frozen] == ["stem", "stage 1", "stage 2"]
            assert all(counts[g.name] == 0 for g in frozen)
            assert trainable == total - sum(g.n_params for g in frozen)
        else:
            assert trainable == total
    if arch == "resnet18":  # the lecture's conv1-3: stem (conv1), layer1 (conv2_x), layer2 (conv3_x)
        groups = recipes.plan(model, "finetune_top", 1e-3, freeze_stages=2)
        assert groups[1].params[0].startswith("layer1.") and groups[2].params[0].startswith("layer2.")
        assert groups[3].trainable and groups[3].params[0].startswith("layer3.")


def test_discriminative_lrs_fall_from_head_to_stem():
    model = timm.create_model("resnet18", pretrained=False, num_classes=5)
    groups = recipes.plan(model, "finetune_full", 1e-3, layer_decay=0.5)
    lrs = [g.lr for g in groups]
    assert lrs == sorted(lrs) and lrs[-1] == 1e-3 and lrs[0] == pytest.approx(1e-3 * 0.5 ** (len(lrs) - 1))
    assert [g.name for g in groups][-1] == "head (new classifier)"
    opt_groups = recipes.apply(model, groups, 0.01)
    assert [g["lr"] for g in opt_groups] == lrs


def test_recipe_recommender_uses_the_lecture_table():
    from core.zoo.recommend import recipe_for

    assert [recipe_for(n).engine_recipe for n in (10, 500, 5_000, 50_000, 10**6)] == [
        "linear_probe",
        "finetune_top",
        "finetune_full",
        "finetune_full",
        "scratch",
    ]
