"""The commands of `liifsr`, one module each: every module offers `configure_parser(parser)`,
which adds the command's options, and `run(args) -> int`, which does it and returns the exit
status. `liifsr.cli.COMMANDS` names each command's module and imports it only when that
command runs; `options.py` holds the options several commands share."""
