"""The package's public API is exactly what __all__ lists."""

import orchestrator


def test_all_names_exist_and_are_documented():
    """Every public name resolves and says why it exists."""
    for name in orchestrator.__all__:
        value = getattr(orchestrator, name)
        if name != "__version__":
            assert value.__doc__, name


def test_no_public_name_is_left_out_of_all():
    """Names without a leading underscore in the package namespace are all in __all__."""
    public = {n for n in vars(orchestrator) if not n.startswith("_")}
    modules = {"config", "errors", "db", "cli", "logs", "jobs"}
    assert public - modules == set(orchestrator.__all__) - {"__version__"}
