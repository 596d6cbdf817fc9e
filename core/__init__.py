"""Archscope core: blocks, profiling and (later) backbones and fine-tuning. Never imports Streamlit."""
