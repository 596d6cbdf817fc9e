"""Deployment results as tables for the pages (no drawing here): one row per deployable and target, the
models that fit a latency budget per target, and a pair of blocks per target (the MAC ratio against the
measured speed-up). Each row names its target's label, where it runs and its colour, from the one
registry (``core.deploy.targets``), so a chart never guesses which rows are the server's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from core.deploy.targets import SERVER, RunTarget, list_targets

BUDGET_MS = 30.0  # the lecture's real-time budget
COLUMNS = [
    "target",
    "runtime",
    "median ms",
    "p10 ms",
    "p90 ms",
    "speed-up vs eager",
    "speed-up low",
    "speed-up high",
    "first call ms",
    "prepare s",
    "size MiB",
    "max abs diff",
    "top-1 agreement %",
    "MACs",
    "int8 convolutions",
    "status",
    "where",
    "colour",
]
TEXT = ("target", "runtime", "status", "int8 convolutions", "where", "colour")


def _named(target: RunTarget) -> dict[str, str]:
    return {"runtime": target.label, "where": target.where, "colour": target.colour}


def int8_ok(row: dict[str, Any]) -> bool:
    """Whether a runtime's row may be shown as what its name says: an "int8" model with no quantized node
    may not."""
    return not row.get("not_quantized")


def convs_in_int8(row: dict[str, Any]) -> str:
    """'52 of 53 convolutions in int8' (empty for rows that are not int8, or older results without the
    count)."""
    d = row.get("detail") or {}
    return f"{d['convs_int8']} of {d['convs_total']} in int8" if d.get("convs_total") else ""


def frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (target, runtime), in the runtimes' order; a runtime that could not be had says why."""
    rows = []
    for r in results:
        for target in list_targets(SERVER):
            row = r["runtimes"].get(target.key)
            if row is None:
                continue
            if not int8_ok(row):  # a float model under the int8 name: its row says so, no figures
                rows.append(
                    {
                        "target": r["label"],
                        **_named(target),
                        "MACs": r["macs"],
                        "status": row["not_quantized"],
                    }
                )
                continue
            sp = row.get("speedup_vs_eager") or {}
            parity = row.get("parity") or {}
            status = row["error"] or (
                "slower than ONNX Runtime fp32" if row.get("slower_than_fp32") else "ok"
            )
            rows.append(
                {
                    "target": r["label"],
                    **_named(target),
                    "median ms": row.get("median_ms"),
                    "p10 ms": row.get("p10_ms"),
                    "p90 ms": row.get("p90_ms"),
                    "speed-up vs eager": sp.get("ratio"),
                    "speed-up low": sp.get("low"),
                    "speed-up high": sp.get("high"),
                    "first call ms": row.get("first_call_ms"),
                    "prepare s": row.get("prepare_s"),
                    "size MiB": row["size_bytes"] / 2**20 if row.get("size_bytes") else None,
                    "max abs diff": parity.get("max_abs_diff"),
                    "top-1 agreement %": None
                    if parity.get("top1_agreement") is None
                    else 100 * parity["top1_agreement"],
                    "MACs": r["macs"],
                    "int8 convolutions": convs_in_int8(row),
                    "status": status,
                }
            )
    out = pd.DataFrame(rows, columns=COLUMNS)
    numbers = [c for c in COLUMNS if c not in TEXT]
    out[numbers] = out[numbers].astype(float)  # an empty cell is NaN, shown "—"
    out["int8 convolutions"] = out["int8 convolutions"].fillna("")
    return out


def fits(table: pd.DataFrame, budget_ms: float = BUDGET_MS) -> pd.DataFrame:
    """Per runtime (a browser setup counts as one), the targets whose median latency is within the budget."""
    ok = table[table["median ms"].notna() & (table["median ms"] <= budget_ms)]
    order = [t.label for t in list_targets(SERVER)]  # the server's targets, then each browser's
    order += [r for r in ok["runtime"].unique() if r not in order]
    out = (
        ok.groupby("runtime", sort=False)["target"]
        .agg(lambda s: ", ".join(dict.fromkeys(s)))
        .reindex(order)
        .dropna()
    )
    return out.rename("within the budget").reset_index()


