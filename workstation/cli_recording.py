"""Command registration (placeholder until its issue's owner fills it: registers nothing)."""


def register(subparsers) -> None:
    return None
