"""``python -m rawadapt.train STRATEGY ...``: the ``rawadapt train`` command, for ``torchrun``.

    torchrun --nproc_per_node 2 -m rawadapt.train adl --data synth --target CanonEOS70D --out runs/adl

Every rank runs this; the process group is initialised from torchrun's environment (gloo on
CPU, nccl on GPU) and only rank 0 writes files or prints progress.
"""

import sys

from rawadapt.cli.main import main

main(["train", *sys.argv[1:]])
