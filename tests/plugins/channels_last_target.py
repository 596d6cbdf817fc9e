"""A made-up server target, in one file: its registry entry and its adapter. PyTorch eager on a
channels-last copy of the model and input, a memory layout the other targets do not time. The tests
import it, or name it in ARCHSCOPE_TARGETS, and then find it on every table and chart in its own colour."""

from __future__ import annotations

import copy

import torch

from core.deploy.runtimes import Context, Prepared, eager, server_target

KEY = "eager-cl"
LABEL = "PyTorch channels-last"
COLOUR = "#00a6a6"


@server_target(KEY, LABEL, COLOUR, help="eager on a channels-last copy of the model and its input")
def prepare_channels_last(ctx: Context) -> Prepared:
    model = copy.deepcopy(ctx.model).to(memory_format=torch.channels_last)
    ready = eager(model, ctx.x.contiguous(memory_format=torch.channels_last))
    ready.runtime = KEY
    return ready
