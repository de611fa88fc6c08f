"""Predictive customer lifetime value: the models (BG/NBD, MBG/NBD, Pareto/NBD; Gamma-Gamma
for spend), their fitting, the choice of model and the published fit, the predictions,
their uncertainty and the holdout validation. The dbt Python models call these."""
