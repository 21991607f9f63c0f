"""Kimi k1.5's long2short methods: model merging (merge.py), shortest rejection sampling and DPO pairs (pairs.py,
build.py: data_prep/build_long2short.py). The DPO stage itself is mmreason/dpo/; long2short RL is a config
preset (configs/long2short_rl.yaml)."""
