"""Placeholder so the editable install resolves; replaced below."""


def main() -> None:
    """Entry point."""
