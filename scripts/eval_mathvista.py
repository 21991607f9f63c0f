"""MathVista evaluation as a script, for launchers that run files rather than modules:

    deepspeed --num_gpus 8 scripts/eval_mathvista.py run --model CKPT --data testmini.parquet --out results/
    python scripts/eval_mathvista.py score --data testmini.parquet --predictions preds.jsonl --out results/

Same arguments as `python -m mmreason.eval.cli` (see mmreason/eval/cli.py).
"""

import sys

from mmreason.eval.cli import main

if __name__ == "__main__":
    sys.exit(main())
