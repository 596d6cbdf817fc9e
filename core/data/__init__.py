"""Datasets: safe zip extraction, validation and health report, stratified splits, decoded cache, demo set."""

from core.data.errors import DatasetError

__all__ = ["DatasetError"]
