"""concurview: see how Python runs concurrent work, switch by switch."""

__version__ = "0.1.0"
