"""Find device drivers through the `workstation.drivers` entry-point group.

The built-in drivers register there exactly as a third-party package would. A driver that fails to load is kept in
the list with its error, so the user sees why it is missing instead of it vanishing. A driver must implement the
interface of the kind it declares (drivers/interfaces.py: `KIND_INTERFACES`); one that does not is listed with a
sentence saying what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from drivers.interfaces import Device, interface_problem

GROUP = "workstation.drivers"


@dataclass(frozen=True, slots=True)
class DriverEntry:
    name: str
    target: str  # "module:Class"
    distribution: str
    cls: type[Device] | None
    error: str | None  # why it could not be loaded

    @property
    def ok(self) -> bool:
        return self.cls is not None


def load_failure(target: str, exc: Exception) -> str:
    """Why the driver `target` ("module:Class") could not be loaded, in a sentence for the person installing it."""
    module = target.split(":", 1)[0]
    if isinstance(exc, ModuleNotFoundError):
        return (f"its code needs the Python module {exc.name!r}, which is not installed: install the driver package "
                "with its dependencies (pip install <package>)")
    if isinstance(exc, AttributeError) and ":" in target:
        return (f"its package names {target!r}, but {module} has no {target.split(':', 1)[1]!r}: the package's entry "
                "point or its code is wrong (ask its manufacturer)")
    if isinstance(exc, SyntaxError):
        return f"its code in {module} does not compile (line {exc.lineno}: {exc.msg}): ask its manufacturer"
    return f"its code in {module} failed when loaded ({exc}): ask its manufacturer"


def _load(ep: EntryPoint) -> DriverEntry:
    dist = ep.dist.name if ep.dist is not None else "?"
    try:
        cls = ep.load()
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, not raised
        return DriverEntry(ep.name, ep.value, dist, None, load_failure(ep.value, exc))
    problem = interface_problem(cls)
    if problem:
        return DriverEntry(ep.name, ep.value, dist, None, problem)
    return DriverEntry(ep.name, ep.value, dist, cls, None)


def discover() -> list[DriverEntry]:
    """Every registered driver, loaded or with its load error, sorted by name (duplicates kept once)."""
    seen: dict[str, DriverEntry] = {}
    for ep in entry_points(group=GROUP):
        seen.setdefault(ep.name, _load(ep))
    return sorted(seen.values(), key=lambda e: e.name)


def driver_for(kind: str, name: str | None = None, *, model: str | None = None) -> type[Device]:
    """The driver class for a device kind ("light" or "needling"), or the one named. With `model` (the model a device
    is known to report, e.g. an emulator's), the first driver of that kind whose INFO.model_prefixes accept it: a
    manufacturer's driver installed beside the built-in ones never takes the built-in emulators in simulation.
    LookupError says what exists."""
    entries = discover()
    for e in entries:
        if e.cls is None:
            continue
        if name:
            if e.name == name:
                return e.cls
        elif e.cls.INFO.kind == kind and (model is None or not e.cls.INFO.model_prefixes
                                         or model.startswith(e.cls.INFO.model_prefixes)):
            return e.cls
    found = ", ".join(f"{e.name} ({'ok' if e.ok else 'failed: ' + str(e.error)})" for e in entries) or "none"
    which = f"{name} driver" if name else f"{kind} driver for the model {model!r}" if model else f"{kind} driver"
    raise LookupError(f"no loadable {which} is registered; found: {found}")
