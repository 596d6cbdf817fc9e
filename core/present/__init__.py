"""Presentation without computation: plots, number and text formatting, the lecture's tables."""
