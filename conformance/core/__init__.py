"""The core: the model, scenarios and their catalogue, the oracle, judging evidence, what the suite observes."""
