"""CLI verbs grouped by area. Each module defines `register(sub, cfg_args)` adding its subparsers; a subparser's
`fn(args)` does the work. `univid.cli.COMMAND_MODULES` lists the modules. Shared helpers: univid.cli._full_config,
univid.cli._job."""
