"""concurview: see how Python runs concurrent work, switch by switch."""

__version__ = "0.1.0"


def version_text() -> str:
    """`concurview --version`: the version, whether the C speedups are in use, the Python and Textual."""
    import importlib.metadata
    import platform

    from .engines.speedups import implementation

    try:
        textual = "textual " + importlib.metadata.version("textual")
    except importlib.metadata.PackageNotFoundError:
        textual = "textual not installed"
    return f"concurview {__version__} ({implementation()}; Python {platform.python_version()}; {textual})"
