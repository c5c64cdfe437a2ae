"""The CLI's consoles. Soft wrap: rich would otherwise break long lines (file paths in
error messages among them) at the terminal's width, so that they cannot be copied or
searched for when output goes to a pipe or a log."""

from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
