"""``python -m feedbackgym`` runs the CLI."""

from feedbackgym.cli import main

raise SystemExit(main())
