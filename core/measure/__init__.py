"""Measuring modules: MAC counting (fvcore, cross-checked), one timer, profiling, settings, comparisons."""
