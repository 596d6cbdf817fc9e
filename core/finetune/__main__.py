"""The old spelling ``python -m core.finetune ...`` (and ``torchrun ... -m core.finetune ...``): forwards
to ``python -m core.runs train ...`` with a one-line notice."""

from core.cli import forward

if __name__ == "__main__":
    forward("python -m core.finetune", "core.runs", ["train"])
