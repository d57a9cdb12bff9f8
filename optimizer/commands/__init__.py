"""The `optimize` subcommands that are not the optimize run itself, one module each.

Each module has `build_parser()` (an optimizer.cli.Parser) and `run(args) -> exit code`; optimizer.cli.COMMANDS
names them and imports one only when it is used.
"""
