"""orchestrator-hub: one PostgreSQL/Supabase home for an orchestrator's logs and jobs.

The public API is what ``__all__`` lists; everything else may change between releases.
"""

from orchestrator.config import Settings, get_settings, load_settings
from orchestrator.errors import ConfigError, DatabaseUnavailable, HubError, MigrationError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DatabaseUnavailable",
    "HubError",
    "MigrationError",
    "Settings",
    "__version__",
    "get_settings",
    "load_settings",
]
