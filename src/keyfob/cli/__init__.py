"""The ``keyfob`` command line: thin typer layers that parse, call, and print."""
