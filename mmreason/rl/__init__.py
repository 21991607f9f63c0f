"""The RL recipe: rollout, group-relative advantages, policy losses, prompt sampling.

The algorithm math lives in small pure functions behind name registries:
`advantages.ADVANTAGE_ESTIMATORS` (algo.advantage), `losses.POLICY_LOSSES`
(algo.loss) and `losses.LOSS_AGGREGATIONS` (algo.loss_agg); `presets.PRESETS`
maps each `algo.name` (grpo, dapo, dr_grpo, k15) to a choice of the three, and
`reference.ReferencePolicy` decides the reference policy. `sampler.PromptSampler` decides
which prompts each step trains on (uniform, k1.5 curriculum, k1.5 prioritized),
and `repetition` finds degenerate repeated tails in generated responses.
"""
