"""Protocol library: factory protocols and reference tables in seeds/, a clinic's own protocols, and their schema."""

from workstation.protocols.library import Library, check_against_tables, load_library, seeds_dir
from workstation.protocols.model import (
    LESION_TYPES,
    MODALITIES,
    SKIN_TYPES,
    UV_FORBIDDEN_LESIONS,
    CourseRules,
    LightRules,
    NeedlingRules,
    Protocol,
    ProtocolError,
    Source,
)
from workstation.protocols.tables import Tables, load_tables

__all__ = [
    "LESION_TYPES", "MODALITIES", "SKIN_TYPES", "UV_FORBIDDEN_LESIONS", "CourseRules", "Library", "LightRules",
    "NeedlingRules", "Protocol", "ProtocolError", "Source", "Tables", "check_against_tables", "load_library",
    "load_tables", "seeds_dir",
]
