"""Direct preference optimisation (stage dpo): the loss (loss.py) and the recipe (loop.py)."""
