"""Allow ``python -m kleio``."""

from kleio.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