def pair(a: dict[str, Any], b: dict[str, Any]) -> pd.DataFrame:
    """B against A in each runtime both ran: their medians (from the same interleaved rounds) and how many
    times faster B runs, beside how many times fewer MACs it has."""
    mac_ratio = a["macs"] / max(b["macs"], 1)
    rows = []
    for target in list_targets(SERVER):
        ra, rb = a["runtimes"].get(target.key, {}), b["runtimes"].get(target.key, {})
        if ra.get("median_ms") and rb.get("median_ms") and int8_ok(ra) and int8_ok(rb):
            rows.append(
                {
                    **_named(target),
                    f"{a['label']} ms": ra["median_ms"],
                    f"{b['label']} ms": rb["median_ms"],
                    "measured speed-up": ra["median_ms"] / rb["median_ms"],
                    "MAC ratio": mac_ratio,
                }
            )
    return pd.DataFrame(rows)


PHONE_CSV = Path(__file__).resolve().parents[2] / "assets" / "phone_latency.csv"


def published_phone_latency() -> pd.DataFrame:
    """Published phone latencies with their device, runtime, precision, threads and source (see the CSV's
    header)."""
    return pd.read_csv(PHONE_CSV, comment="#", keep_default_na=False)


PHONE_HEADERS = {"timm": "timm name", "macs_m": "MACs (millions)", "latency_ms": "latency (ms, batch 1)"}


def published_phone_table() -> pd.DataFrame:
    """The published phone latencies as a page shows them: headers in words, with units."""
    return published_phone_latency().rename(columns=PHONE_HEADERS)


# (file, label, the target it runs on)
EXPORT_ROWS = (
    ("pytorch", "PyTorch", "eager"),
    ("model.onnx", "ONNX fp32", "onnx"),
    ("model.int8.onnx", "ONNX int8", "onnx-int8"),
)


def export_table(record: dict[str, Any]) -> pd.DataFrame:
    """PyTorch, ONNX fp32 and ONNX int8 side by side: top-1 on the run's validation and test splits with
    the validation's Wilson interval, agreement with PyTorch, batch-1 latency, size."""
    rows = []
    colour = {t.key: t.colour for t in list_targets(SERVER)}
    for key, label, target in EXPORT_ROWS:
        entry = record["pytorch"] if key == "pytorch" else record["files"].get(key)
        if entry is None:
            continue
        val, test = entry["scores"].get("val", {}), entry["scores"].get("test", {})
        lat = entry["latency"]
        rows.append(
            {
                "model": label,
                "colour": colour[target],
                "file": "" if key == "pytorch" else key,
                "val top-1 %": 100 * val["top1"] if val else None,
                "val 95% low": 100 * val["wilson_95"][0] if val else None,
                "val 95% high": 100 * val["wilson_95"][1] if val else None,
                "test top-1 %": 100 * test["top1"] if test else None,
                "test 95% low": 100 * test["wilson_95"][0] if test else None,
                "test 95% high": 100 * test["wilson_95"][1] if test else None,
                "agreement with PyTorch %": 100 * val["agreement_with_pytorch"]
                if val and val.get("agreement_with_pytorch") is not None
                else None,
                "latency ms": lat["median_ms"],
                "speed-up vs PyTorch": lat["speedup_vs_pytorch"],
                "size MiB": entry.get("size_bytes", 0) / 2**20 if key != "pytorch" else None,
            }
        )
    out = pd.DataFrame(rows)
    numbers = [c for c in out.columns if c not in ("model", "file", "colour")]
    out[numbers] = out[numbers].astype(float)
    return out


def export_warnings(record: dict[str, Any]) -> list[str]:
    """Plain warnings: int8 losing more than 1 point of top-1 against fp32, or running slower than it."""
    fp32, int8 = record["files"].get("model.onnx"), record["files"].get("model.int8.onnx")
    if not fp32 or not int8:
        return []
    out = []
    a, b = fp32["scores"].get("val"), int8["scores"].get("val")
    if a and b and (a["top1"] - b["top1"]) > 0.01:
        out.append(
            f"int8 loses {100 * (a['top1'] - b['top1']):.1f} points of val top-1 against fp32 "
            f"({100 * b['top1']:.1f}% against {100 * a['top1']:.1f}%). Try per-channel off (per-tensor "
            "weights), "
            "leaving the layers that lose most in float (nodes_to_exclude), or more calibration images."
        )
    if int8["latency"]["median_ms"] > fp32["latency"]["median_ms"]:
        floats = int8.get("float_nodes", {})
        out.append(
            f"int8 is {int8['latency']['median_ms'] / fp32['latency']['median_ms']:.2f}× slower than fp32 "
            f"here: {sum(floats.values())} nodes run in float ("
            + ", ".join(f"{k} ×{v}" for k, v in floats.items())
            + ") between Quantize/DequantizeLinear pairs."
        )
    return out
