"""Measuring modules: MAC counting (fvcore, cross-checked), one timer, profiling, settings, the memory
budget, the roofline."""
