"""The verbs of `univid`, one module per area. Each module defines `register(sub)`, adding its subparsers, and
`cmd_<verb>(args)` functions that do the work; `univid.cli` only builds the parser from them and dispatches.
What the verbs share (config options, a job's config, upstream paths) is in `univid.commands.common`."""
