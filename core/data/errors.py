"""The one error type data ingestion raises; its message is meant for the user."""


class DatasetError(ValueError):
    """A dataset that cannot be used, with the reason in plain words."""
