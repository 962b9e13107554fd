"""The package's public API is exactly what __all__ lists."""

import types

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
    # Subpackages appear here once any test imported them; they are not API names.
    modules = {n for n, v in vars(orchestrator).items() if isinstance(v, types.ModuleType)}
    assert public - modules == set(orchestrator.__all__) - {"__version__"}


def test_query_package_exports_are_documented():
    """orchestrator.query's __all__ resolves, each name with a docstring."""
    import orchestrator.query as query

    for name in query.__all__:
        assert getattr(query, name).__doc__, name
    public = {n for n in vars(query) if not n.startswith("_")}
    assert public - {"calls", "model", "reading", "tailing", "timespec"} == set(query.__all__)
