"""`python -m actionlstm ...` is the `actionlstm` command (and what `torchrun -m actionlstm` launches)."""

from actionlstm.cli import main

main()
