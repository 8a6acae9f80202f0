"""`python -m assistant.cli ...`: the same as the `citeline` command."""

from assistant.cli import main

raise SystemExit(main())
