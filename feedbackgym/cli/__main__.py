"""``python -m feedbackgym.cli`` runs the CLI (as ``python -m feedbackgym`` does)."""

from feedbackgym.cli import main

raise SystemExit(main())
