"""`python -m univid <verb>` (and `accelerate launch -m univid train ...`): the same as the `univid` command."""

from univid.cli import main

main()
