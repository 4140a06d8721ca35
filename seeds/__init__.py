"""The factory protocol library as package data: installed as `workstation.seeds` (see pyproject.toml) and found
with importlib.resources, so an installed program needs no repository beside it."""
