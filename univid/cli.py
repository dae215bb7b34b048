"""`univid <verb>`: what every Snakemake rule calls, and what users run by hand.

Workflow rules pass `--job-config JSON` (the job's resolved config, see univid.workflow); by hand, `--config FILE`
and `--set KEY=VALUE` build the same config from workflows/config.yaml's defaults. The verbs live in
univid/commands/<area>.py; this module only builds the parser from them and dispatches.
"""

from __future__ import annotations

import argparse
import os
import sys

from univid.commands import (config, data, evaluation, generation, reproduce, suites, training,
                             understanding)

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# In the order `univid --help` lists them: the workflow's jobs first, then the tools around them.
COMMAND_MODULES = (config, data, training, generation, evaluation, understanding, suites, reproduce)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="univid", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from univid.config import ConfigError
    from univid.llm.base import LLMError

    try:
        args.fn(args)
    except (ConfigError, FileNotFoundError, KeyError, ValueError, LLMError) as exc:
        # Bad input: one line naming the thing and what was expected; nothing computed is touched.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"univid {args.verb}: error: {msg}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
