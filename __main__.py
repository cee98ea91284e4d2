"""Entry point for `python -m concurview` and the `concurview` console script."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
