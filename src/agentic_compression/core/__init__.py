"""Recipes, metrics, provenance and the Pareto frontier: the types every other layer shares."""
