"""``python -m azwatch`` is ``azwatch``."""

from azwatch.cli import main

raise SystemExit(main())
