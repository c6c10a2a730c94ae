"""Evaluations: evals (items + graders), runs per model and checkpoint, comparisons, pairwise reviews."""
