"""The `baepo` command (Typer + Rich). It talks to a running Baepo over HTTP only."""
